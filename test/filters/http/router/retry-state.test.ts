// RetryState and the retry policy parser without sockets: Envoy's decisions for each retry_on
// condition, the retries breaker, x-envoy-* request headers, back-off bounds and Retry-After.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { ClusterRouterStats } from '../../../../src/filters/http/router/stats.ts';
import { JitteredBackOff, RetryState } from '../../../../src/filters/http/router/retry-state.ts';
import { parseRetryPolicy, parseRetryOn, RetryOn, EMPTY_RETRY_POLICY } from '../../../../src/filters/http/router/retry-policy.ts';
import type { RetryPolicy__Output } from '../../../../src/generated/envoy/config/route/v3/RetryPolicy.ts';
import { decodeJson } from '../../../../src/config/decode.ts';
import type { ResourceLimit } from '../../../../src/proxy/upstream/types.ts';

function policy(json: object) {
  const d = decodeJson<RetryPolicy__Output>('envoy.config.route.v3.RetryPolicy', json);
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const p = parseRetryPolicy(d.value, 'rp');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return p.value;
}

function limit(max: number): ResourceLimit & { held: number } {
  return {
    held: 0,
    tryAcquire() {
      if (this.held >= max) return false;
      this.held++;
      return true;
    },
    release() {
      this.held--;
    },
    get open() {
      return this.held >= max;
    },
  };
}

function response(status: number, extra: Record<string, string> = {}): HeaderMap {
  const h = new HeaderMap();
  h.set(':status', String(status));
  for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return h;
}

function setup(json: object, req: Record<string, string> = {}, max = 3) {
  const store = new StatsStore();
  const stats = new ClusterRouterStats(store, 'cluster.c.');
  const lim = limit(max);
  const h = new HeaderMap();
  for (const [k, v] of Object.entries(req)) h.set(k, v);
  const s = RetryState.create(json === EMPTY_RETRY_POLICY ? EMPTY_RETRY_POLICY : policy(json), h, { stats, retries: lim, random: () => 0.999 });
  const c = (n: string) => store.snapshot().counters[`cluster.c.${n}`] ?? 0;
  return { s, lim, c };
}

test('retry_on tokens, defaults, and config errors with paths', () => {
  assert.equal(parseRetryOn('5xx, reset,bogus', 'http'), RetryOn.x5xx | RetryOn.reset);
  assert.equal(parseRetryOn('unavailable,5xx', 'grpc'), RetryOn.grpcUnavailable);
  const p = policy({ retry_on: '5xx' });
  assert.equal(p.numRetries, 1);
  assert.equal(p.baseIntervalMs, 25);
  assert.equal(p.maxIntervalMs, 250);
  const d = decodeJson<RetryPolicy__Output>('envoy.config.route.v3.RetryPolicy', { retry_host_predicate: [{ name: 'envoy.retry_host_predicates.omit_canary_hosts' }] });
  assert.ok(d.ok);
  const bad = parseRetryPolicy(d.value, 'routes[0].route.retry_policy');
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.equal(bad.errors[0]!.path, 'routes[0].route.retry_policy.retry_host_predicate[0]');
});

test('decisions per condition; x-envoy-ratelimited only under envoy-ratelimited', () => {
  const cases: [string, HeaderMap, boolean][] = [
    ['5xx', response(500), true],
    ['5xx', response(404), false],
    ['gateway-error', response(500), false],
    ['gateway-error', response(504), true],
    ['retriable-4xx', response(409), true],
    ['5xx', response(503, { 'x-envoy-ratelimited': 'true' }), false],
    ['envoy-ratelimited', response(429, { 'x-envoy-ratelimited': 'true' }), true],
    ['unavailable', response(200, { 'grpc-status': '14' }), true],
    ['deadline-exceeded', response(200, { 'grpc-status': '14' }), false],
    ['resource-exhausted,internal', response(200, { 'grpc-status': '13' }), true],
  ];
  for (const [on, headers, want] of cases) {
    const { s } = setup({ retry_on: on, num_retries: 5 });
    assert.equal(s!.shouldRetryHeaders(headers).kind, want ? 'yes' : 'no', `${on} ${headers.get(':status')}`);
  }
  const resets: [string, 'connect_failure' | 'reset' | 'refused_stream' | 'timeout', boolean][] = [
    ['connect-failure', 'connect_failure', true],
    ['connect-failure', 'timeout', false],
    ['refused-stream', 'refused_stream', true],
    ['refused-stream', 'reset', false],
    ['5xx', 'timeout', true],
    ['reset', 'reset', true],
  ];
  for (const [on, kind, want] of resets) assert.equal(setup({ retry_on: on, num_retries: 5 }).s!.shouldRetryReset(kind).kind, want ? 'yes' : 'no', `${on} ${kind}`);
});

test('limits: retries exhausted, breaker overflow, retriable_request_headers, header overrides', () => {
  const a = setup({ retry_on: '5xx', num_retries: 1 });
  assert.equal(a.s!.shouldRetryHeaders(response(503)).kind, 'yes');
  assert.equal(a.lim.held, 1);
  assert.equal(a.s!.shouldRetryHeaders(response(503)).kind, 'limit');
  assert.equal(a.lim.held, 0);
  assert.equal(a.c('upstream_rq_retry_limit_exceeded'), 1);

  const b = setup({ retry_on: '5xx', num_retries: 3 }, {}, 0);
  assert.equal(b.s!.shouldRetryHeaders(response(503)).kind, 'overflow');
  assert.equal(b.c('upstream_rq_retry_overflow'), 1);

  assert.equal(setup({ retry_on: '5xx', retriable_request_headers: [{ name: 'x-idem', present_match: true }] }).s, undefined);
  assert.notEqual(setup({ retry_on: '5xx', retriable_request_headers: [{ name: 'x-idem', present_match: true }] }, { 'x-idem': '1' }).s, undefined);

  assert.equal(setup(EMPTY_RETRY_POLICY).s, undefined);
  const h = setup(EMPTY_RETRY_POLICY, { 'x-envoy-retry-on': 'retriable-status-codes', 'x-envoy-retriable-status-codes': '418', 'x-envoy-max-retries': '2' });
  assert.equal(h.s!.shouldRetryHeaders(response(418)).kind, 'yes');
  assert.equal(h.s!.shouldRetryHeaders(response(418)).kind, 'yes');
  assert.equal(h.s!.shouldRetryHeaders(response(418)).kind, 'limit');
  const n = setup(EMPTY_RETRY_POLICY, { 'x-envoy-retry-on': 'retriable-headers', 'x-envoy-retriable-header-names': 'x-again' });
  assert.equal(n.s!.shouldRetryHeaders(response(200, { 'x-again': '1' })).kind, 'yes');
  assert.equal(n.s!.shouldRetryHeaders(response(200)).kind, 'no');
  assert.equal(n.c('upstream_rq_retry_success'), 1);
});

test('back-off: fully jittered exponential under the cap; Retry-After sets the rate-limited interval', () => {
  const maxes = [];
  const b = new JitteredBackOff(25, 250, () => 0.999);
  for (let i = 0; i < 6; i++) maxes.push(b.nextMs());
  assert.deepEqual(maxes, [24, 74, 174, 250, 250, 250]);
  const z = new JitteredBackOff(25, 250, () => 0);
  assert.equal(z.nextMs(), 0);

  const { s, c } = setup({ retry_on: 'retriable-status-codes', retriable_status_codes: [429], num_retries: 3, rate_limited_retry_back_off: { reset_headers: [{ name: 'Retry-After' }], max_interval: '10s' } });
  const r = s!.shouldRetryHeaders(response(429, { 'retry-after': '2' }));
  assert.equal(r.kind, 'yes');
  if (r.kind === 'yes') assert.ok(r.delayMs >= 2000 && r.delayMs < 3000, String(r.delayMs));
  assert.equal(c('upstream_rq_retry_backoff_ratelimited'), 1);
  // Over max_interval: ignored, the exponential back-off applies.
  const e = s!.shouldRetryHeaders(response(429, { 'retry-after': '60' }));
  if (e.kind === 'yes') assert.ok(e.delayMs < 250);
  assert.equal(c('upstream_rq_retry_backoff_exponential'), 1);
});
