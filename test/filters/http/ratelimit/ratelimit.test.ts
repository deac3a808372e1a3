// The global rate limit filter behind the real connection manager and router, asking a real
// envoy.service.ratelimit.v3.RateLimitService (grpc-js, its definition loaded from Envoy's own
// protos with @grpc/proto-loader) that counts requests per descriptor: descriptors from route and
// virtual host rate_limits, OK and OVER_LIMIT answers with their headers and body, x-ratelimit-*
// headers, a per-route domain, and a service that is down (failure mode allowed, then denied).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { startProxy, type Proxy } from '../router/proxy-harness.ts';
import { filtersHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';
import { startHttp1Upstream, type Upstream } from '../../../helpers/upstreams.ts';
import { closedPort } from '../router/upstreams.ts';
import { loadEnvoyProtos } from '../../../helpers/envoy-protos.ts';


interface RlsRequest {
  domain: string;
  descriptors: Array<{ entries: Array<{ key: string; value: string }> }>;
}

/** A rate limit service allowing `limit` requests per descriptor set (per domain), for ever. */
async function rateLimitService(limit: number): Promise<{ port: number; seen: RlsRequest[]; close(): void }> {
  const pkg = loadEnvoyProtos('envoy/service/ratelimit/v3/rls.proto') as unknown as { envoy: { service: { ratelimit: { v3: { RateLimitService: { service: grpc.ServiceDefinition } } } } } };
  const seen: RlsRequest[] = [];
  const counts = new Map<string, number>();
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.ratelimit.v3.RateLimitService.service, {
    ShouldRateLimit: (call: grpc.ServerUnaryCall<RlsRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const req = call.request;
      seen.push(req);
      const key = `${req.domain}|${JSON.stringify(req.descriptors)}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      const over = n > limit;
      cb(null, {
        overall_code: over ? 'OVER_LIMIT' : 'OK',
        statuses: req.descriptors.map(() => ({ code: over ? 'OVER_LIMIT' : 'OK', current_limit: { requests_per_unit: limit, unit: 'MINUTE', name: 'per-user' }, limit_remaining: Math.max(0, limit - n), duration_until_reset: { seconds: 42 } })),
        response_headers_to_add: over ? [{ key: 'content-type', value: 'application/json' }] : [{ key: 'x-rls-saw', value: String(n) }],
        request_headers_to_add: [{ key: 'x-rls-checked', value: 'yes' }],
        raw_body: over ? Buffer.from('{"error":"slow down"}') : Buffer.alloc(0),
      });
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, seen, close: () => server.forceShutdown() };
}

const RL_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute';

function hcm(filter: Record<string, unknown>): string {
  return filtersHcm([{ name: 'envoy.filters.http.ratelimit', typed_config: { '@type': RL_TYPE, ...filter } }], {
    rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'vh' } }] }],
    routes: [
      { match: { prefix: '/other-domain' }, route: { cluster: 'up', rate_limits: [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }] }] }, typed_per_filter_config: { 'envoy.filters.http.ratelimit': { '@type': PER_ROUTE, domain: 'elsewhere', vh_rate_limits: 'INCLUDE' } } },
      { match: { prefix: '/users' }, route: { cluster: 'up', rate_limits: [{ actions: [{ request_headers: { header_name: 'x-user', descriptor_key: 'user' } }, { generic_key: { descriptor_value: 'users' } }] }] } },
      { match: { prefix: '/' }, route: { cluster: 'up' } },
    ],
  });
}

let rls: Awaited<ReturnType<typeof rateLimitService>>;
let upstream: Upstream;
let proxy: Proxy;
let downProxy: Proxy;
let denyProxy: Proxy;

before(async () => {
  rls = await rateLimitService(2);
  upstream = await startHttp1Upstream();
  const service = (cluster: string): Record<string, unknown> => ({ rate_limit_service: { transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: cluster } } }, timeout: '2s' });
  proxy = await startProxy(hcm({ domain: 'edge', enable_x_ratelimit_headers: 'DRAFT_VERSION_03', ...service('rls') }), [oneHostCluster('up', upstream.port), oneHostCluster('rls', rls.port, true)]);
  const dead = await closedPort();
  downProxy = await startProxy(hcm({ domain: 'edge', ...service('rls') }), [oneHostCluster('up', upstream.port), oneHostCluster('rls', dead, true)]);
  denyProxy = await startProxy(hcm({ domain: 'edge', failure_mode_deny: true, status_on_error: { code: 503 }, ...service('rls') }), [oneHostCluster('up', upstream.port), oneHostCluster('rls', dead, true)]);
});

after(async () => {
  await Promise.all([proxy?.close(), downProxy?.close(), denyProxy?.close()]);
  await upstream?.close();
  rls?.close();
});

/** Each descriptor's entries, as the service decoded them. */
const entries = (r: RlsRequest): Array<RlsRequest['descriptors'][number]['entries']> => r.descriptors.map((d) => d.entries);

async function get(p: Proxy, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const r = await request(`http://127.0.0.1:${p.port}${path}`, { headers });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

test('OK then OVER_LIMIT: the service’s headers both ways, then 429 with its body, x-envoy-ratelimited and x-ratelimit-*', { timeout: 20_000 }, async () => {
  const before = upstream.seen.length;
  for (let i = 1; i <= 2; i++) {
    const r = await get(proxy, '/users/1', { 'x-user': 'alice' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-rls-saw'], String(i), 'the service’s response_headers_to_add');
    assert.equal(r.headers['x-ratelimit-remaining'], String(2 - i));
    assert.equal(upstream.seen.at(-1)!.headers['x-rls-checked'], 'yes', 'the service’s request_headers_to_add');
  }
  const limited = await get(proxy, '/users/1', { 'x-user': 'alice' });
  assert.equal(limited.status, 429);
  assert.equal(limited.body, '{"error":"slow down"}');
  assert.equal(limited.headers['content-type'], 'application/json', 'the service’s content-type over the local reply’s');
  assert.equal(limited.headers['x-envoy-ratelimited'], 'true');
  assert.equal(limited.headers['x-ratelimit-limit'], '2, 2;w=60;name="per-user"');
  assert.equal(limited.headers['x-ratelimit-remaining'], '0');
  assert.equal(limited.headers['x-ratelimit-reset'], '42');
  assert.equal(upstream.seen.length, before + 2, 'the limited request never reached the upstream');
  assert.equal((await get(proxy, '/users/1', { 'x-user': 'bob' })).status, 200, 'another user is another descriptor');
  // The route's descriptor (its two actions) only: with route rate_limits, the virtual host's are overridden.
  const last = rls.seen.at(-1)!;
  assert.equal(last.domain, 'edge');
  assert.deepEqual(entries(last), [[{ key: 'user', value: 'bob' }, { key: 'generic_key', value: 'users' }]]);
  assert.equal(proxy.counter('cluster.up.ratelimit.ok'), 3);
  assert.equal(proxy.counter('cluster.up.ratelimit.over_limit'), 1);
});

test('a route without rate_limits uses the virtual host’s; RateLimitPerRoute changes the domain and includes them', { timeout: 20_000 }, async () => {
  assert.equal((await get(proxy, '/plain')).status, 200);
  assert.deepEqual(entries(rls.seen.at(-1)!), [[{ key: 'generic_key', value: 'vh' }]]);
  assert.equal((await get(proxy, '/other-domain', { 'x-user': 'carol' })).status, 200);
  const last = rls.seen.at(-1)!;
  assert.equal(last.domain, 'elsewhere');
  assert.deepEqual(entries(last), [[{ key: 'user', value: 'carol' }], [{ key: 'generic_key', value: 'vh' }]]);
  const n = rls.seen.length;
  assert.equal((await get(proxy, '/other-domain')).status, 200);
  assert.equal(rls.seen.length, n + 1, 'a missing x-user drops that descriptor; the virtual host’s still goes');
});

test('the service down: requests go on (failure_mode_allowed), or with failure_mode_deny get status_on_error and flag RLSE', { timeout: 20_000 }, async () => {
  assert.equal((await get(downProxy, '/users/1', { 'x-user': 'dave' })).status, 200);
  assert.equal(downProxy.counter('cluster.up.ratelimit.error'), 1);
  assert.equal(downProxy.counter('cluster.up.ratelimit.failure_mode_allowed'), 1);
  const denied = await get(denyProxy, '/users/1', { 'x-user': 'dave' });
  assert.equal(denied.status, 503);
  assert.equal(denyProxy.counter('cluster.up.ratelimit.error'), 1);
  assert.equal(denyProxy.counter('cluster.up.ratelimit.failure_mode_allowed'), 0);
});

test('a metadata action reads dynamic metadata (here set by header_to_metadata): the value, else default_value, else skip_if_absent', { timeout: 20_000 }, async () => {
  const fromMetadata = (key: string): Record<string, unknown> => ({ descriptor_key: key, metadata_key: { key: 'envoy.filters.http.header_to_metadata', path: [{ key }] } });
  const hcmYaml = filtersHcm(
    [
      { name: 'envoy.filters.http.header_to_metadata', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config', request_rules: [{ header: 'x-tenant', on_header_present: { key: 'tenant' } }, { header: 'x-tier', on_header_present: { key: 'tier' } }] } },
      { name: 'envoy.filters.http.ratelimit', typed_config: { '@type': RL_TYPE, domain: 'meta', rate_limit_service: { transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'rls' } } }, timeout: '2s' } },
    ],
    {
      routes: [{
        match: { prefix: '/' },
        route: {
          cluster: 'up',
          rate_limits: [
            { actions: [{ metadata: { ...fromMetadata('tenant'), default_value: 'anonymous' } }] },
            { actions: [{ generic_key: { descriptor_value: 'tier' } }, { metadata: { ...fromMetadata('tier'), skip_if_absent: true } }] },
          ],
        },
      }],
    },
    { stat_prefix: 'meta' },
  );
  const p = await startProxy(hcmYaml, [oneHostCluster('up', upstream.port), oneHostCluster('rls', rls.port, true)]);
  try {
    assert.equal((await get(p, '/', { 'x-tenant': 'acme', 'x-tier': 'gold' })).status, 200);
    assert.deepEqual(entries(rls.seen.at(-1)!), [[{ key: 'tenant', value: 'acme' }], [{ key: 'generic_key', value: 'tier' }, { key: 'tier', value: 'gold' }]]);
    assert.equal((await get(p, '/')).status, 200);
    assert.deepEqual(entries(rls.seen.at(-1)!), [[{ key: 'tenant', value: 'anonymous' }], [{ key: 'generic_key', value: 'tier' }]], 'default_value; skip_if_absent keeps the rest of the descriptor');
  } finally {
    await p.close();
  }
});
