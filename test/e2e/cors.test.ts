// The CORS filter in a real legate process with two workers, as an edge gateway's YAML would set it
// up (the filter in the chain, a CorsPolicy on the virtual host and a route override), answered over
// real sockets with undici; and --mode validate naming a bad policy's field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { runCli, startLegate, writeConfig, type Legate } from '../helpers/legate.ts';
import { httpBootstrap, ROUTER_TYPE } from '../helpers/config.ts';

const TIMEOUT = { timeout: 30_000 };
const POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';
const FILTERS = [
  { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
  { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
];

function bootstrap(port: number, origins: readonly Record<string, unknown>[]): object {
  const b = httpBootstrap({
    routes: [
      { match: { prefix: '/api' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.cors': { '@type': POLICY, allow_methods: 'GET, PUT', max_age: '86400' } } },
      { match: { prefix: '/' }, route: { cluster: 'up' } },
    ],
    clusters: { up: { ports: [port] } },
    hcmExtra: { http_filters: FILTERS },
  }) as { static_resources: { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { route_config: { virtual_hosts: Array<Record<string, unknown>> } } }> }> }> } };
  const vh = b.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.route_config.virtual_hosts[0]!;
  vh['typed_per_filter_config'] = { 'envoy.filters.http.cors': { '@type': POLICY, allow_origin_string_match: origins, allow_methods: 'GET', allow_headers: 'content-type', expose_headers: 'x-request-id' } };
  return b;
}

test('a gateway with CORS on two workers: preflights answered, allowed origins get their headers, stats summed', TIMEOUT, async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let legate: Legate | undefined;
  try {
    legate = await startLegate(bootstrap((server.address() as AddressInfo).port, [{ prefix: 'https://app.' }]), { concurrency: 2 });
    const base = `http://127.0.0.1:${await legate.listenerPort('http')}`;
    for (let i = 0; i < 4; i++) {
      const pre = await request(`${base}/api/items`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'PUT' }, reset: true });
      await pre.body.dump();
      assert.equal(pre.statusCode, 200);
      assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(pre.headers['access-control-allow-methods'], 'GET, PUT');
      assert.equal(pre.headers['access-control-allow-headers'], 'content-type');
      assert.equal(pre.headers['access-control-max-age'], '86400');
    }
    const get = await request(`${base}/items`, { headers: { origin: 'https://app.example' } });
    assert.equal(await get.body.text(), 'ok');
    assert.equal(get.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(get.headers['access-control-expose-headers'], 'x-request-id');
    const denied = await request(`${base}/items`, { headers: { origin: 'https://evil.example' } });
    await denied.body.dump();
    assert.equal(denied.headers['access-control-allow-origin'], undefined);
    assert.deepEqual(seen, ['GET /items', 'GET /items']);
    const s = await legate.stats();
    assert.equal(s['http.ingress_http.cors.origin_valid'], 5);
    assert.equal(s['http.ingress_http.cors.origin_invalid'], 1);
  } finally {
    await legate?.stop();
    server.close();
  }
});

test('--mode validate: a CORS policy that cannot compile names its field and exits non-zero', TIMEOUT, async () => {
  const good = await runCli(['--mode', 'validate', '-c', writeConfig(bootstrap(1, [{ exact: 'https://app.example' }]))]);
  assert.equal(good.code, 0, good.stderr);
  const bad = await runCli(['--mode', 'validate', '-c', writeConfig(bootstrap(1, [{ safe_regex: { regex: 'https://[' } }]))]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /virtual_hosts\[0\]\.typed_per_filter_config\["envoy\.filters\.http\.cors"\]\.allow_origin_string_match\[0\]\.safe_regex\.regex/);
});
