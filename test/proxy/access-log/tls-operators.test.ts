// The TLS command operators over StreamInfo.downstreamTls / upstreamTls: values as Envoy prints
// them (SANs comma-joined, URL-encoded PEM, validity with an optional time format), `-` for a
// plaintext connection or a missing certificate, and the upstream side read from upstreamTls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { compileFormatter } from '../../../src/proxy/http/formatter.ts';
import { isKnownOperator } from '../../../src/proxy/http/formatter-operators.ts';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { urlEncodePem } from '../../../src/proxy/http/xfcc.ts';
import type { TlsConnectionInfo } from '../../../src/proxy/tls/types.ts';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';

function session(over: Partial<TlsConnectionInfo> = {}): TlsConnectionInfo {
  const pki = testPki();
  const leaf = new X509Certificate(pki.client.certPem);
  return {
    version: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256',
    alpn: 'h2',
    sni: 'localhost',
    sessionReused: false,
    peerCertificatePresented: true,
    peerCertificateValidated: true,
    peerUriSans: [CLIENT_ID, 'spiffe://cluster.local/ns/default/sa/alias'],
    peerDnsSans: ['a.example.com'],
    peerIpSans: ['127.0.0.1', '::1'],
    peerEmailSans: [],
    peerSubject: 'CN=client,O=legate-dev',
    peerIssuer: 'CN=legate test CA,O=legate-dev',
    peerSerial: leaf.serialNumber.toLowerCase(),
    peerFingerprintSha256: leaf.fingerprint256.replaceAll(':', '').toLowerCase(),
    peerCertificatePem: leaf.toString(),
    peerChainPem: leaf.toString() + new X509Certificate(pki.ca.certPem).toString(),
    peerValidFrom: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    peerValidTo: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)),
    localUriSans: [SERVER_ID],
    localDnsSans: ['localhost', '*.example.com'],
    localSubject: 'CN=localhost,O=legate-dev',
    ...over,
  };
}

function info(over: Partial<StreamInfo> = {}): StreamInfo {
  return { ...newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 5000 }, downstreamLocal: { address: '127.0.0.1', port: 443 }, connectionId: 1 }), ...over };
}

function fmt(format: string, i: StreamInfo): string {
  const f = compileFormatter(format);
  assert.ok(f.ok, f.ok ? '' : JSON.stringify(f.errors));
  return f.value.format(i);
}

test('downstream peer and local identity, version, cipher, serial, fingerprints', () => {
  const s = session();
  const i = info({ downstreamTls: s });
  assert.equal(fmt('%DOWNSTREAM_PEER_URI_SAN%', i), `${CLIENT_ID},spiffe://cluster.local/ns/default/sa/alias`);
  assert.equal(fmt('%DOWNSTREAM_PEER_DNS_SAN%|%DOWNSTREAM_PEER_IP_SAN%|%DOWNSTREAM_PEER_EMAIL_SAN%', i), 'a.example.com|127.0.0.1,::1|-');
  assert.equal(fmt('%DOWNSTREAM_LOCAL_URI_SAN%|%DOWNSTREAM_LOCAL_DNS_SAN%|%DOWNSTREAM_LOCAL_SUBJECT%', i), `${SERVER_ID}|localhost,*.example.com|CN=localhost,O=legate-dev`);
  assert.equal(fmt('%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_PEER_ISSUER%', i), 'CN=client,O=legate-dev|CN=legate test CA,O=legate-dev');
  assert.equal(fmt('%DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_TLS_CIPHER%', i), 'TLSv1.3 TLS_AES_128_GCM_SHA256');
  assert.equal(fmt('%DOWNSTREAM_PEER_SERIAL%', i), s.peerSerial);
  assert.equal(fmt('%DOWNSTREAM_PEER_FINGERPRINT_256%', i), s.peerFingerprintSha256);
  const der = new X509Certificate(s.peerCertificatePem).raw;
  assert.equal(fmt('%DOWNSTREAM_PEER_FINGERPRINT_1%', i), createHash('sha1').update(der).digest('hex'));
  assert.equal(fmt('%DOWNSTREAM_PEER_CERT%', i), urlEncodePem(s.peerCertificatePem));
  const ca = new X509Certificate(testPki().ca.certPem);
  assert.equal(fmt('%DOWNSTREAM_PEER_CHAIN_SERIALS%', i), `${s.peerSerial},${ca.serialNumber.toLowerCase()}`);
  assert.equal(fmt('%DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256%', i), `${s.peerFingerprintSha256},${ca.fingerprint256.replaceAll(':', '').toLowerCase()}`);
});

test('certificate validity: ISO 8601 by default, or a strftime-style format', () => {
  const i = info({ downstreamTls: session() });
  assert.equal(fmt('%DOWNSTREAM_PEER_CERT_V_START%', i), '2024-01-02T03:04:05.000Z');
  assert.equal(fmt('%DOWNSTREAM_PEER_CERT_V_END(%Y/%m/%d)%', i), '2025/01/02');
});

test('plaintext, or TLS without a client certificate: `-`', () => {
  const plain = info();
  for (const op of ['DOWNSTREAM_PEER_URI_SAN', 'DOWNSTREAM_TLS_VERSION', 'DOWNSTREAM_PEER_SUBJECT', 'DOWNSTREAM_PEER_CERT', 'DOWNSTREAM_PEER_CERT_V_START', 'DOWNSTREAM_LOCAL_URI_SAN', 'UPSTREAM_TLS_VERSION']) {
    assert.equal(fmt(`%${op}%`, plain), '-', op);
  }
  const noCert = info({
    downstreamTls: session({ peerCertificatePresented: false, peerUriSans: [], peerDnsSans: [], peerIpSans: [], peerSubject: '', peerIssuer: '', peerSerial: '', peerFingerprintSha256: '', peerCertificatePem: '', peerChainPem: '', peerValidFrom: undefined, peerValidTo: undefined }),
  });
  assert.equal(fmt('%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_PEER_SUBJECT% %DOWNSTREAM_PEER_CERT% %DOWNSTREAM_PEER_FINGERPRINT_1% %DOWNSTREAM_PEER_CERT_V_END%', noCert), '- - - - -');
  assert.equal(fmt('%DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_LOCAL_URI_SAN%', noCert), `TLSv1.3 ${SERVER_ID}`);
});

test('upstream side reads StreamInfo.upstreamTls; operators without data still compile', () => {
  const i = info({ upstreamTls: session({ version: 'TLSv1.2', peerUriSans: [SERVER_ID], peerSubject: 'CN=localhost,O=legate-dev' }) });
  assert.equal(fmt('%UPSTREAM_TLS_VERSION% %UPSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_SUBJECT% %UPSTREAM_PEER_ISSUER%', i), `TLSv1.2 ${SERVER_ID} CN=localhost,O=legate-dev CN=legate test CA,O=legate-dev`);
  assert.equal(fmt('%DOWNSTREAM_TLS_VERSION%', i), '-');
  // Real Envoy operators legate has no data for still compile (and print `-`).
  assert.ok(isKnownOperator('DOWNSTREAM_TLS_SESSION_ID'));
  assert.ok(isKnownOperator('DOWNSTREAM_LOCAL_IP_SAN'));
  assert.equal(fmt('%DOWNSTREAM_TLS_SESSION_ID%', info({ downstreamTls: session() })), '-');
  assert.ok(!isKnownOperator('UPSTREAM_PEER_CHAIN_SERIALS'), 'Envoy has the chain operators downstream only');
});
