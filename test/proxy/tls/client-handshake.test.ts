// Upstream TLS over real sockets on 127.0.0.1: the client transport socket's SNI, ALPN, client
// certificate, server certificate checks (CA, SAN matchers, pins, auto_san_validation) with the
// `cluster.<name>.ssl.*` counters, TLS session resumption, SDS readiness, and the /certs view.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { createClientTransportSocket, createServerTransportSocket } from '../../../src/proxy/tls/transport-sockets.ts';
import { describeCertificates } from '../../../src/proxy/tls/certs-view.ts';
import { TlsHandshakeError } from '../../../src/proxy/tls/types.ts';
import type { Issued } from '../../helpers/certs.ts';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';
import { LISTENER_PREFIX, counter, echo, inline, must, outcome, parseDownstream, parseUpstream, serve, world, type TestWorld } from './tls-harness.ts';

const pki = testPki();
const CLUSTER = 'cluster.backend.';
const SSL = `${CLUSTER}ssl.`;
const cert = (i: Issued) => ({ certificate_chain: inline(i.certPem), private_key: inline(i.keyPem) });

/** A plain node TLS server (TLS 1.3 unless told) that echoes and records each connection's SNI and ALPN. */
async function nodeServer(id: Issued, opts: tls.TlsOptions = {}): Promise<{ port: number; seen: { sni: string | false | null; alpn: string | false | null; reused: boolean }[]; close(): Promise<void> }> {
  const seen: { sni: string | false | null; alpn: string | false | null; reused: boolean }[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer({ cert: id.certPem, key: id.keyPem, ALPNProtocols: ['h2', 'http/1.1'], ...opts }, (s) => {
    sockets.add(s);
    seen.push({ sni: s.servername, alpn: s.alpnProtocol, reused: s.isSessionReused() });
    s.on('error', () => {});
    s.on('data', (d) => s.write(d));
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

function client(json: Record<string, unknown>, w: TestWorld = world(), opts?: { autoSni?: boolean; autoSanValidation?: boolean }) {
  return { w, cts: createClientTransportSocket(must(parseUpstream(json)), w, opts) };
}

const trustCa = (extra: Record<string, unknown> = {}) => ({ validation_context: { trusted_ca: inline(pki.ca.certPem), ...extra } });

test('upstream TLS: SNI and ALPN offered, the server SAN matched, the session resumed on the next connection', async () => {
  const srv = await nodeServer(pki.server);
  const { w, cts } = client({ sni: 'api.example.com', common_tls_context: { alpn_protocols: ['h2'], ...trustCa({ match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'api.example.com' } }] }) } });
  try {
    assert.equal(cts.ready(), true);
    assert.deepEqual(cts.alpn, ['h2']);
    assert.equal(cts.autoSni, false);
    const a = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
    assert.equal(a.info.alpn, 'h2');
    assert.equal(a.info.peerCertificateValidated, true, 'an exact DNS matcher is met by the *.example.com SAN');
    assert.deepEqual(a.info.peerUriSans, [SERVER_ID]);
    assert.equal(a.info.sessionReused, false);
    assert.equal(await echo(a.socket, 'one'), 'one');
    a.socket.destroy();
    const b = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
    assert.equal(b.info.sessionReused, true);
    assert.deepEqual(b.info.peerDnsSans, ['localhost', '*.example.com'], 'peer facts of a resumed session come from the full handshake');
    assert.equal(await echo(b.socket, 'two'), 'two');
    b.socket.destroy();
    // (node's server reports no servername for a resumed TLS 1.2 session, so only the first is checked)
    assert.deepEqual(srv.seen.map((s) => [s.alpn, s.reused]), [
      ['h2', false],
      ['h2', true],
    ]);
    assert.equal(srv.seen[0]!.sni, 'api.example.com');
    assert.equal(counter(w.stats, `${SSL}handshake`), 2);
    assert.equal(counter(w.stats, `${SSL}session_reused`), 1);
    assert.equal(counter(w.stats, `${SSL}versions.TLSv1.2`), 2, "Envoy's client default maximum is TLS 1.2");
    assert.ok(Object.keys(w.stats.snapshot().counters).some((k) => k.startsWith(`${SSL}curves.`)));
  } finally {
    await srv.close();
  }
});

test('TLS 1.3 session tickets resume too; max_session_keys 0 turns resumption off', async () => {
  const srv = await nodeServer(pki.server);
  try {
    for (const [max, reused] of [
      [undefined, true],
      [0, false],
    ] as const) {
      const { w, cts } = client({ max_session_keys: max, common_tls_context: { tls_params: { tls_maximum_protocol_version: 'TLSv1_3' } } });
      const a = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
      assert.equal(a.info.version, 'TLSv1.3');
      assert.equal(await echo(a.socket, 'x'), 'x', 'tickets arrive after the handshake');
      a.socket.destroy();
      const b = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
      assert.equal(b.info.sessionReused, reused, `max_session_keys ${max}`);
      b.socket.destroy();
      assert.equal(counter(w.stats, `${SSL}session_reused`), reused ? 1 : 0);
    }
  } finally {
    await srv.close();
  }
});

test('server certificate failures reject with TlsHandshakeError and bump cluster ssl.* stats', async () => {
  const srv = await nodeServer(pki.server);
  const other = await nodeServer(pki.untrustedClient);
  const cases: [Record<string, unknown>, number, string][] = [
    [trustCa(), other.port, 'fail_verify_error'],
    [trustCa({ match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: CLIENT_ID } }] }), srv.port, 'fail_verify_san'],
    [trustCa({ verify_certificate_hash: ['ab'.repeat(32)] }), srv.port, 'fail_verify_cert_hash'],
  ];
  try {
    for (const [ctx, port, stat] of cases) {
      const { w, cts } = client({ common_tls_context: ctx });
      await assert.rejects(cts.connect({ host: '127.0.0.1', port, timeoutMs: 5000 }, CLUSTER), (e: unknown) => e instanceof TlsHandshakeError && e.stat === stat);
      assert.equal(counter(w.stats, `${SSL}${stat}`), 1, stat);
      assert.equal(counter(w.stats, `${SSL}handshake`), 0);
    }
  } finally {
    await srv.close();
    await other.close();
  }
});

test('auto_sni / auto_san_validation: SNI and the required SAN come from the target; never an IP as SNI', async () => {
  const srv = await nodeServer(pki.server);
  const { w, cts } = client({ common_tls_context: trustCa() }, world(), { autoSni: true, autoSanValidation: true });
  try {
    assert.equal(cts.autoSni, true);
    assert.equal(cts.autoSanValidation, true);
    const ok = await cts.connect({ host: '127.0.0.1', port: srv.port, sni: 'foo.example.com', verifySan: 'foo.example.com', timeoutMs: 5000 }, CLUSTER);
    ok.socket.destroy();
    await assert.rejects(
      cts.connect({ host: '127.0.0.1', port: srv.port, sni: 'evil.test', verifySan: 'evil.test', timeoutMs: 5000 }, CLUSTER),
      (e: unknown) => e instanceof TlsHandshakeError && e.stat === 'fail_verify_san',
    );
    const ip = await cts.connect({ host: '127.0.0.1', port: srv.port, sni: '127.0.0.1', timeoutMs: 5000 }, CLUSTER);
    ip.socket.destroy();
    assert.deepEqual(srv.seen.map((s) => s.sni), ['foo.example.com', 'evil.test', false]);
    assert.equal(counter(w.stats, `${SSL}fail_verify_san`), 1);
  } finally {
    await srv.close();
  }
});

test('mTLS between the client and server transport sockets: each side sees the other’s identity', async () => {
  const sw = world();
  const sts = createServerTransportSocket(
    must(parseDownstream({ common_tls_context: { tls_certificates: [cert(pki.server)], alpn_protocols: ['h2', 'http/1.1'], validation_context: { trusted_ca: inline(pki.ca.certPem) } }, require_client_certificate: true })),
    sw,
  );
  const srv = await serve(sts);
  const { w, cts } = client({ common_tls_context: { tls_certificates: [cert(pki.client)], alpn_protocols: ['h2', 'http/1.1'], ...trustCa({ match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: SERVER_ID } }] }) } });
  try {
    const c = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
    const o = await outcome(srv, 0);
    assert.ok(o.ok);
    assert.deepEqual(o.info.peerUriSans, [CLIENT_ID]);
    assert.deepEqual(c.info.peerUriSans, [SERVER_ID]);
    assert.deepEqual(c.info.localUriSans, [CLIENT_ID]);
    assert.equal(c.info.alpn, 'h2');
    assert.equal(await echo(c.socket, 'both ways'), 'both ways');
    c.socket.destroy();
    assert.equal(counter(sw.stats, `${LISTENER_PREFIX}ssl.handshake`), 1);
    assert.equal(counter(w.stats, `${SSL}handshake`), 1);
  } finally {
    await srv.close();
  }
});

test('SDS validation context: not ready (connect refused) until it arrives', async () => {
  const srv = await nodeServer(pki.server);
  const w = world();
  const { cts } = client({ common_tls_context: { validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } } } }, w);
  try {
    assert.equal(cts.ready(), false);
    await assert.rejects(cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER), (e: unknown) => e instanceof TlsHandshakeError && e.stat === 'connection_error');
    w.secrets.set('ROOTCA', {
      kind: 'validation_context',
      trustedCa: pki.otherCa.certPem,
      crl: undefined,
      sanMatchers: [],
      spkiPins: [],
      certHashPins: [],
      allowExpiredCertificate: false,
      trustChainVerification: 'VERIFY_TRUST_CHAIN',
      spiffeTrustDomains: undefined,
      source: 'sds:ROOTCA',
    });
    assert.equal(cts.ready(), true);
    await assert.rejects(cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER), (e: unknown) => e instanceof TlsHandshakeError && e.stat === 'fail_verify_error');
    const root = w.secrets.get('ROOTCA');
    assert.ok(root?.kind === 'validation_context');
    w.secrets.set('ROOTCA', { ...root, trustedCa: pki.ca.certPem });
    const c = await cts.connect({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 }, CLUSTER);
    assert.equal(c.info.peerCertificateValidated, true);
    c.socket.destroy();
  } finally {
    await srv.close();
  }
});

test('/certs view: cert chains and the CA with path, serial, SANs, validity (envoy.admin.v3.Certificates shape)', () => {
  const w = world();
  const cfg = must(parseDownstream({ common_tls_context: { tls_certificates: [cert(pki.server)], validation_context: { trusted_ca: inline(pki.ca.certPem) } } }));
  const now = Date.now();
  const d = describeCertificates(cfg, w.secrets, now);
  const leaf = new X509Certificate(pki.server.certPem);
  assert.equal(d.cert_chain.length, 1);
  const c = d.cert_chain[0]!;
  assert.equal(c.path, '<inline>');
  assert.equal(c.serial_number, leaf.serialNumber.toLowerCase());
  assert.deepEqual(c.subject_alt_names, [{ dns: 'localhost' }, { dns: '*.example.com' }, { uri: SERVER_ID }]);
  assert.equal(c.expiration_time, leaf.validToDate.toISOString().replace(/\.\d{3}Z$/, 'Z'));
  assert.equal(c.days_until_expiration, String(Math.floor((leaf.validToDate.getTime() - now) / 86_400_000)));
  assert.equal(d.ca_cert.length, 1);
  assert.equal(d.ca_cert[0]!.serial_number, new X509Certificate(pki.ca.certPem).serialNumber.toLowerCase());
  // An SDS certificate not delivered yet is left out.
  const sds = must(parseDownstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }] } }));
  assert.deepEqual(describeCertificates(sds, w.secrets), { ca_cert: [], cert_chain: [] });
});
