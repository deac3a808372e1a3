// Mirror policies at config time (route-mirror.ts: validation, defaults, field paths) and the shadow
// writer's choices (runtime key over default fraction, one draw per request, the -shadow host rule).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { formatErrors, type Result } from '../../../../src/config/result.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { newStreamInfo } from '../../../../src/proxy/http/stream-info.ts';
import { compileRouteTable } from '../../../../src/proxy/http/route-table.ts';
import type { RouteEntry, RouteTable } from '../../../../src/proxy/http/route-types.ts';
import type { RouteConfiguration__Output } from '../../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';
import { Runtime } from '../../../../src/proxy/runtime.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { DEFAULT_ROUTER_CONFIG } from '../../../../src/filters/http/router/config.ts';
import { RouterStatsCache } from '../../../../src/filters/http/router/stats.ts';
import { mirrorPoliciesFor, ShadowWriter, shadowHost } from '../../../../src/filters/http/router/shadow.ts';
import { clusterManager, clusterYaml } from './harness.ts';
import { readBody, startUpstream } from './upstreams.ts';

function compile(y: string, clusterNames?: ReadonlySet<string>): Result<RouteTable> {
  const d = decodeJson<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', parse(y));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  return compileRouteTable(d.value, { path: 'route_config', clusterNames });
}

function errorsOf(y: string, clusterNames?: ReadonlySet<string>): string {
  const r = compile(y, clusterNames);
  assert.equal(r.ok, false, 'expected a config error');
  return r.ok ? '' : formatErrors(r.errors);
}

const info = newStreamInfo({ downstreamRemote: { address: '10.0.0.1', port: 5555 }, downstreamLocal: { address: '10.0.0.2', port: 80 }, connectionId: 1 });

function routeFor(t: RouteTable, authority: string, path: string): RouteEntry {
  const r = t.match(HeaderMap.fromPairs([[':authority', authority], [':path', path], [':method', 'GET']]), info);
  assert.ok(r, `a route for ${authority}${path}`);
  return r;
}

const routes = (policies: string, vhost = '') => `
virtual_hosts:
- name: vh
  domains: ["*"]
  ${vhost}
  routes:
  - match: { prefix: /a }
    route: { cluster: main, request_mirror_policies: ${policies} }
  - match: { prefix: /b }
    route: { cluster: main }`;

test('mirror policies: defaults, cluster_header lower-cased, runtime_fraction kept', () => {
  const r = compile(
    routes(`[{ cluster: s1 }, { cluster_header: X-Mirror }, { cluster: s2, runtime_fraction: { default_value: { numerator: 5, denominator: TEN_THOUSAND }, runtime_key: mirror.s2 }, disable_shadow_host_suffix_append: true, trace_sampled: false }]`),
    new Set(['main', 's1', 's2']),
  );
  assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
  const p = mirrorPoliciesFor(routeFor(r.value, 'x', '/a'));
  assert.deepEqual(p, [
    { cluster: 's1', clusterHeader: undefined, runtimeKey: undefined, defaultValue: { numerator: 100, denominator: 'HUNDRED' }, disableShadowHostSuffixAppend: false },
    { cluster: undefined, clusterHeader: 'x-mirror', runtimeKey: undefined, defaultValue: { numerator: 100, denominator: 'HUNDRED' }, disableShadowHostSuffixAppend: false },
    { cluster: 's2', clusterHeader: undefined, runtimeKey: 'mirror.s2', defaultValue: { numerator: 5, denominator: 'TEN_THOUSAND' }, disableShadowHostSuffixAppend: true },
  ]);
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p[0]));
  assert.deepEqual(mirrorPoliciesFor(routeFor(r.value, 'x', '/b')), []);
});

test('mirror policies: the virtual host default applies only to routes without their own', () => {
  const r = compile(routes(`[{ cluster: s1 }]`, 'request_mirror_policies: [{ cluster: vs }]'));
  assert.ok(r.ok);
  assert.deepEqual(mirrorPoliciesFor(routeFor(r.value, 'x', '/a')).map((p) => p.cluster), ['s1']);
  assert.deepEqual(mirrorPoliciesFor(routeFor(r.value, 'x', '/b')).map((p) => p.cluster), ['vs']);
});

test('mirror policies: Envoy config errors with field paths', () => {
  assert.match(errorsOf(routes(`[{ cluster: s1, cluster_header: x-m }]`)), /route_config\.virtual_hosts\[0\]\.routes\[0\]\.route\.request_mirror_policies\[0\].*Only one of cluster 's1' or cluster_header 'x-m' in request mirror policy can be specified/);
  assert.match(errorsOf(routes(`[{ cluster: s1 }, { disable_shadow_host_suffix_append: true }]`)), /request_mirror_policies\[1\].*Exactly one of cluster or cluster_header in request mirror policy need to be specified/);
  assert.match(errorsOf(routes(`[{ cluster: nope }]`), new Set(['main'])), /routes\[0\]\.route\.request_mirror_policies\[0\]\.cluster.*route: unknown shadow cluster 'nope'/);
  assert.match(errorsOf(routes(`[{ cluster: main }]`, 'request_mirror_policies: [{ cluster: gone }]'), new Set(['main'])), /virtual_hosts\[0\]\.request_mirror_policies\[0\]\.cluster.*unknown shadow cluster 'gone'/);
  // cluster_header names are resolved per request; CDS-only clusters are not checked.
  assert.ok(compile(routes(`[{ cluster_header: x-m }]`), new Set(['main'])).ok);
  assert.ok(compile(routes(`[{ cluster: later }]`)).ok);
});

test('shadowHost: -shadow before the port, IPv6 literals kept whole', () => {
  assert.equal(shadowHost('foo'), 'foo-shadow');
  assert.equal(shadowHost('foo:8080'), 'foo-shadow:8080');
  assert.equal(shadowHost('10.0.0.1:80'), '10.0.0.1-shadow:80');
  assert.equal(shadowHost('[::1]:80'), '[::1]-shadow:80');
  assert.equal(shadowHost('[::1]'), '[::1]-shadow');
});

test('shadow writer: runtime key overrides the default fraction; one draw decides every policy', { timeout: 10_000 }, async () => {
  const up = await startUpstream('http1', (req, res) => void readBody(req).then(() => res.end()));
  const stats = new StatsStore();
  const cm = await clusterManager([clusterYaml('main', up.port), clusterYaml('s1', up.port), clusterYaml('s2', up.port)], stats);
  try {
    const r = compile(
      routes(`[{ cluster: s1, runtime_fraction: { default_value: { numerator: 50 }, runtime_key: mirror.s1 } }, { cluster: s2, runtime_fraction: { default_value: { numerator: 1, denominator: TEN_THOUSAND } } }]`),
    );
    assert.ok(r.ok);
    const route = routeFor(r.value, 'svc', '/a');
    const runtime = new Runtime();
    let draw = 0;
    const writer = new ShadowWriter(DEFAULT_ROUTER_CONFIG, { clusterManager: cm, stats, runtime, random: () => draw }, new RouterStatsCache(stats));
    const start = (d: number) => {
      draw = d;
      const headers = HeaderMap.fromPairs([[':method', 'GET'], [':path', '/a'], [':authority', 'svc']]);
      return writer.start(route, headers, { endStream: true, timeoutMs: 1000, downstreamProtocol: 'HTTP/1.1', mainStatPrefix: 'cluster.main.', bufferLimitBytes: 1024 });
    };
    const total = (c: string) => stats.snapshot().counters[`cluster.${c}.upstream_rq_total`] ?? 0;

    assert.ok(start(0.00005)); // 0.5 of 10000 < 1, and < 50 of 100: both
    assert.equal(total('s1'), 1);
    assert.equal(total('s2'), 1);
    assert.ok(start(0.49)); // 49 < 50: s1 only
    assert.equal(start(0.5), undefined); // neither
    assert.deepEqual([total('s1'), total('s2')], [2, 1]);

    runtime.setAdmin({ 'mirror.s1': '0' });
    assert.equal(start(0.2), undefined);
    runtime.setAdmin({ 'mirror.s1': '100' });
    assert.ok(start(0.99));
    assert.deepEqual([total('s1'), total('s2')], [3, 1]);

    // CONNECT and upgrades are not mirrored.
    draw = 0;
    const connect = HeaderMap.fromPairs([[':method', 'CONNECT'], [':authority', 'svc:443']]);
    assert.equal(writer.start(route, connect, { endStream: false, timeoutMs: 0, downstreamProtocol: 'HTTP/1.1', mainStatPrefix: 'cluster.main.', bufferLimitBytes: 1024 }), undefined);
    await new Promise<void>((res) => {
      const check = () => ((stats.snapshot().counters['cluster.s1.upstream_rq_2xx'] ?? 0) + (stats.snapshot().counters['cluster.s2.upstream_rq_2xx'] ?? 0) === 4 ? res() : setTimeout(check, 5));
      check();
    });
  } finally {
    await cm.close();
    await up.close();
  }
});
