// Dev CA: certificates parsed and verified by node:crypto's X509Certificate, and accepted (or
// refused, with OpenSSL's reason) by real TLS handshakes on 127.0.0.1, for RSA and ECDSA keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { checkServerIdentity, connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCsr, createRootCa, generateKey, issueCertificate, parseCsr, signCsr, spiffeId, type Issued, type KeyType } from '../../../src/proxy/tls/dev-ca.ts';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';

const DAY = 24 * 60 * 60 * 1000;
const x509 = (pem: string): X509Certificate => new X509Certificate(pem);
const key = (pem: string): KeyObject => createPrivateKey(pem);

interface Outcome {
  /** Client side: the error code if the handshake failed, else undefined. */
  readonly clientError: string | undefined;
  /** Server side: why the client certificate was refused (socket.authorizationError), if it was. */
  readonly serverError: string | undefined;
  /** The client certificate the server verified, if any. */
  readonly peer: X509Certificate | undefined;
  readonly reply: string;
}

/** One real handshake: `server` serves `serverCert` (+chain); the client trusts `trust` and may present `clientCert`. */
async function handshake(o: { serverCert: Issued; chain?: string; trust: string; clientCert?: Issued; serverTrust?: string; servername?: string }): Promise<Outcome> {
  let serverError: string | undefined;
  let peer: X509Certificate | undefined;
  const server = createServer(
    // Node's own rejectUnauthorized drops the socket without saying why; checking here keeps OpenSSL's reason.
    { key: o.serverCert.keyPem, cert: o.serverCert.certPem + (o.chain ?? ''), ...(o.serverTrust ? { ca: o.serverTrust, requestCert: true, rejectUnauthorized: false } : {}) },
    (s: TLSSocket) => {
      if (o.serverTrust && !s.authorized) {
        serverError = String(s.authorizationError);
        s.destroy();
        return;
      }
      peer = s.getPeerX509Certificate();
      s.end('hello');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const { clientError, reply } = await new Promise<{ clientError: string | undefined; reply: string }>((resolve) => {
      const c = connect({
        host: '127.0.0.1', port, ca: o.trust, servername: o.servername ?? 'localhost',
        ...(o.clientCert ? { key: o.clientCert.keyPem, cert: o.clientCert.certPem } : {}),
      });
      let reply = '';
      c.on('data', (d: Buffer) => (reply += d));
      c.on('end', () => resolve({ clientError: undefined, reply }));
      c.on('error', (e: NodeJS.ErrnoException) => resolve({ clientError: e.code ?? e.message, reply }));
    });
    return { clientError, serverError, peer, reply };
  } finally {
    await new Promise((r) => server.close(r));
  }
}

test('leaf carries URI, DNS, IP and email SANs, CN and O, and verifies against its CA', () => {
  const ca = createRootCa({ commonName: 'mesh root' });
  const leaf = issueCertificate(ca, {
    spiffeId: spiffeId('cluster.local', 'default', 'web'), dnsNames: ['web.default.svc', '*.example.com'], ips: ['127.0.0.1', '::1', '2001:db8::7'], emails: ['ops@example.com'],
  });
  const c = x509(ca.certPem);
  const l = x509(leaf.certPem);
  assert.equal(l.subjectAltName, 'email:ops@example.com, DNS:web.default.svc, DNS:*.example.com, URI:spiffe://cluster.local/ns/default/sa/web, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:7');
  assert.equal(l.subject, 'O=legate-dev\nCN=web.default.svc');
  assert.equal(l.issuer, c.subject);
  assert.equal(c.subject, 'O=legate-dev\nCN=mesh root');
  assert.ok(l.verify(c.publicKey));
  assert.ok(l.checkIssued(c));
  assert.ok(l.checkPrivateKey(key(leaf.keyPem)));
  assert.ok(c.verify(c.publicKey), 'root is self-signed');
  assert.equal(c.ca, true);
  assert.equal(l.ca, false);
  assert.deepEqual(l.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.ok(l.checkHost('a.example.com'));
  assert.ok(l.checkIP('::1'));
  assert.equal(l.serialNumber.length, 32, '16-byte serial');
  assert.ok(parseInt(l.serialNumber[0]!, 16) < 8, 'positive serial');
  assert.notEqual(x509(issueCertificate(ca, { dnsNames: ['x'] }).certPem).serialNumber, l.serialNumber);
});

test('key types: RSA 2048 and ECDSA P-256 keys, under RSA and ECDSA CAs', () => {
  for (const caType of ['rsa', 'ecdsa'] as const) {
    const ca = createRootCa({ keyType: caType });
    assert.equal(x509(ca.certPem).publicKey.asymmetricKeyType, caType === 'rsa' ? 'rsa' : 'ec');
    for (const leafType of ['rsa', 'ecdsa'] as const) {
      const leaf = issueCertificate(ca, { dnsNames: ['localhost'], keyType: leafType });
      const pub = x509(leaf.certPem).publicKey;
      if (leafType === 'rsa') assert.equal(pub.asymmetricKeyDetails?.modulusLength, 2048);
      else assert.equal(pub.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(x509(leaf.certPem).verify(x509(ca.certPem).publicKey), `${leafType} leaf under ${caType} CA`);
    }
  }
  assert.match(generateKey('ecdsa'), /^-----BEGIN PRIVATE KEY-----\n/);
});

test('validity: CA 10 years, leaf 90 days, notBefore 5 minutes back; days and explicit dates override', () => {
  const now = Date.now();
  const ca = createRootCa();
  const c = x509(ca.certPem);
  const l = x509(issueCertificate(ca, { dnsNames: ['a'] }).certPem);
  const days = (d: Date): number => (d.getTime() - now) / DAY;
  assert.ok(Math.abs(days(c.validToDate) - 3650) < 1);
  assert.ok(Math.abs(days(l.validToDate) - 90) < 1);
  assert.ok(c.validFromDate.getTime() <= now - 4 * 60 * 1000 && c.validFromDate.getTime() >= now - 6 * 60 * 1000);
  assert.ok(Math.abs(days(x509(issueCertificate(ca, { dnsNames: ['a'], days: 7 }).certPem).validToDate) - 7) < 1);
  const notBefore = new Date(Date.UTC(2020, 0, 1));
  const notAfter = new Date(Date.UTC(2060, 0, 1)); // GeneralizedTime from 2050
  const e = x509(issueCertificate(ca, { dnsNames: ['a'], notBefore, notAfter }).certPem);
  assert.equal(e.validFromDate.getTime(), notBefore.getTime());
  assert.equal(e.validToDate.getTime(), notAfter.getTime());
  assert.throws(() => issueCertificate(ca, { dnsNames: ['a'], notBefore: notAfter, notAfter: notBefore }), /notAfter .* is not after notBefore/);
  assert.throws(() => issueCertificate(ca, { dnsNames: ['a'], days: 0 }), /invalid lifetime 0 days/);
});

for (const caType of ['rsa', 'ecdsa'] as const satisfies readonly KeyType[]) {
  for (const leafType of ['rsa', 'ecdsa'] as const satisfies readonly KeyType[]) {
    test(`mTLS handshake: ${leafType} server and client certificates under a ${caType} CA`, async () => {
      const ca = createRootCa({ keyType: caType });
      const serverCert = issueCertificate(ca, { dnsNames: ['localhost', '*.example.com'], spiffeId: SERVER_ID, keyType: leafType });
      const clientCert = issueCertificate(ca, { spiffeId: CLIENT_ID, keyType: leafType });
      const r = await handshake({ serverCert, trust: ca.certPem, clientCert, serverTrust: ca.certPem, servername: 'api.example.com' });
      assert.equal(r.clientError, undefined);
      assert.equal(r.serverError, undefined);
      assert.equal(r.reply, 'hello');
      assert.equal(r.peer?.subjectAltName, `URI:${CLIENT_ID}`);
    });
  }
}

test('a DNS name outside the SANs fails checkServerIdentity', async () => {
  const { ca, server } = testPki();
  const r = await handshake({ serverCert: server, trust: ca.certPem, servername: 'evil.test' });
  assert.equal(r.clientError, 'ERR_TLS_CERT_ALTNAME_INVALID');
  const legacy = x509(server.certPem).toLegacyObject();
  assert.equal(checkServerIdentity('localhost', legacy), undefined);
  assert.equal(checkServerIdentity('a.example.com', legacy), undefined);
  assert.equal((checkServerIdentity('a.b.example.com', legacy) as NodeJS.ErrnoException | undefined)?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});

test('chain: a leaf under an intermediate verifies to the root when the server sends the chain', async () => {
  const root = createRootCa({ commonName: 'root', keyType: 'ecdsa' });
  const intermediate = issueCertificate(root, { commonName: 'intermediate', isCa: true });
  const i = x509(intermediate.certPem);
  assert.equal(i.ca, true);
  assert.ok(i.verify(x509(root.certPem).publicKey));
  const leaf = issueCertificate(intermediate, { dnsNames: ['localhost'], keyType: 'ecdsa' });
  assert.ok(x509(leaf.certPem).checkIssued(i));
  const ok = await handshake({ serverCert: leaf, chain: intermediate.certPem, trust: root.certPem });
  assert.equal(ok.clientError, undefined);
  assert.equal(ok.reply, 'hello');
  const missing = await handshake({ serverCert: leaf, trust: root.certPem });
  assert.equal(missing.clientError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('refused handshakes: expired server cert, expired / untrusted client certs', async () => {
  const { ca, otherCa, server, expiredClient, untrustedClient } = testPki();
  const expiredServer = issueCertificate(ca, { dnsNames: ['localhost'], notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) });
  assert.equal((await handshake({ serverCert: expiredServer, trust: ca.certPem })).clientError, 'CERT_HAS_EXPIRED');
  assert.equal((await handshake({ serverCert: server, trust: otherCa.certPem })).clientError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  const expired = await handshake({ serverCert: server, trust: ca.certPem, clientCert: expiredClient, serverTrust: ca.certPem });
  assert.equal(expired.serverError, 'CERT_HAS_EXPIRED');
  assert.equal(expired.reply, '');
  const untrusted = await handshake({ serverCert: server, trust: ca.certPem, clientCert: untrustedClient, serverTrust: ca.certPem });
  assert.equal(untrusted.serverError, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});

test('CSR round trip: requested SANs copied, overrides replace them, tampering is refused', () => {
  const ca = createRootCa({ keyType: 'ecdsa' });
  for (const keyType of ['rsa', 'ecdsa'] as const) {
    const keyPem = generateKey(keyType);
    const csr = createCsr(keyPem, { commonName: 'web', uris: ['spiffe://cluster.local/ns/a/sa/web'], dnsNames: ['web.a.svc'] });
    assert.match(csr, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const parsed = parseCsr(csr);
    assert.equal(parsed.commonName, 'web');
    assert.deepEqual(parsed.sans, { uris: ['spiffe://cluster.local/ns/a/sa/web'], dnsNames: ['web.a.svc'], ips: [], emails: [] });
    const cert = x509(signCsr(ca, csr, { days: 1 }));
    assert.equal(cert.subjectAltName, 'DNS:web.a.svc, URI:spiffe://cluster.local/ns/a/sa/web');
    assert.equal(cert.subject, 'O=legate-dev\nCN=web');
    assert.ok(cert.checkPrivateKey(key(keyPem)), `${keyType} certificate is for the CSR's key`);
    assert.ok(cert.verify(x509(ca.certPem).publicKey));
    assert.ok(Math.abs((cert.validToDate.getTime() - Date.now()) / DAY - 1) < 0.1);
    const overridden = x509(signCsr(ca, csr, { uris: [spiffeId('cluster.local', 'b', 'other')], dnsNames: [] }));
    assert.equal(overridden.subjectAltName, 'URI:spiffe://cluster.local/ns/b/sa/other');
  }
  const csr = createCsr(generateKey('ecdsa'), { commonName: 'web', dnsNames: ['web.a.svc'] });
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const at = der.indexOf('web.a.svc');
  der[at] = 'x'.charCodeAt(0);
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  assert.throws(() => signCsr(ca, tampered), /CSR signature does not verify/);
  assert.throws(() => signCsr(ca, 'nothing here'), /no PEM CERTIFICATE REQUEST block/);
});

test('bad input is refused with a message naming it', () => {
  const { ca, otherCa, server } = testPki();
  assert.throws(() => spiffeId('Cluster.Local', 'default', 'x'), /invalid SPIFFE ID/);
  assert.throws(() => spiffeId('cluster.local', '', 'x'), /namespace and service account are required/);
  assert.throws(() => issueCertificate(ca, { spiffeId: 'spiffe://td/a/../b' }), /invalid SPIFFE ID/);
  assert.throws(() => issueCertificate(ca, { ips: ['300.1.1.1'] }), /invalid IP SAN "300.1.1.1"/);
  assert.throws(() => issueCertificate(ca, { dnsNames: ['a b'] }), /invalid DNS SAN "a b"/);
  assert.throws(() => issueCertificate(ca, { uris: ['no-scheme'] }), /invalid URI SAN "no-scheme": no scheme/);
  assert.throws(() => issueCertificate({ certPem: ca.certPem, keyPem: otherCa.keyPem }, { dnsNames: ['a'] }), /CA key does not match the CA certificate/);
  assert.throws(() => issueCertificate(server, { dnsNames: ['a'] }), /is not a CA/);
});

test('testPki: cached per process, identities and trust as documented', () => {
  const p = testPki();
  assert.equal(testPki(), p);
  const ca = x509(p.ca.certPem);
  const san = (i: Issued): string | undefined => x509(i.certPem).subjectAltName;
  assert.equal(san(p.server), `DNS:localhost, DNS:*.example.com, URI:${SERVER_ID}`);
  assert.equal(san(p.client), `URI:${CLIENT_ID}`);
  assert.equal(san(p.wrongIdClient), 'URI:spiffe://cluster.local/ns/default/sa/intruder');
  assert.equal(san(p.server2), 'DNS:other.example.com');
  assert.equal(san(p.serverSpiffe), `URI:${SERVER_ID}`);
  for (const i of [p.server, p.client, p.expiredClient, p.wrongIdClient, p.ecdsaServer, p.ecdsaClient, p.server2, p.serverSpiffe]) assert.ok(x509(i.certPem).verify(ca.publicKey));
  assert.ok(!x509(p.untrustedClient.certPem).verify(ca.publicKey));
  assert.ok(x509(p.untrustedClient.certPem).verify(x509(p.otherCa.certPem).publicKey));
  assert.ok(x509(p.expiredClient.certPem).validToDate.getTime() < Date.now());
  assert.notEqual(ca.subject, x509(p.otherCa.certPem).subject);
});
