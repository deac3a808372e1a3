// Downstream TLS termination on one worker's listener, in-process with real handshakes on
// 127.0.0.1: HTTP/1.1 and HTTP/2 picked by ALPN (undici and node:http2 clients) or sniffed when no
// ALPN was negotiated, x-forwarded-proto https, TLS and plaintext chains on one port picked by
// tls_inspector's transport_protocol, tcp_proxy behind TLS, a plaintext client refused, a chain whose SDS secret has not arrived
// (reset, then served once it arrives), transport_socket_connect_timeout, and the listener config's
// transport_socket errors and tls_inspector warning. Each asserts Envoy's counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { Client } from 'undici';
import { testPki } from '../../helpers/certs.ts';
import { hcm, TCP_PROXY_TYPE } from '../../helpers/config.ts';
import { startHttp1Upstream } from '../../helpers/upstreams.ts';
import { downstreamTls, parseListenerJson, startListener, TLS_INSPECTOR, TLS_TYPE } from './tls-listener-harness.ts';

const TIMEOUT = { timeout: 60_000 };

function httpChain(transportSocket: object, hcmExtra: Record<string, unknown> = {}): object {
  return {
    filters: [hcm({ name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }] }, hcmExtra)],
    transport_socket: transportSocket,
  };
}

type Echo = { headers: Record<string, string> };

test('HTTP/1.1 and HTTP/2 over TLS, chosen by ALPN: x-forwarded-proto https, ssl and codec counters', TIMEOUT, async () => {
  const pki = testPki();
  const up = await startHttp1Upstream();
  const l = await startListener({ filter_chains: [httpChain(downstreamTls(pki.server, { alpn: ['h2', 'http/1.1'] }))] }, { backend: [up.port] });
  try {
    // HTTP/1.1 (undici with allowH2: false offers http/1.1 only).
    const c1 = new Client(`https://localhost:${l.port}`, { allowH2: false, connect: { ca: pki.ca.certPem, servername: 'localhost' } });
    const r1 = await c1.request({ path: '/one', method: 'GET' });
    assert.equal(r1.statusCode, 200);
    const b1 = (await r1.body.json()) as Echo;
    assert.equal(b1.headers['x-forwarded-proto'], 'https');
    await c1.close();

    // HTTP/2 via ALPN with undici.
    const c2 = new Client(`https://localhost:${l.port}`, { allowH2: true, connect: { ca: pki.ca.certPem, servername: 'localhost' } });
    const r2 = await c2.request({ path: '/two', method: 'GET' });
    assert.equal(r2.statusCode, 200);
    const b2 = (await r2.body.json()) as Echo;
    assert.equal(b2.headers['x-forwarded-proto'], 'https');
    await c2.close();

    // HTTP/2 with node:http2 (offers h2 only).
    const s = http2.connect(`https://localhost:${l.port}`, { ca: pki.ca.certPem });
    const req = s.request({ ':path': '/three' });
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    let body = '';
    for await (const chunk of req) body += String(chunk);
    assert.equal(headers[':status'], 200);
    assert.equal((JSON.parse(body) as Echo).headers['x-forwarded-proto'], 'https');
    s.close();
    await once(s, 'close');

    assert.deepEqual(up.seen.map((r) => r.path), ['/one', '/two', '/three']);
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 3);
    assert.equal(l.counter(`${l.prefix}ssl.no_certificate`), 3);
    assert.equal(l.counter(`${l.prefix}ssl.connection_error`), 0);
    assert.equal(l.counter(`${l.prefix}downstream_cx_total`), 3);
    assert.equal(l.counter('http.ingress_http.downstream_cx_http1_total'), 1);
    assert.equal(l.counter('http.ingress_http.downstream_cx_http2_total'), 2);
    assert.equal(l.counter('http.ingress_http.downstream_cx_ssl_total'), 3);
    assert.equal(l.counter('http.ingress_http.downstream_rq_2xx'), 3);
    // The server_ssl_socket_factory counters exist (as in Envoy) and stay 0 without SDS.
    assert.equal(l.counter(`${l.prefix}server_ssl_socket_factory.downstream_context_secrets_not_ready`), 0);
    assert.ok(`${l.prefix}server_ssl_socket_factory.ssl_context_update_by_sds` in l.stats.snapshot().counters);
    // Connections are counted closed through the raw socket under the TLSSocket.
    for (let i = 0; i < 50 && l.gauge(`${l.prefix}downstream_cx_active`) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(l.gauge(`${l.prefix}downstream_cx_active`), 0);
    assert.equal(l.counter(`${l.prefix}downstream_cx_destroy`), 3);
    assert.equal(l.gauge('http.ingress_http.downstream_cx_ssl_active'), 0);
  } finally {
    await l.close();
    await up.close();
  }
});

test('without alpn_protocols no protocol is negotiated: AUTO sniffs HTTP/1.1 or the h2 preface over TLS', TIMEOUT, async () => {
  const pki = testPki();
  const up = await startHttp1Upstream();
  const l = await startListener({ filter_chains: [httpChain(downstreamTls(pki.server))] }, { backend: [up.port] });
  try {
    const t = tls.connect({ port: l.port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
    await once(t, 'secureConnect');
    assert.equal(t.alpnProtocol, false);
    t.write('GET /plain HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    let text = '';
    for await (const chunk of t) text += String(chunk);
    assert.match(text, /^HTTP\/1\.1 200/);

    // h2 with prior knowledge over a TLS connection that negotiated nothing.
    const s = http2.connect(`https://localhost:${l.port}`, {
      createConnection: () => tls.connect({ port: l.port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem }),
    });
    const req = s.request({ ':path': '/h2' });
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    req.resume();
    assert.equal(headers[':status'], 200);
    s.close();
    await once(s, 'close');
    assert.equal(l.counter('http.ingress_http.downstream_cx_http1_total'), 1);
    assert.equal(l.counter('http.ingress_http.downstream_cx_http2_total'), 1);
  } finally {
    await l.close();
    await up.close();
  }
});

test('one port, TLS and plaintext: tls_inspector picks the transport_protocol tls chain or the plaintext one', TIMEOUT, async () => {
  const pki = testPki();
  const up = await startHttp1Upstream();
  const tlsChain = { ...httpChain(downstreamTls(pki.server), { stat_prefix: 'secure' }), filter_chain_match: { transport_protocol: 'tls' } };
  const plainChain = { filters: (httpChain({ name: 'envoy.transport_sockets.raw_buffer' }, { stat_prefix: 'plain' }) as { filters: object[] }).filters };
  const l = await startListener({ listener_filters: [TLS_INSPECTOR], filter_chains: [tlsChain, plainChain] }, { backend: [up.port] });
  try {
    const plain = await fetch(`http://127.0.0.1:${l.port}/plain`);
    assert.equal(((await plain.json()) as Echo).headers['x-forwarded-proto'], 'http');
    const c = new Client(`https://localhost:${l.port}`, { connect: { ca: pki.ca.certPem, servername: 'localhost' } });
    const r = await c.request({ path: '/secure', method: 'GET' });
    assert.equal(((await r.body.json()) as Echo).headers['x-forwarded-proto'], 'https');
    await c.close();
    assert.equal(l.counter('http.plain.downstream_rq_2xx'), 1);
    assert.equal(l.counter('http.secure.downstream_rq_2xx'), 1);
    assert.equal(l.counter('http.secure.downstream_cx_ssl_total'), 1);
    assert.equal(l.counter('http.plain.downstream_cx_ssl_total'), 0);
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 1);
    assert.equal(l.counter('tls_inspector.tls_found'), 1);
    assert.equal(l.counter('tls_inspector.tls_not_found'), 1);
  } finally {
    await l.close();
    await up.close();
  }
});

test('tcp_proxy behind TLS: the terminal filter gets the decrypted stream', TIMEOUT, async () => {
  const pki = testPki();
  const echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const port = (echo.address() as net.AddressInfo).port;
  const l = await startListener(
    { filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'echo' } }], transport_socket: downstreamTls(pki.server) }] },
    { echo: [port] },
  );
  try {
    const t = tls.connect({ port: l.port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem });
    await once(t, 'secureConnect');
    t.write('hello over tls');
    const [data] = (await once(t, 'data')) as [Buffer];
    assert.equal(data.toString(), 'hello over tls');
    t.end();
    await once(t, 'close');
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 1);
    assert.equal(l.counter('tcp.tcp.downstream_cx_total'), 1);
  } finally {
    await l.close();
    await new Promise((r) => echo.close(r));
  }
});

test('a plaintext client on a TLS chain fails the handshake: ssl.connection_error', TIMEOUT, async () => {
  const pki = testPki();
  const l = await startListener({ filter_chains: [httpChain(downstreamTls(pki.server))] }, { backend: [1] });
  try {
    const s = net.connect({ port: l.port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await once(s, 'close');
    assert.equal(l.counter(`${l.prefix}ssl.connection_error`), 1);
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 0);
    assert.equal(l.counter('http.ingress_http.downstream_cx_total'), 0, 'nothing reached the HCM');
  } finally {
    await l.close();
  }
});

test('SDS certificate not yet delivered: connections reset (downstream_context_secrets_not_ready), served once it arrives', TIMEOUT, async () => {
  const pki = testPki();
  const up = await startHttp1Upstream();
  const sds = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TLS_TYPE,
      common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'server-cert', sds_config: { ads: {}, resource_api_version: 'V3' } }] },
    },
  };
  const l = await startListener({ filter_chains: [httpChain(sds)] }, { backend: [up.port] });
  try {
    const t = tls.connect({ port: l.port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.certPem });
    const err = (await once(t, 'error').catch((e: unknown) => [e])) as [Error];
    assert.ok(err[0], 'the handshake fails');
    assert.equal(l.counter(`${l.prefix}server_ssl_socket_factory.downstream_context_secrets_not_ready`), 1);
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 0);

    l.secrets.set('server-cert', { kind: 'tls_certificate', certificateChain: pki.server.certPem, privateKey: pki.server.keyPem, source: 'sds:server-cert' });
    assert.equal(l.counter(`${l.prefix}server_ssl_socket_factory.ssl_context_update_by_sds`), 1);
    const c = new Client(`https://localhost:${l.port}`, { connect: { ca: pki.ca.certPem, servername: 'localhost' } });
    const r = await c.request({ path: '/after', method: 'GET' });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    await c.close();
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 1);
  } finally {
    await l.close();
    await up.close();
  }
});

test('transport_socket_connect_timeout closes a connection that never finishes its handshake', TIMEOUT, async () => {
  const pki = testPki();
  const chain = { ...httpChain(downstreamTls(pki.server)), transport_socket_connect_timeout: '0.2s' };
  const l = await startListener({ filter_chains: [chain] }, { backend: [1] });
  try {
    const s = net.connect({ port: l.port, host: '127.0.0.1' });
    s.on('error', () => {});
    await once(s, 'connect');
    await once(s, 'close'); // sent nothing: legate gives up
    assert.equal(l.counter(`${l.prefix}downstream_cx_transport_socket_connect_timeout`), 1);
    assert.equal(l.counter(`${l.prefix}ssl.handshake`), 0);
  } finally {
    await l.close();
  }
});

test('listener config: transport_socket errors name their path; raw_buffer is plaintext; chains matching on SNI without tls_inspector warn', () => {
  const pki = testPki();
  const chain = (ts: object, match?: object): object => ({ ...httpChain(ts), ...(match ? { filter_chain_match: match } : {}) });
  const addr = { socket_address: { address: '127.0.0.1', port_value: 0 } };

  const bad = parseListenerJson({ address: addr, filter_chains: [chain(downstreamTls({ certPem: pki.server.certPem, keyPem: pki.client.keyPem }))] }, ['backend']);
  assert.ok(!bad.ok);
  assert.equal(bad.errors[0]!.path, 'listener.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0].private_key');

  const unknown = parseListenerJson({ address: addr, filter_chains: [chain({ name: 'envoy.transport_sockets.alts' })] }, ['backend']);
  assert.ok(!unknown.ok);
  assert.equal(unknown.errors[0]!.path, 'listener.filter_chains[0].transport_socket');

  const raw = parseListenerJson({ address: addr, filter_chains: [chain({ name: 'envoy.transport_sockets.raw_buffer' })] }, ['backend']);
  assert.ok(raw.ok, raw.ok ? '' : JSON.stringify(raw.errors));
  assert.equal([...raw.value.chains.values()][0]!.tls, undefined);

  const tlsChain = parseListenerJson({ address: addr, filter_chains: [{ ...chain(downstreamTls(pki.server)), transport_socket_connect_timeout: '3s' }] }, ['backend']);
  assert.ok(tlsChain.ok);
  const c = [...tlsChain.value.chains.values()][0]!;
  assert.equal(c.tls?.side, 'downstream');
  assert.equal(c.transportSocketConnectTimeoutMs, 3000);

  const noInspector = parseListenerJson({ address: addr, filter_chains: [chain(downstreamTls(pki.server), { server_names: ['localhost'] })] }, ['backend']);
  assert.ok(noInspector.ok);
  assert.equal(noInspector.warnings?.length, 1);
  assert.match(noInspector.warnings![0]!, /filter_chains\[0\]\.filter_chain_match: .*tls_inspector/);
  const withInspector = parseListenerJson({ address: addr, listener_filters: [TLS_INSPECTOR], filter_chains: [chain(downstreamTls(pki.server), { server_names: ['localhost'] })] }, ['backend']);
  assert.ok(withInspector.ok);
  assert.equal(withInspector.warnings, undefined);
});
