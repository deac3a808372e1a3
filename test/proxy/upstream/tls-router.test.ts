// Upstream TLS through the router (fake filter manager, real cluster manager, real TLS upstreams on
// 127.0.0.1): mTLS over HTTP/1.1 and HTTP/2, SAN and trust failures as 503 UF with Envoy's transport
// failure reason, auto_sni / auto_san_validation, session resumption, transport_socket_matches and
// connect_timeout covering the handshake; each asserts the `cluster.<name>.ssl.*` / cx counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_ID, INTRUDER_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';
import { clusterRoute, requestHeaders, routerHarness, type FakeStream, type RouterHarness } from '../../filters/http/router/harness.ts';
import { startUpstream } from '../../filters/http/router/upstreams.ts';
import { silentUpstream, tlsClusterYaml, tlsHttpUpstream, upstreamTls } from './tls-upstreams.ts';

const TIMEOUT = { timeout: 30_000 };

async function get(h: RouterHarness, cluster: string, path: string, extra: Record<string, string> = {}): Promise<FakeStream> {
  const s = h.stream(clusterRoute({ cluster }));
  const headers = requestHeaders('GET', path);
  for (const [k, v] of Object.entries(extra)) headers.set(k, v);
  s.filter.onRequestHeaders!(headers, true);
  await s.ended;
  s.filter.onDestroy!();
  return s;
}

for (const proto of ['http1', 'http2'] as const) {
  const h2 = proto === 'http2';

  test(`${proto} over mTLS: legate's client certificate, ALPN, one pooled connection, ssl stats, StreamInfo.upstreamTls`, TIMEOUT, async () => {
    const pki = testPki();
    const up = await tlsHttpUpstream({ cert: pki.server, clientCa: pki.ca.certPem, h2 });
    const tls = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost', sans: [{ type: 'URI', value: SERVER_ID }] });
    const h = await routerHarness([tlsClusterYaml('secure', [{ port: up.port }], { http2: h2, transportSocket: tls })]);
    try {
      for (const path of ['/a', '/b']) {
        const s = await get(h, 'secure', path);
        assert.equal(s.rec.status, 200, s.rec.local?.body);
        assert.equal(s.bodyText, `up:${path}`);
        const t = s.streamInfo.upstreamTls;
        assert.ok(t, 'StreamInfo.upstreamTls is set');
        assert.deepEqual(t.peerUriSans, [SERVER_ID]);
        assert.equal(t.peerCertificateValidated, true);
        assert.equal(t.alpn, h2 ? 'h2' : 'http/1.1');
      }
      assert.equal(up.seen.length, 2);
      for (const seen of up.seen) {
        assert.deepEqual(seen.peerUris, [CLIENT_ID], 'the upstream saw legate’s SPIFFE identity');
        assert.equal(seen.sni, 'localhost');
        // No alpn_protocols configured: legate offers the pool's protocol, as Envoy does.
        assert.equal(seen.alpn, h2 ? 'h2' : 'http/1.1');
      }
      assert.equal(up.connections(), 1);
      assert.equal(h.counter('cluster.secure.ssl.handshake'), 1);
      assert.equal(h.counter('cluster.secure.ssl.fail_verify_san'), 0);
      assert.equal(h.counter('cluster.secure.upstream_cx_total'), 1);
      assert.equal(h.counter(`cluster.secure.upstream_cx_${proto}_total`), 1);
      assert.equal(h.counter('cluster.secure.upstream_cx_connect_fail'), 0);
      assert.equal(h.counter('cluster.secure.upstream_rq_200'), 2);
      assert.equal(h.counter('cluster.secure.default.total_match_count'), 1);
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto}: a server certificate failing the SAN matcher → 503 UF, TLS_error reason, ssl.fail_verify_san`, TIMEOUT, async () => {
    const pki = testPki();
    const up = await tlsHttpUpstream({ cert: pki.server, h2 });
    const tls = upstreamTls({ ca: pki.ca.certPem, sans: [{ type: 'URI', value: INTRUDER_ID }] });
    const h = await routerHarness([tlsClusterYaml('badsan', [{ port: up.port }], { http2: h2, transportSocket: tls })]);
    try {
      const s = await get(h, 'badsan', '/x');
      assert.equal(s.rec.status, 503);
      assert.equal(s.rec.local?.opts?.details, 'upstream_reset_before_response_started{connection_failure}');
      assert.ok(s.streamInfo.responseFlags.has('UF'));
      const reason = s.streamInfo.upstreamTransportFailureReason ?? '';
      assert.match(reason, /^TLS_error/, reason);
      assert.ok(s.rec.local?.body.includes(`transport failure reason: ${reason}`), s.rec.local?.body);
      assert.equal(s.streamInfo.upstreamTls, undefined);
      assert.equal(up.seen.length, 0, 'no request reached the upstream');
      assert.equal(h.counter('cluster.badsan.ssl.fail_verify_san'), 1);
      assert.equal(h.counter('cluster.badsan.ssl.handshake'), 0);
      assert.equal(h.counter('cluster.badsan.upstream_cx_connect_fail'), 1);
      assert.equal(h.counter('cluster.badsan.upstream_rq_503'), 1);
    } finally {
      await h.close();
      await up.close();
    }
  });
}

test('a server certificate from an untrusted CA → 503 UF, ssl.fail_verify_error', TIMEOUT, async () => {
  const pki = testPki();
  const up = await tlsHttpUpstream({ cert: pki.server });
  const h = await routerHarness([tlsClusterYaml('untrusted', [{ port: up.port }], { transportSocket: upstreamTls({ ca: pki.otherCa.certPem }) })]);
  try {
    const s = await get(h, 'untrusted', '/x');
    assert.equal(s.rec.status, 503);
    assert.ok(s.streamInfo.responseFlags.has('UF'));
    assert.match(s.streamInfo.upstreamTransportFailureReason ?? '', /^TLS_error/);
    assert.equal(h.counter('cluster.untrusted.ssl.fail_verify_error'), 1);
    assert.equal(h.counter('cluster.untrusted.upstream_cx_connect_fail'), 1);
  } finally {
    await h.close();
    await up.close();
  }
});

test('auto_sni + auto_san_validation: SNI and SAN from the Host, pools never mix server names', TIMEOUT, async () => {
  const pki = testPki();
  // *.example.com and localhost; other.example.com answered with server2 (only other.example.com).
  const up = await tlsHttpUpstream({ cert: pki.server, byServerName: { 'other.example.com': pki.server2 } });
  const tls = upstreamTls({ ca: pki.ca.certPem, sni: 'configured.example.com' });
  const h = await routerHarness([
    tlsClusterYaml('auto', [{ port: up.port }], { transportSocket: tls, autoSni: true, autoSan: true }),
    tlsClusterYaml('override', [{ port: up.port }], { transportSocket: tls, autoSni: true, overrideSniHeader: 'x-sni' }),
  ]);
  try {
    const a = await get(h, 'auto', '/1', { ':authority': 'www.example.com' });
    assert.equal(a.rec.status, 200, a.rec.local?.body);
    const b = await get(h, 'auto', '/2', { ':authority': 'api.example.com:8443' });
    assert.equal(b.rec.status, 200);
    const c = await get(h, 'auto', '/3', { ':authority': 'api.example.com' });
    assert.equal(c.rec.status, 200);
    assert.deepEqual(
      up.seen.map((s) => s.sni),
      ['www.example.com', 'api.example.com', 'api.example.com'],
    );
    assert.equal(a.streamInfo.upstreamTls?.sni, 'www.example.com');
    // One connection per server name: the third request reused the second's.
    assert.equal(h.counter('cluster.auto.upstream_cx_total'), 2);
    // The Host's name is not among the certificate's SANs: auto_san_validation fails the handshake.
    const bad = await get(h, 'auto', '/4', { ':authority': 'legate.test' });
    assert.equal(bad.rec.status, 503);
    assert.ok(bad.streamInfo.responseFlags.has('UF'));
    assert.equal(h.counter('cluster.auto.ssl.fail_verify_san'), 1);
    // An IP Host sets no SNI (the context's `sni` is sent) but is still the SAN to verify.
    const ip = await get(h, 'auto', '/5', { ':authority': '127.0.0.1' });
    assert.equal(ip.rec.status, 503);
    assert.equal(h.counter('cluster.auto.ssl.fail_verify_san'), 2);
    // override_auto_sni_header: the header when present, else the Host.
    const o1 = await get(h, 'override', '/6', { 'x-sni': 'other.example.com' });
    const o2 = await get(h, 'override', '/7', { ':authority': 'www.example.com' });
    assert.equal(o1.rec.status, 200);
    assert.equal(o2.rec.status, 200);
    assert.deepEqual(up.seen.slice(-2).map((s) => s.sni), ['other.example.com', 'www.example.com']);
    assert.deepEqual(o1.streamInfo.upstreamTls?.peerDnsSans, ['other.example.com']);
  } finally {
    await h.close();
    await up.close();
  }
});

test('TLS session resumption across pooled connections: ssl.session_reused', TIMEOUT, async () => {
  const pki = testPki();
  // Each response closes its connection, so the second request needs a new one.
  const up = await tlsHttpUpstream({ cert: pki.server, clientCa: pki.ca.certPem, closeEach: true });
  const tls = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost' });
  const h = await routerHarness([tlsClusterYaml('resume', [{ port: up.port }], { transportSocket: tls })]);
  try {
    const first = await get(h, 'resume', '/1');
    assert.equal(first.rec.status, 200);
    assert.equal(first.streamInfo.upstreamTls?.sessionReused, false);
    // The upstream closed the first connection; wait until legate saw it go.
    const until = Date.now() + 5000;
    while (h.gauge('cluster.resume.upstream_cx_active') > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const second = await get(h, 'resume', '/2');
    assert.equal(second.rec.status, 200, `${second.rec.local?.body} ${second.streamInfo.upstreamTransportFailureReason}`);
    assert.equal(second.streamInfo.upstreamTls?.sessionReused, true);
    assert.deepEqual(
      up.seen.map((s) => s.reused),
      [false, true],
    );
    assert.equal(h.counter('cluster.resume.upstream_cx_total'), 2);
    assert.equal(h.counter('cluster.resume.ssl.handshake'), 2);
    assert.equal(h.counter('cluster.resume.ssl.session_reused'), 1);
  } finally {
    await h.close();
    await up.close();
  }
});

test('transport_socket_matches (Istio form): TLS to the tlsMode=istio endpoint, plaintext to the other', TIMEOUT, async () => {
  const pki = testPki();
  const secure = await tlsHttpUpstream({ cert: pki.serverSpiffe, clientCa: pki.ca.certPem });
  let plainRequests = 0;
  const plain = await startUpstream('http1', (req, res) => {
    plainRequests++;
    res.end(`plain:${req.url}`);
  });
  const matches = [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: upstreamTls({ ca: pki.ca.certPem, client: pki.client, sans: [{ type: 'URI', value: SERVER_ID }] }) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } } },
  ];
  const h = await routerHarness([tlsClusterYaml('mesh', [{ port: secure.port, match: { tlsMode: 'istio' } }, { port: plain.port }], { matches })]);
  try {
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await get(h, 'mesh', `/${i}`);
      assert.equal(s.rec.status, 200, s.rec.local?.body);
      bodies.push(s.bodyText);
      if (s.bodyText.startsWith('up:')) assert.deepEqual(s.streamInfo.upstreamTls?.peerUriSans, [SERVER_ID]);
      else assert.equal(s.streamInfo.upstreamTls, undefined);
    }
    assert.equal(bodies.filter((b) => b.startsWith('up:')).length, 2, bodies.join());
    assert.equal(plainRequests, 2);
    assert.ok(secure.seen.every((s) => s.peerUris[0] === CLIENT_ID));
    assert.equal(h.counter('cluster.mesh.tlsMode-istio.total_match_count'), 1);
    assert.equal(h.counter('cluster.mesh.tlsMode-disabled.total_match_count'), 1);
    assert.equal(h.counter('cluster.mesh.default.total_match_count'), 0);
    assert.equal(h.counter('cluster.mesh.ssl.handshake'), 1);
  } finally {
    await h.close();
    await secure.close();
    await plain.close();
  }
});

test('connect_timeout covers the TLS handshake: a silent upstream → 503 UF, upstream_cx_connect_timeout', TIMEOUT, async () => {
  const pki = testPki();
  const up = await silentUpstream();
  const h = await routerHarness([tlsClusterYaml('silent', [{ port: up.port }], { connectTimeout: '0.25s', transportSocket: upstreamTls({ ca: pki.ca.certPem }) })]);
  try {
    const s = await get(h, 'silent', '/x');
    assert.equal(s.rec.status, 503);
    assert.ok(s.streamInfo.responseFlags.has('UF'));
    assert.equal(h.counter('cluster.silent.upstream_cx_connect_fail'), 1);
    assert.equal(h.counter('cluster.silent.upstream_cx_connect_timeout'), 1);
    assert.equal(h.gauge('cluster.silent.upstream_cx_active'), 0);
  } finally {
    await h.close();
    await up.close();
  }
});
