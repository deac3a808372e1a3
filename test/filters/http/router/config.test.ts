// Router config parsing and registration: Envoy's defaults, the name/alias/type URL lookups, and
// the grpc-timeout / x-envoy timeout header rules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson } from '../../../../src/config/decode.ts';
import { ExtensionRegistry } from '../../../../src/filters/registry.ts';
import { register } from '../../../../src/filters/http/router/index.ts';
import { parseRouter } from '../../../../src/filters/http/router/config.ts';
import { computeTimeout, setTimeoutHeaders } from '../../../../src/filters/http/router/timeout.ts';
import { formatGrpcTimeout, parseGrpcTimeout } from '../../../../src/proxy/http/grpc-timeout.ts';
import type { Router__Output } from '../../../../src/generated/envoy/extensions/filters/http/router/v3/Router.ts';
import { clusterRoute, requestHeaders } from './harness.ts';

const ctx = { path: 'http_filters[0].typed_config', clusterNames: undefined };

function decode(json: unknown): Router__Output {
  const r = decodeJson<Router__Output>('envoy.extensions.filters.http.router.v3.Router', json);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

test('defaults: dynamic_stats on, envoy headers on', () => {
  const r = parseRouter(decode({}), ctx);
  assert.ok(r.ok);
  assert.deepEqual({ ...r.value }, { suppressEnvoyHeaders: false, dynamicStats: true, respectExpectedRqTimeout: false, strictCheckHeaders: [] });
  assert.ok(Object.isFrozen(r.value));
});

test('fields are read; start_child_span is accepted', () => {
  const r = parseRouter(decode({ suppress_envoy_headers: true, dynamic_stats: false, respect_expected_rq_timeout: true, start_child_span: true, strict_check_headers: ['x-envoy-max-retries'] }), ctx);
  assert.ok(r.ok);
  assert.deepEqual({ ...r.value }, { suppressEnvoyHeaders: true, dynamicStats: false, respectExpectedRqTimeout: true, strictCheckHeaders: ['x-envoy-max-retries'] });
  // A header outside Envoy's list fails the proto's own validation.
  assert.throws(() => decode({ strict_check_headers: ['x-envoy-max-retries', 'x-custom'] }), /strict_check_headers\[1\].*value must be in list \[x-envoy-upstream-rq-timeout-ms/);
});

test('upstream_http_filters are refused with their path', () => {
  const r = parseRouter(decode({ upstream_http_filters: [{ name: 'envoy.filters.http.upstream_codec' }] }), ctx);
  assert.equal(r.ok, false);
  assert.equal(r.ok ? '' : r.errors[0]!.path, 'http_filters[0].typed_config.upstream_http_filters');
});

test('registered by name, alias and type URL as a terminal HTTP filter', () => {
  const reg = new ExtensionRegistry();
  register(reg);
  const byType = reg.find('http', 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', undefined);
  assert.ok(byType);
  assert.equal(byType.name, 'envoy.filters.http.router');
  assert.equal(byType.terminal, true);
  assert.equal(reg.find('http', undefined, 'envoy.router'), byType);
  assert.equal(reg.find('http', undefined, 'envoy.filters.http.router'), byType);
});

test('grpc-timeout parsing', () => {
  assert.equal(parseGrpcTimeout('200m'), 200);
  assert.equal(parseGrpcTimeout('1S'), 1000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('1500u'), 2);
  assert.equal(parseGrpcTimeout('5000000n'), 5);
  assert.equal(parseGrpcTimeout('12x'), undefined);
  assert.equal(parseGrpcTimeout('m'), undefined);
  assert.equal(parseGrpcTimeout('123456789m'), undefined);
  assert.equal(formatGrpcTimeout(250), '250m');
});

const cfg = { suppressEnvoyHeaders: false, dynamicStats: true, respectExpectedRqTimeout: false, strictCheckHeaders: [] };

test('timeout: route default, x-envoy-upstream-rq-timeout-ms override (consumed), expected header set', () => {
  const h = requestHeaders('GET', '/', { 'x-envoy-upstream-rq-timeout-ms': '250', 'x-envoy-upstream-rq-timeout-alt-response': '' });
  const t = computeTimeout(h, clusterRoute({ timeoutMs: 15_000 }).action as never, cfg, false);
  assert.deepEqual(t, { timeoutMs: 250, altResponse: true, perTryTimeoutMs: 0, rewriteGrpcTimeout: false });
  assert.equal(h.get('x-envoy-upstream-rq-timeout-ms'), undefined);
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '250');
  const h2 = requestHeaders('GET', '/', { 'x-envoy-upstream-rq-timeout-ms': 'bogus' });
  assert.equal(computeTimeout(h2, clusterRoute({ timeoutMs: 1000 }).action as never, { ...cfg, suppressEnvoyHeaders: true }, false).timeoutMs, 1000);
  assert.equal(h2.get('x-envoy-expected-rq-timeout-ms'), undefined);
});

test('timeout: a request without x-envoy-* headers (the one-pass path) gets what one with an unrelated x-envoy-* header gets', () => {
  const cases: Array<{ timeoutMs: number; perTry: number; suppress: boolean }> = [
    { timeoutMs: 15_000, perTry: 0, suppress: false },
    { timeoutMs: 15_000, perTry: 500, suppress: false },
    { timeoutMs: 400, perTry: 500, suppress: false }, // per-try not below the route timeout: ignored
    { timeoutMs: 500, perTry: 500, suppress: false },
    { timeoutMs: 0, perTry: 500, suppress: false },
    { timeoutMs: 15_000, perTry: 0, suppress: true },
  ];
  for (const c of cases) {
    const action = clusterRoute({ timeoutMs: c.timeoutMs }).action as never;
    const config = { ...cfg, suppressEnvoyHeaders: c.suppress };
    const plain = requestHeaders('GET', '/', { accept: '*/*' });
    assert.equal(plain.hasPrefix('x-envoy-'), false);
    // x-envoy-downstream-service-cluster is read by nothing here: it sends the request down the general path.
    const general = requestHeaders('GET', '/', { accept: '*/*', 'x-envoy-downstream-service-cluster': 'c' });
    assert.equal(general.hasPrefix('x-envoy-'), true);
    const a = computeTimeout(plain, action, config, false, c.perTry);
    const b = computeTimeout(general, action, config, false, c.perTry);
    assert.deepEqual(a, b, JSON.stringify(c));
    assert.equal(plain.get('x-envoy-expected-rq-timeout-ms'), general.get('x-envoy-expected-rq-timeout-ms'), JSON.stringify(c));
    assert.equal(plain.getAll('x-envoy-expected-rq-timeout-ms').length, (c.timeoutMs > 0 || c.perTry > 0) && !c.suppress ? 1 : 0);
  }
});

test('timeout: respect_expected_rq_timeout reads x-envoy-expected-rq-timeout-ms', () => {
  const h = requestHeaders('GET', '/', { 'x-envoy-expected-rq-timeout-ms': '300', 'x-envoy-upstream-rq-timeout-ms': '900' });
  assert.equal(computeTimeout(h, clusterRoute({}).action as never, { ...cfg, respectExpectedRqTimeout: true }, false).timeoutMs, 300);
});

test('timeout: max_grpc_timeout honours grpc-timeout less grpc_timeout_offset, then capped; no header → the cap', () => {
  const raw = { max_grpc_timeout: { seconds: '1', nanos: 0 }, grpc_timeout_offset: { seconds: '0', nanos: 50_000_000 } };
  const action = clusterRoute({ timeoutMs: 15_000, raw }).action as never;
  const h = requestHeaders('POST', '/svc/M', { 'grpc-timeout': '300m', 'content-type': 'application/grpc' });
  assert.equal(computeTimeout(h, action, cfg, true).timeoutMs, 250);
  assert.equal(h.get('grpc-timeout'), '250m');
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '250');
  // The offset comes off first (9950 ms), then the cap.
  const capped = requestHeaders('POST', '/svc/M', { 'grpc-timeout': '10S' });
  assert.equal(computeTimeout(capped, action, cfg, true).timeoutMs, 1000);
  assert.equal(capped.get('grpc-timeout'), '1000m');
  // An offset not below the header's value is not applied.
  assert.equal(computeTimeout(requestHeaders('POST', '/svc/M', { 'grpc-timeout': '30m' }), action, cfg, true).timeoutMs, 30);
  assert.equal(computeTimeout(requestHeaders('POST', '/svc/M'), action, cfg, true).timeoutMs, 1000);
  // Not gRPC, or no max_grpc_timeout: the route timeout stands and grpc-timeout is left alone.
  const plain = requestHeaders('POST', '/svc/M', { 'grpc-timeout': '300m' });
  assert.equal(computeTimeout(plain, action, cfg, false).timeoutMs, 15_000);
  assert.equal(computeTimeout(plain, clusterRoute({ timeoutMs: 15_000 }).action as never, cfg, true).timeoutMs, 15_000);
  assert.equal(plain.get('grpc-timeout'), '300m');
});

test('timeout: a route with max_stream_duration has no router timeout (the connection manager bounds the stream) but x-envoy-upstream-rq-timeout-ms still sets one', () => {
  const action = clusterRoute({ timeoutMs: 15_000, raw: { max_grpc_timeout: { seconds: '1', nanos: 0 } } }).action;
  const withDuration = { ...action, streamDuration: { maxMs: 0, grpcHeaderMaxMs: 0, grpcHeaderOffsetMs: 0 } } as never;
  const h = requestHeaders('POST', '/svc/M', { 'grpc-timeout': '300m' });
  assert.equal(computeTimeout(h, withDuration, cfg, true).timeoutMs, 0);
  assert.equal(h.get('grpc-timeout'), '300m');
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), undefined);
  assert.equal(computeTimeout(requestHeaders('GET', '/', { 'x-envoy-upstream-rq-timeout-ms': '700' }), withDuration, cfg, false).timeoutMs, 700);
});

test('timeout: respect_expected_rq_timeout falls back to x-envoy-upstream-rq-timeout-ms when the expected header is absent', () => {
  const respect = { ...cfg, respectExpectedRqTimeout: true };
  const h = requestHeaders('GET', '/', { 'x-envoy-upstream-rq-timeout-ms': '900' });
  assert.equal(computeTimeout(h, clusterRoute({}).action as never, respect, false).timeoutMs, 900);
  assert.equal(h.get('x-envoy-upstream-rq-timeout-ms'), undefined);
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '900');
});

test('timeout: the expected-timeout header is the per-try timeout, the route timeout when hedging, less the time used on a retry', () => {
  const action = clusterRoute({ timeoutMs: 1000 }).action as never;
  const h = requestHeaders('GET', '/');
  const t = computeTimeout(h, action, cfg, false, 300);
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '300');
  setTimeoutHeaders(h, t, 800, true, false);
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '200');
  setTimeoutHeaders(h, t, 1500, true, false);
  assert.equal(h.get('x-envoy-expected-rq-timeout-ms'), '1', 'out of time: 1, the least that can be said');
  const hedged = requestHeaders('GET', '/');
  computeTimeout(hedged, action, cfg, false, 300, true);
  assert.equal(hedged.get('x-envoy-expected-rq-timeout-ms'), '1000');
  // No route timeout: the per-try timeout alone is still announced.
  const noRoute = requestHeaders('GET', '/');
  computeTimeout(noRoute, clusterRoute({ timeoutMs: 0 }).action as never, cfg, false, 500);
  assert.equal(noRoute.get('x-envoy-expected-rq-timeout-ms'), '500');
});
