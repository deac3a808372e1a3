// The CORS filter behind the real connection manager and router, over HTTP/1.1 and h2c to a real
// upstream on 127.0.0.1: preflights answered locally (or forwarded when the origin does not match),
// access-control-* headers on allowed responses, per-level settings (route over virtual host,
// typed_per_filter_config over the older `cors` fields), shadow mode, a filter disabled per route,
// direct_response routes left alone, Envoy's cors.* stats, and bad policies rejected with their path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Client, startProxy, type Downstream, type Proxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';

const TIMEOUT = { timeout: 20_000 };
const POLICY_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

interface Up {
  readonly port: number;
  readonly methods: string[];
  close(): Promise<void>;
}

async function upstream(): Promise<Up> {
  const methods: string[] = [];
  const server = http.createServer((req, res) => {
    methods.push(req.method ?? '');
    req.resume();
    res.setHeader('x-total', '3');
    res.end('up');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    methods,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const policy = (fields: Record<string, unknown>): Record<string, unknown> => ({ '@type': POLICY_TYPE, ...fields });

const hcm = (virtualHost: Record<string, unknown>, routes: readonly Record<string, unknown>[]): string =>
  filterHcm({ name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } }, { ...virtualHost, routes });

const cluster = (port: number): string => oneHostCluster('up', port);

const toUp = (prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ match: { prefix }, route: { cluster: 'up' }, ...extra });

const VH_POLICY = policy({
  allow_origin_string_match: [{ exact: 'https://a.example' }, { suffix: '.b.example' }],
  allow_methods: 'GET, POST',
  allow_headers: '*',
  expose_headers: 'x-total',
  max_age: '600',
  allow_credentials: true,
});

const preflight = (origin: string, extra: Record<string, string> = {}): { method: string; path: string; headers: Record<string, string> } => ({
  method: 'OPTIONS',
  path: '/',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-custom', ...extra },
});

async function withProxy(virtualHost: Record<string, unknown>, routes: readonly Record<string, unknown>[], run: (p: Proxy, up: Up) => Promise<void>): Promise<void> {
  const up = await upstream();
  const proxy = await startProxy(hcm(virtualHost, routes), [cluster(up.port)]);
  try {
    await run(proxy, up);
  } finally {
    await proxy.close();
    await up.close();
  }
}

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: a preflight from an allowed origin is answered by legate; allowed requests get the access-control headers`, TIMEOUT, async () => {
    await withProxy({ typed_per_filter_config: { 'envoy.filters.http.cors': VH_POLICY } }, [toUp('/')], async (proxy, up) => {
      const c = new Client(kind, proxy.port);
      try {
        const pre = await c.request(preflight('https://a.example'));
        assert.equal(pre.status, 200);
        assert.equal(pre.headers['access-control-allow-origin'], 'https://a.example');
        assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST');
        assert.equal(pre.headers['access-control-allow-headers'], 'x-custom', 'allow_headers "*" echoes the request’s');
        assert.equal(pre.headers['access-control-max-age'], '600');
        assert.equal(pre.headers['access-control-allow-credentials'], 'true');
        assert.equal(pre.body.length, 0);
        assert.deepEqual(up.methods, [], 'the preflight never reached the upstream');

        const get = await c.request({ path: '/', headers: { origin: 'https://x.b.example' } });
        assert.equal(get.status, 200);
        assert.equal(get.body.toString(), 'up');
        assert.equal(get.headers['access-control-allow-origin'], 'https://x.b.example');
        assert.equal(get.headers['access-control-allow-credentials'], 'true');
        assert.equal(get.headers['access-control-expose-headers'], 'x-total');
        assert.equal(get.headers['access-control-allow-methods'], undefined, 'only preflights carry allow-methods');

        const other = await c.request({ path: '/', headers: { origin: 'https://evil.example' } });
        assert.equal(other.status, 200);
        assert.equal(other.headers['access-control-allow-origin'], undefined);
        assert.equal(other.headers['access-control-allow-credentials'], undefined);

        // An unmatched preflight goes on to the upstream (forward_not_matching_preflights defaults to true).
        const fwd = await c.request(preflight('https://evil.example'));
        assert.equal(fwd.body.toString(), 'up');
        assert.equal(fwd.headers['access-control-allow-origin'], undefined);

        const plain = await c.request({ path: '/' });
        assert.equal(plain.headers['access-control-allow-origin'], undefined);

        assert.deepEqual(up.methods, ['GET', 'GET', 'OPTIONS', 'GET']);
        assert.equal(proxy.counter('http.ingress_http.cors.origin_valid'), 2);
        assert.equal(proxy.counter('http.ingress_http.cors.origin_invalid'), 2);
      } finally {
        c.close();
      }
    });
  });
}

test('the route\'s policy wins setting by setting; forward_not_matching_preflights: false answers an unmatched preflight without allow-origin', TIMEOUT, async () => {
  const routes = [
    toUp('/put', { typed_per_filter_config: { 'envoy.filters.http.cors': policy({ allow_methods: 'PUT', forward_not_matching_preflights: false, allow_credentials: false }) } }),
    toUp('/'),
  ];
  await withProxy({ typed_per_filter_config: { 'envoy.filters.http.cors': VH_POLICY } }, routes, async (proxy, up) => {
    const c = new Client('h1', proxy.port);
    try {
      const pre = await c.request({ ...preflight('https://a.example'), path: '/put' });
      assert.equal(pre.headers['access-control-allow-methods'], 'PUT', 'the route’s allow_methods');
      assert.equal(pre.headers['access-control-allow-origin'], 'https://a.example', 'origins from the virtual host');
      assert.equal(pre.headers['access-control-max-age'], '600', 'max_age from the virtual host');
      assert.equal(pre.headers['access-control-allow-credentials'], undefined, 'the route’s explicit false');
      const refused = await c.request({ ...preflight('https://evil.example'), path: '/put' });
      assert.equal(refused.status, 200);
      assert.equal(refused.headers['access-control-allow-origin'], undefined);
      assert.equal(refused.headers['access-control-allow-methods'], 'PUT');
      assert.deepEqual(up.methods, []);
    } finally {
      c.close();
    }
  });
});

test('the older `cors` fields on the virtual host and the route action apply when no typed_per_filter_config does', TIMEOUT, async () => {
  const vhCors = { allow_origin_string_match: [{ safe_regex: { regex: 'https://(a|c)\\.example' } }], allow_methods: 'GET', expose_headers: 'x-vh' };
  const routes = [{ match: { prefix: '/r' }, route: { cluster: 'up', cors: { expose_headers: 'x-route' } } }, toUp('/')];
  await withProxy({ cors: vhCors }, routes, async (proxy) => {
    const c = new Client('h2', proxy.port);
    try {
      const a = await c.request({ path: '/', headers: { origin: 'https://c.example' } });
      assert.equal(a.headers['access-control-allow-origin'], 'https://c.example');
      assert.equal(a.headers['access-control-expose-headers'], 'x-vh');
      const r = await c.request({ path: '/r', headers: { origin: 'https://a.example' } });
      assert.equal(r.headers['access-control-expose-headers'], 'x-route', 'the route action’s cors first');
      const pre = await c.request({ ...preflight('https://a.example'), path: '/r' });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers['access-control-allow-methods'], 'GET');
    } finally {
      c.close();
    }
  });
});

test('shadow_enabled with filter_enabled at 0%: origins are counted, nothing is enforced or added', TIMEOUT, async () => {
  const shadow = policy({
    allow_origin_string_match: [{ exact: 'https://a.example' }],
    allow_methods: 'GET',
    filter_enabled: { default_value: { numerator: 0 } },
    shadow_enabled: { default_value: { numerator: 100 } },
  });
  await withProxy({ typed_per_filter_config: { 'envoy.filters.http.cors': shadow } }, [toUp('/')], async (proxy, up) => {
    const c = new Client('h1', proxy.port);
    try {
      const pre = await c.request(preflight('https://a.example'));
      assert.equal(pre.body.toString(), 'up', 'the preflight went upstream');
      assert.equal(pre.headers['access-control-allow-origin'], undefined);
      await c.request({ path: '/', headers: { origin: 'https://evil.example' } });
      assert.deepEqual(up.methods, ['OPTIONS', 'GET']);
      assert.equal(proxy.counter('http.ingress_http.cors.origin_valid'), 1);
      assert.equal(proxy.counter('http.ingress_http.cors.origin_invalid'), 1);
    } finally {
      c.close();
    }
  });
});

test('a route that disables the filter, and a direct_response route, are left alone', TIMEOUT, async () => {
  const disabled = { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', disabled: true };
  const routes = [
    toUp('/off', { typed_per_filter_config: { 'envoy.filters.http.cors': disabled } }),
    { match: { prefix: '/direct' }, direct_response: { status: 204 } },
    toUp('/'),
  ];
  await withProxy({ typed_per_filter_config: { 'envoy.filters.http.cors': VH_POLICY } }, routes, async (proxy, up) => {
    const c = new Client('h1', proxy.port);
    try {
      const off = await c.request({ ...preflight('https://a.example'), path: '/off' });
      assert.equal(off.body.toString(), 'up');
      assert.equal(off.headers['access-control-allow-origin'], undefined);
      const direct = await c.request({ ...preflight('https://a.example'), path: '/direct' });
      assert.equal(direct.status, 204);
      assert.equal(direct.headers['access-control-allow-origin'], undefined);
      const on = await c.request({ ...preflight('https://a.example'), path: '/' });
      assert.equal(on.headers['access-control-allow-origin'], 'https://a.example');
      assert.deepEqual(up.methods, ['OPTIONS']);
      assert.equal(proxy.counter('http.ingress_http.cors.origin_valid'), 1);
    } finally {
      c.close();
    }
  });
});

test('a policy whose origin matcher cannot compile rejects the route configuration, naming the field', TIMEOUT, async () => {
  const bad = { allow_origin_string_match: [{ safe_regex: { regex: '(' } }] };
  await assert.rejects(startProxy(hcm({ typed_per_filter_config: { 'envoy.filters.http.cors': policy(bad) } }, [toUp('/')]), [cluster(1)]), /virtual_hosts\[0\]\.typed_per_filter_config\[\\"envoy\.filters\.http\.cors\\"\]\.allow_origin_string_match\[0\]\.safe_regex\.regex/);
  await assert.rejects(startProxy(hcm({ cors: bad }, [toUp('/')]), [cluster(1)]), /virtual_hosts\[0\]\.cors\.allow_origin_string_match\[0\]/);
  await assert.rejects(startProxy(hcm({}, [{ match: { prefix: '/' }, route: { cluster: 'up', cors: bad } }]), [cluster(1)]), /routes\[0\]\.route\.cors\.allow_origin_string_match\[0\]/);
});
