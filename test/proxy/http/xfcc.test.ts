// x-forwarded-client-cert per forward_client_cert_details, against Envoy's rules: removed unless
// the connection is mutual TLS (ALWAYS_FORWARD_ONLY excepted), kept, set or appended; the element's
// fields in Envoy's order with its quoting and URL-encoded PEMs. Sessions come from a real
// certificate read the way the TLS core reads a handshake.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { mutateXfcc, urlEncodePem, xfccElement } from '../../../src/proxy/http/xfcc.ts';
import type { ClientCertDetail, ForwardClientCertDetails } from '../../../src/proxy/http/hcm-config.ts';
import type { TlsConnectionInfo } from '../../../src/proxy/tls/types.ts';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';

function session(over: Partial<TlsConnectionInfo> = {}): TlsConnectionInfo {
  const pki = testPki();
  const leaf = new X509Certificate(pki.client.certPem);
  return {
    version: 'TLSv1.3',
    cipher: 'TLS_AES_256_GCM_SHA384',
    alpn: undefined,
    sni: 'localhost',
    sessionReused: false,
    peerCertificatePresented: true,
    peerCertificateValidated: true,
    peerUriSans: [CLIENT_ID],
    peerDnsSans: ['a.example.com', 'b.example.com'],
    peerIpSans: [],
    peerEmailSans: [],
    peerSubject: 'CN=client,O=legate-dev',
    peerIssuer: 'CN=legate test CA,O=legate-dev',
    peerSerial: leaf.serialNumber.toLowerCase(),
    peerFingerprintSha256: leaf.fingerprint256.replaceAll(':', '').toLowerCase(),
    peerCertificatePem: leaf.toString(),
    peerChainPem: leaf.toString() + new X509Certificate(pki.ca.certPem).toString(),
    peerValidFrom: leaf.validFromDate,
    peerValidTo: leaf.validToDate,
    localUriSans: [SERVER_ID],
    localDnsSans: ['localhost'],
    localSubject: 'CN=localhost,O=legate-dev',
    ...over,
  };
}

const INCOMING = 'By=spiffe://prev;URI=spiffe://client-of-prev';

function run(mode: ForwardClientCertDetails, tls: TlsConnectionInfo | undefined, details: ClientCertDetail[] = [], incoming: string | null = INCOMING): string | undefined {
  const h = HeaderMap.fromPairs([[':path', '/'], ...(incoming !== null ? ([['x-forwarded-client-cert', incoming]] as [string, string][]) : [])]);
  mutateXfcc(h, mode, details, tls);
  const all = h.getAll('x-forwarded-client-cert');
  assert.ok(all.length <= 1, 'one header');
  return all[0];
}

test('modes on an mTLS connection: SANITIZE removes, FORWARD_ONLY keeps, SANITIZE_SET replaces, APPEND_FORWARD appends, ALWAYS_FORWARD_ONLY keeps', () => {
  const s = session();
  const base = `By=${SERVER_ID};Hash=${s.peerFingerprintSha256}`;
  assert.equal(run('SANITIZE', s), undefined);
  assert.equal(run('FORWARD_ONLY', s), INCOMING);
  assert.equal(run('SANITIZE_SET', s), base);
  assert.equal(run('APPEND_FORWARD', s), `${INCOMING},${base}`);
  assert.equal(run('APPEND_FORWARD', s, [], null), base, 'nothing to append to');
  assert.equal(run('ALWAYS_FORWARD_ONLY', s), INCOMING);
});

test('not mutual TLS (plaintext, or TLS without a client certificate): removed by every mode but ALWAYS_FORWARD_ONLY, nothing added', () => {
  const noCert = session({ peerCertificatePresented: false, peerUriSans: [], peerFingerprintSha256: '', peerCertificatePem: '', peerChainPem: '' });
  for (const tls of [undefined, noCert]) {
    for (const mode of ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET'] as const) assert.equal(run(mode, tls, ['URI', 'Subject']), undefined, `${mode}`);
    assert.equal(run('ALWAYS_FORWARD_ONLY', tls), INCOMING);
  }
});

test('set_current_client_cert_details: Cert, Chain, Subject, URI, DNS in Envoy order and quoting', () => {
  const s = session();
  const cert = urlEncodePem(s.peerCertificatePem);
  const chain = urlEncodePem(s.peerChainPem);
  assert.equal(
    xfccElement(s, ['Cert', 'Chain', 'Subject', 'URI', 'DNS']),
    `By=${SERVER_ID};Hash=${s.peerFingerprintSha256};Cert="${cert}";Chain="${chain}";Subject="CN=client,O=legate-dev";URI=${CLIENT_ID};DNS=a.example.com;DNS=b.example.com`,
  );
  // Subject and URI are present even when empty; DNS and Cert only when there is something.
  const bare = session({ peerUriSans: [], peerDnsSans: [], peerSubject: '', localUriSans: [] });
  assert.equal(xfccElement(bare, ['Subject', 'URI', 'DNS']), `Hash=${s.peerFingerprintSha256};Subject="";URI=`);
});

test('URL-encoded PEM matches Envoy: newline, space, +, / and = escaped, upper-case hex', () => {
  const pem = testPki().client.certPem;
  const envoyLegacy = pem.replaceAll('\n', '%0A').replaceAll(' ', '%20').replaceAll('+', '%2B').replaceAll('/', '%2F').replaceAll('=', '%3D');
  assert.equal(urlEncodePem(pem), envoyLegacy);
  assert.equal(urlEncodePem('a-b_c.d~e"f,g;h'), 'a-b_c.d~e%22f%2Cg%3Bh');
});
