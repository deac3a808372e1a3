// upstream_bind_config: upstream connections come from the configured source address and port, over
// HTTP/1.1, h2c and TLS (the upstream reads its peer's port); what Node sockets cannot set is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startProxy } from '../../filters/http/router/proxy-harness.ts';
import { filterHcm } from '../../helpers/filter-hcm.ts';
import { freePort } from '../../helpers/xds/e2e.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { decodeJson } from '../../../src/config/decode.ts';
import { testPki } from '../../helpers/certs.ts';

const HEADERS = { name: 'envoy.filters.http.header_mutation', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation' } };

function cluster(name: string, port: number, source: number, extra: Record<string, unknown> = {}): string {
  return stringify({
    name,
    connect_timeout: '1s',
    upstream_bind_config: { source_address: { address: '127.0.0.1', port_value: source } },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...extra,
  });
}

test('HTTP/1.1, h2c and TLS upstream connections come from upstream_bind_config.source_address', { timeout: 30_000 }, async () => {
  const pki = testPki();
  const peers: number[] = [];
  const answer = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    peers.push(req.socket.remotePort ?? 0);
    res.end('ok');
  };
  const h1 = http.createServer(answer).listen(0, '127.0.0.1');
  const h2 = http2.createServer(answer).listen(0, '127.0.0.1');
  const tls = https.createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, answer).listen(0, '127.0.0.1');
  await Promise.all([once(h1, 'listening'), once(h2, 'listening'), once(tls, 'listening')]);
  const port = (s: { address(): unknown }): number => (s.address() as AddressInfo).port;
  const [s1, s2, s3] = [await freePort(), await freePort(), await freePort()];
  const h2Options = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
  const tlsSocket = { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: { validation_context: { trusted_ca: { inline_string: pki.ca.certPem } } }, sni: 'localhost' } } };
  const proxy = await startProxy(
    filterHcm(HEADERS, { routes: [{ match: { prefix: '/h1' }, route: { cluster: 'h1' } }, { match: { prefix: '/h2' }, route: { cluster: 'h2' } }, { match: { prefix: '/tls' }, route: { cluster: 'tls' } }] }),
    [cluster('h1', port(h1), s1), cluster('h2', port(h2), s2, h2Options), cluster('tls', port(tls), s3, tlsSocket)],
  );
  try {
    for (const path of ['/h1', '/h1', '/h2', '/tls']) {
      const r = await request(`http://127.0.0.1:${proxy.port}${path}`);
      assert.equal(r.statusCode, 200, path);
      await r.body.dump();
    }
    assert.deepEqual(peers, [s1, s1, s2, s3], 'each cluster’s connections come from its source port (the HTTP/1.1 one reused)');
  } finally {
    await proxy.close();
    h1.close();
    h2.close();
    tls.close();
  }
});

test('upstream_bind_config: a malformed source address and what Node sockets cannot set are refused with their paths', () => {
  const errors = (bind: Record<string, unknown>): string[] => {
    const d = decodeJson('envoy.config.cluster.v3.Cluster', { name: 'c', upstream_bind_config: bind }, { path: 'c' });
    assert.ok(d.ok);
    const r = parseCluster(d.value as Parameters<typeof parseCluster>[0], 'c');
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
  };
  assert.deepEqual(errors({ source_address: { address: '127.0.0.6', port_value: 0 } }), []);
  assert.deepEqual(errors({ source_address: { address: 'localhost', port_value: 0 } }), ['c.upstream_bind_config.source_address.address: malformed IP address: localhost']);
  assert.deepEqual(errors({ source_address: { address: '127.0.0.6', port_value: 0 }, freebind: true }), ['c.upstream_bind_config.freebind: not supported (Node sockets cannot set it)']);
});

test('active health checks connect from the source address too (HTTP and TCP checks)', { timeout: 30_000 }, async () => {
  const seen: Array<{ path: string; port: number }> = [];
  const up = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', port: req.socket.remotePort ?? 0 });
    res.end('ok');
  }).listen(0, '127.0.0.1');
  await once(up, 'listening');
  const source = await freePort();
  const proxy = await startProxy(filterHcm(HEADERS, { routes: [{ match: { prefix: '/' }, route: { cluster: 'checked' } }] }), [
    cluster('checked', (up.address() as AddressInfo).port, source, { health_checks: [{ timeout: '1s', interval: '0.2s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: '/healthz' } }] }),
  ]);
  try {
    const deadline = Date.now() + 10_000;
    while (!seen.some((s) => s.path === '/healthz')) {
      assert.ok(Date.now() < deadline, 'no health check arrived');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...new Set(seen.filter((s) => s.path === '/healthz').map((s) => s.port))], [source]);
  } finally {
    await proxy.close();
    up.closeAllConnections();
    up.close();
  }
});
