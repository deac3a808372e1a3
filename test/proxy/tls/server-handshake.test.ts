// Downstream TLS over real sockets on 127.0.0.1: the server transport socket wraps accepted
// plain sockets (also ones a listener filter peeked at), picks ALPN and certificates as Envoy
// does, verifies client certificates (CA, SAN matchers, pins, SPIFFE trust domains) and bumps
// the `listener.<addr>.ssl.*` counter Envoy has for each outcome.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, spiffeId } from '../../../src/proxy/tls/dev-ca.ts';
import { createServerTransportSocket } from '../../../src/proxy/tls/transport-sockets.ts';
import type { Issued } from '../../helpers/certs.ts';
import { CLIENT_ID, testPki } from '../../helpers/certs.ts';
import { makeCrl } from './crl.ts';
import { LISTENER_PREFIX, counter, echo, inline, must, outcome, parseDownstream, serve, tlsClient, world, type Served } from './tls-harness.ts';

const pki = testPki();
const SSL = `${LISTENER_PREFIX}ssl.`;
const cert = (i: Issued) => ({ certificate_chain: inline(i.certPem), private_key: inline(i.keyPem) });
const clientOpts = (i: Issued) => ({ cert: i.certPem, key: i.keyPem });

async function server(json: Record<string, unknown>, opts: Parameters<typeof serve>[1] = {}) {
  const w = world();
  const sts = createServerTransportSocket(must(parseDownstream(json)), w);
  const srv = await serve(sts, opts);
  return { w, sts, srv };
}

function peerLeaf(s: { socket: { getPeerX509Certificate(): X509Certificate | undefined } }): X509Certificate {
  const c = s.socket.getPeerX509Certificate();
  assert.ok(c, 'the server presented a certificate');
  return c;
}

test('ALPN: h2 preferred when the client offers both, http/1.1 when it offers only that, none when nothing matches', async () => {
  const { w, srv } = await server({ common_tls_context: { tls_certificates: [cert(pki.server)], alpn_protocols: ['h2', 'http/1.1'] } });
  try {
    const offers: [string[], string | false][] = [
      [['http/1.1', 'h2'], 'h2'],
      [['http/1.1'], 'http/1.1'],
      [['istio-peer-exchange'], false],
    ];
    for (const [i, [offer, want]] of offers.entries()) {
      const c = await tlsClient(srv.port, { ALPNProtocols: offer });
      assert.equal(c.error, undefined);
      assert.equal(c.socket.alpnProtocol, want);
      const o = await outcome(srv, i);
      assert.ok(o.ok);
      assert.equal(o.info.alpn, want === false ? undefined : want);
      assert.equal(await echo(c.socket, 'ping'), 'ping');
      c.socket.destroy();
    }
    assert.equal(counter(w.stats, `${SSL}handshake`), 3);
    assert.equal(counter(w.stats, `${SSL}no_certificate`), 3, 'no client certificates were presented');
  } finally {
    await srv.close();
  }
});

test('RSA and ECDSA certificates in one context: picked by what the client can verify', async () => {
  const { srv } = await server({ common_tls_context: { tls_certificates: [cert(pki.server), cert(pki.ecdsaServer)] } });
  try {
    const rsa = await tlsClient(srv.port, { sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' });
    assert.equal(peerLeaf(rsa).publicKey.asymmetricKeyType, 'rsa');
    rsa.socket.destroy();
    const ec = await tlsClient(srv.port, { sigalgs: 'ecdsa_secp256r1_sha256' });
    assert.equal(peerLeaf(ec).publicKey.asymmetricKeyType, 'ec');
    ec.socket.destroy();
    const rsa12 = await tlsClient(srv.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    assert.equal(peerLeaf(rsa12).publicKey.asymmetricKeyType, 'rsa');
    assert.equal(rsa12.socket.getCipher().name, 'ECDHE-RSA-AES128-GCM-SHA256');
    rsa12.socket.destroy();
  } finally {
    await srv.close();
  }
});

test('several certificates of one key type: picked by SNI against their DNS names (exact before wildcard, any case); no match or no SNI gets the first', async () => {
  const a = issueCertificate(pki.ca, { commonName: 'a', dnsNames: ['a.example'] });
  const b = issueCertificate(pki.ca, { commonName: 'b', dnsNames: ['b.example', '*.wild.example'] });
  const c = issueCertificate(pki.ca, { commonName: 'c', dnsNames: ['exact.wild.example'] });
  const { w, srv } = await server({ common_tls_context: { tls_certificates: [cert(a), cert(b), cert(c)] } });
  const fingerprint = (i: Issued): string => new X509Certificate(i.certPem).fingerprint256;
  try {
    const cases: [string | undefined, Issued][] = [
      ['a.example', a],
      ['b.example', b],
      ['B.Example', b],
      ['x.wild.example', b],
      ['exact.wild.example', c],
      ['unknown.example', a],
      [undefined, a],
    ];
    for (const [i, [sni, want]] of cases.entries()) {
      const client = await tlsClient(srv.port, sni === undefined ? {} : { servername: sni });
      assert.equal(peerLeaf(client).fingerprint256, fingerprint(want), `SNI ${sni ?? '(none)'}`);
      const o = await outcome(srv, i);
      assert.ok(o.ok, `SNI ${sni ?? '(none)'}: handshake`);
      client.socket.destroy();
    }
    assert.equal(counter(w.stats, `${SSL}handshake`), cases.length);
  } finally {
    await srv.close();
  }
});

test('bytes a listener filter read and unshifted are seen by the handshake', async () => {
  let peeked = 0;
  const beforeSecure = (raw: net.Socket): Promise<void> =>
    new Promise((resolve) => {
      raw.once('readable', () => {
        const chunk = raw.read() as Buffer | null;
        if (chunk) {
          peeked = chunk.length;
          raw.unshift(chunk);
        }
        resolve();
      });
    });
  const { w, srv } = await server({ common_tls_context: { tls_certificates: [cert(pki.server)], alpn_protocols: ['h2', 'http/1.1'] } }, { beforeSecure });
  try {
    const c = await tlsClient(srv.port, { ALPNProtocols: ['h2'], servername: 'localhost' });
    assert.equal(c.error, undefined);
    const o = await outcome(srv, 0);
    assert.ok(o.ok);
    assert.ok(peeked > 0, 'the ClientHello was read before the handshake');
    assert.equal(o.info.sni, 'localhost');
    assert.equal(o.info.alpn, 'h2');
    assert.equal(await echo(c.socket, 'after peek'), 'after peek');
    c.socket.destroy();
    assert.equal(counter(w.stats, `${SSL}handshake`), 1);
  } finally {
    await srv.close();
  }
});

const mtls = (extra: Record<string, unknown> = {}) => ({
  common_tls_context: { tls_certificates: [cert(pki.server)], validation_context: { trusted_ca: inline(pki.ca.certPem), ...extra } },
  require_client_certificate: true,
});

test('mTLS: the verified client identity and the handshake counters', async () => {
  const { w, srv } = await server(mtls({ match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: CLIENT_ID } }] }));
  try {
    const c = await tlsClient(srv.port, clientOpts(pki.client));
    const o = await outcome(srv, 0);
    assert.ok(o.ok, o.ok ? '' : o.error.message);
    assert.deepEqual(o.info.peerUriSans, [CLIENT_ID]);
    assert.equal(o.info.peerCertificatePresented, true);
    assert.equal(o.info.peerCertificateValidated, true);
    assert.equal(o.info.peerSubject, 'CN=client,O=legate-dev');
    const leaf = new X509Certificate(pki.client.certPem);
    assert.equal(o.info.peerSerial, leaf.serialNumber.toLowerCase());
    assert.equal(o.info.peerFingerprintSha256, leaf.fingerprint256.replaceAll(':', '').toLowerCase());
    assert.ok(o.info.peerChainPem.includes(pki.client.certPem.trim().split('\n')[1]!));
    assert.deepEqual(o.info.localDnsSans, ['localhost', '*.example.com']);
    assert.equal(await echo(c.socket, 'mtls'), 'mtls');
    c.socket.destroy();
    assert.equal(counter(w.stats, `${SSL}handshake`), 1);
    assert.equal(counter(w.stats, `${SSL}versions.TLSv1.3`), 1);
    assert.equal(counter(w.stats, `${SSL}ciphers.${o.info.cipher}`), 1);
    assert.equal(counter(w.stats, `${SSL}no_certificate`), 0);
  } finally {
    await srv.close();
  }
});

test('client certificate failures close the connection and bump the stat Envoy bumps', async () => {
  const pinOther = new X509Certificate(pki.server.certPem).fingerprint256;
  const cases: { name: string; extra?: Record<string, unknown>; client?: Issued; stat: string }[] = [
    { name: 'no certificate', stat: 'fail_verify_no_cert' },
    { name: 'wrong SAN', extra: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: CLIENT_ID } }] }, client: pki.wrongIdClient, stat: 'fail_verify_san' },
    { name: 'expired', client: pki.expiredClient, stat: 'fail_verify_error' },
    { name: 'untrusted CA', client: pki.untrustedClient, stat: 'fail_verify_error' },
    { name: 'hash pin mismatch', extra: { verify_certificate_hash: [pinOther] }, client: pki.client, stat: 'fail_verify_cert_hash' },
  ];
  for (const k of cases) {
    const { w, srv } = await server(mtls(k.extra));
    try {
      const c = await tlsClient(srv.port, k.client ? clientOpts(k.client) : {});
      const o = await outcome(srv, 0);
      assert.equal(o.ok, false, `${k.name}: rejected`);
      c.socket.destroy();
      assert.equal(counter(w.stats, `${SSL}${k.stat}`), 1, `${k.name}: ssl.${k.stat}`);
      assert.equal(counter(w.stats, `${SSL}handshake`), 0, `${k.name}: no ssl.handshake`);
      assert.equal(counter(w.stats, `${SSL}connection_error`), 0, `${k.name}: not a connection_error`);
    } finally {
      await srv.close();
    }
  }
});

test('SAN matchers other than exact: prefix, suffix, contains, RE2 regex and ignore_case, over real handshakes; any matcher passing lets the client in', async () => {
  // The client's URI SAN is spiffe://cluster.local/ns/default/sa/client, the intruder's …/sa/intruder.
  const uri = (matcher: Record<string, unknown>) => ({ san_type: 'URI', matcher });
  const cases: { name: string; sans: Record<string, unknown>[]; client: boolean; intruder: boolean }[] = [
    { name: 'trust-domain prefix', sans: [uri({ prefix: 'spiffe://cluster.local/ns/default/' })], client: true, intruder: true },
    { name: 'suffix', sans: [uri({ suffix: '/sa/client' })], client: true, intruder: false },
    { name: 'contains', sans: [uri({ contains: '/sa/cli' })], client: true, intruder: false },
    { name: 'RE2 regex, whole value', sans: [uri({ safe_regex: { regex: String.raw`spiffe://cluster\.local/ns/[^/]+/sa/client` } })], client: true, intruder: false },
    { name: 'RE2 regex that only matches part of the value', sans: [uri({ safe_regex: { regex: 'sa/client' } })], client: false, intruder: false },
    { name: 'exact, ignore_case', sans: [uri({ exact: 'SPIFFE://CLUSTER.LOCAL/ns/default/sa/CLIENT', ignore_case: true })], client: true, intruder: false },
    { name: 'exact without ignore_case', sans: [uri({ exact: 'SPIFFE://CLUSTER.LOCAL/ns/default/sa/CLIENT' })], client: false, intruder: false },
    { name: 'a DNS matcher for a URI-only identity', sans: [{ san_type: 'DNS', matcher: { prefix: 'spiffe' } }], client: false, intruder: false },
    { name: 'either of two', sans: [uri({ suffix: '/sa/nobody' }), uri({ suffix: '/sa/intruder' })], client: false, intruder: true },
  ];
  for (const k of cases) {
    const { w, srv } = await server(mtls({ match_typed_subject_alt_names: k.sans }));
    try {
      for (const [i, [who, issued, want]] of ([['client', pki.client, k.client], ['intruder', pki.wrongIdClient, k.intruder]] as const).entries()) {
        const c = await tlsClient(srv.port, clientOpts(issued));
        const o = await outcome(srv, i);
        assert.equal(o.ok, want, `${k.name}: ${who} ${want ? 'accepted' : 'rejected'}`);
        c.socket.destroy();
      }
      const accepted = Number(k.client) + Number(k.intruder);
      assert.equal(counter(w.stats, `${SSL}handshake`), accepted, `${k.name}: ssl.handshake`);
      assert.equal(counter(w.stats, `${SSL}fail_verify_san`), 2 - accepted, `${k.name}: ssl.fail_verify_san`);
    } finally {
      await srv.close();
    }
  }
});

test('allow_expired_certificate and an SPKI pin that matches let the client in', async () => {
  const spki = (await import('node:crypto')).createHash('sha256').update(new X509Certificate(pki.client.certPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  for (const [extra, client] of [
    [{ allow_expired_certificate: true }, pki.expiredClient],
    [{ verify_certificate_spki: [spki], verify_certificate_hash: ['00'.repeat(32)] }, pki.client],
  ] as const) {
    const { w, srv } = await server(mtls(extra));
    try {
      const c = await tlsClient(srv.port, clientOpts(client));
      const o = await outcome(srv, 0);
      assert.ok(o.ok, o.ok ? '' : o.error.message);
      assert.equal(await echo(c.socket, 'x'), 'x');
      c.socket.destroy();
      assert.equal(counter(w.stats, `${SSL}handshake`), 1);
    } finally {
      await srv.close();
    }
  }
});

test('SPIFFE validator: the trust bundle is chosen by the peer’s trust domain', async () => {
  const otherTdClient = issueCertificate(pki.otherCa, { commonName: 'other', spiffeId: spiffeId('other.td', 'ns1', 'sa1'), keyType: 'ecdsa' });
  const { w, srv } = await server({
    common_tls_context: {
      tls_certificates: [cert(pki.server)],
      validation_context: {
        custom_validator_config: {
          name: 'envoy.tls.cert_validator.spiffe',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
            trust_domains: [
              { name: 'cluster.local', trust_bundle: inline(pki.ca.certPem) },
              { name: 'other.td', trust_bundle: inline(pki.otherCa.certPem) },
            ],
          },
        },
      },
    },
    require_client_certificate: true,
  });
  try {
    const cases: [Issued, boolean][] = [
      [pki.client, true], // cluster.local, signed by its bundle
      [otherTdClient, true], // other.td, signed by its bundle
      [pki.untrustedClient, false], // a cluster.local ID minted by other.td's CA
      [pki.server2, false], // no SPIFFE ID at all
    ];
    for (const [i, [client, ok]] of cases.entries()) {
      const c = await tlsClient(srv.port, clientOpts(client));
      const o = await outcome(srv, i);
      assert.equal(o.ok, ok, `case ${i}`);
      if (o.ok) assert.equal(o.info.peerCertificateValidated, true);
      c.socket.destroy();
    }
    assert.equal(counter(w.stats, `${SSL}handshake`), 2);
    assert.equal(counter(w.stats, `${SSL}fail_verify_error`), 2);
  } finally {
    await srv.close();
  }
});

test('SDS certificate: not ready until it arrives; a new one is used by new handshakes, open connections carry on', async () => {
  const w = world();
  const sts = createServerTransportSocket(must(parseDownstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }] } })), w);
  assert.equal(sts.ready(), false);
  const srv: Served = await serve(sts);
  try {
    const early = await tlsClient(srv.port);
    assert.ok(early.error, 'no handshake without a certificate');
    const o0 = await outcome(srv, 0);
    assert.equal(o0.ok, false);
    assert.equal(counter(w.stats, `${SSL}connection_error`), 1);

    w.secrets.set('default', { kind: 'tls_certificate', certificateChain: pki.server.certPem, privateKey: pki.server.keyPem, source: 'sds:default' });
    assert.equal(sts.ready(), true);
    const first = await tlsClient(srv.port);
    assert.equal(peerLeaf(first).fingerprint256, new X509Certificate(pki.server.certPem).fingerprint256);
    assert.ok((await outcome(srv, 1)).ok);

    w.secrets.set('default', { kind: 'tls_certificate', certificateChain: pki.ecdsaServer.certPem, privateKey: pki.ecdsaServer.keyPem, source: 'sds:default' });
    const second = await tlsClient(srv.port);
    assert.equal(peerLeaf(second).fingerprint256, new X509Certificate(pki.ecdsaServer.certPem).fingerprint256);
    assert.equal(await echo(first.socket, 'still here'), 'still here', 'the connection made before the rotation still works');
    first.socket.destroy();
    second.socket.destroy();
  } finally {
    await srv.close();
  }
});

test('a client that never finishes the handshake, or is not TLS, is closed with ssl.connection_error', async () => {
  const { w, srv } = await server({ common_tls_context: { tls_certificates: [cert(pki.server)] } }, { timeoutMs: 200 });
  try {
    const silent = net.connect(srv.port, '127.0.0.1');
    silent.on('error', () => {});
    const o = await outcome(srv, 0);
    assert.equal(o.ok, false);
    assert.match(!o.ok ? o.error.message : '', /timeout/);
    silent.destroy();
    const plain = net.connect(srv.port, '127.0.0.1', () => plain.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    plain.on('error', () => {});
    const o2 = await outcome(srv, 1);
    assert.equal(o2.ok, false);
    plain.destroy();
    assert.equal(counter(w.stats, `${SSL}connection_error`), 2);
  } finally {
    await srv.close();
  }
});

test('CRL: a revoked client certificate is rejected with ssl.fail_verify_error, others pass', async () => {
  const crl = makeCrl(pki.ca, [new X509Certificate(pki.wrongIdClient.certPem).serialNumber]);
  const { w, srv } = await server(mtls({ crl: inline(crl) }));
  try {
    const revoked = await tlsClient(srv.port, clientOpts(pki.wrongIdClient));
    const o = await outcome(srv, 0);
    assert.equal(o.ok, false);
    assert.match(!o.ok ? o.error.message : '', /CERT_REVOKED/);
    revoked.socket.destroy();
    const good = await tlsClient(srv.port, clientOpts(pki.client));
    assert.ok((await outcome(srv, 1)).ok);
    good.socket.destroy();
    assert.equal(counter(w.stats, `${SSL}fail_verify_error`), 1);
    assert.equal(counter(w.stats, `${SSL}handshake`), 1);
  } finally {
    await srv.close();
  }
});

test('session resumption on the server: the client identity survives it, ssl.session_reused counts it', async () => {
  const { w, srv } = await server(mtls());
  try {
    let session: Buffer | undefined;
    const first = await tlsClient(srv.port, clientOpts(pki.client));
    first.socket.on('session', (s: Buffer) => (session = s));
    assert.equal(await echo(first.socket, 'a'), 'a');
    first.socket.destroy();
    assert.ok(session, 'a TLS 1.3 ticket arrived');
    const second = await tlsClient(srv.port, { ...clientOpts(pki.client), session });
    const o = await outcome(srv, 1);
    assert.ok(o.ok, o.ok ? '' : o.error.message);
    assert.equal(o.info.sessionReused, true);
    assert.deepEqual(o.info.peerUriSans, [CLIENT_ID]);
    second.socket.destroy();
    assert.equal(counter(w.stats, `${SSL}session_reused`), 1);
  } finally {
    await srv.close();
  }
});

test('session_ticket_keys: two contexts with the same key (two workers) resume each other’s sessions', async () => {
  const key = { inline_bytes: Buffer.alloc(80, 7).toString('base64') };
  const a = await server({ common_tls_context: { tls_certificates: [cert(pki.server)] }, session_ticket_keys: { keys: [key] } });
  const b = await server({ common_tls_context: { tls_certificates: [cert(pki.server)] }, session_ticket_keys: { keys: [key] } });
  try {
    let session: Buffer | undefined;
    const first = await tlsClient(a.srv.port);
    first.socket.on('session', (s: Buffer) => (session = s));
    assert.equal(await echo(first.socket, 'a'), 'a');
    first.socket.destroy();
    const second = await tlsClient(b.srv.port, { session });
    assert.equal(second.socket.isSessionReused(), true);
    const o = await outcome(b.srv, 0);
    assert.ok(o.ok && o.info.sessionReused);
    second.socket.destroy();
    assert.equal(counter(b.w.stats, `${SSL}session_reused`), 1);
  } finally {
    await a.srv.close();
    await b.srv.close();
  }
});

test('key_log writes NSS key log lines; require_sni refuses clients without SNI', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-keylog-'));
  const path = join(dir, 'keys.log');
  const { w, srv } = await server({ common_tls_context: { tls_certificates: [cert(pki.server)], key_log: { path } }, require_sni: true });
  try {
    const noSni = await tlsClient(srv.port);
    assert.equal((await outcome(srv, 0)).ok, false);
    noSni.socket.destroy();
    const withSni = await tlsClient(srv.port, { servername: 'localhost' });
    assert.ok((await outcome(srv, 1)).ok);
    assert.equal(await echo(withSni.socket, 'k'), 'k');
    withSni.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.match(readFileSync(path, 'utf8'), /^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]+ [0-9a-f]+$/m);
    assert.equal(counter(w.stats, `${SSL}connection_error`), 1);
  } finally {
    await srv.close();
  }
});
