// Circuit breakers, unit level: thresholds parsing (defaults, errors with paths), retry budget math,
// process-wide counting over one SharedArrayBuffer seen by two "workers", gauges and overflow counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { DEFAULT_THRESHOLDS, parseCircuitBreakers, retryBudgetLimit } from '../../../src/proxy/upstream/circuit-breakers-config.ts';
import { ClusterCircuitBreakers, routePriority } from '../../../src/proxy/upstream/circuit-breakers.ts';
import { SharedCounters } from '../../../src/proxy/shared-counters.ts';
import { StatsStore, mergeSnapshots } from '../../../src/proxy/stats.ts';

function cluster(extra: string): Cluster__Output {
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(`name: web\nconnect_timeout: 1s\n${extra}`));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  return d.value;
}

test('thresholds: Envoy defaults (1024/1024/1024/3) for both priorities when absent', () => {
  const r = parseCluster(cluster(''), 'clusters[0]');
  assert.ok(r.ok);
  assert.deepEqual(r.value.circuitBreakers.DEFAULT, DEFAULT_THRESHOLDS);
  assert.deepEqual(r.value.circuitBreakers.HIGH, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retryBudget: undefined, trackRemaining: false });
  assert.equal(r.value.maxConnections, 1024);
});

test('thresholds: per priority, unset fields defaulted, first entry per priority wins, retry budget defaults', () => {
  const r = parseCluster(
    cluster(`
circuit_breakers:
  thresholds:
  - { max_connections: 7, max_requests: 5, track_remaining: true }
  - { priority: HIGH, max_pending_requests: 2, max_retries: 9, retry_budget: {} }
  - { priority: DEFAULT, max_connections: 99 }
`),
    'clusters[0]',
  );
  assert.ok(r.ok);
  const cb = r.value.circuitBreakers;
  assert.deepEqual(cb.DEFAULT, { maxConnections: 7, maxPendingRequests: 1024, maxRequests: 5, maxRetries: 3, retryBudget: undefined, trackRemaining: true });
  assert.deepEqual(cb.HIGH, { maxConnections: 1024, maxPendingRequests: 2, maxRequests: 1024, maxRetries: 9, retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 }, trackRemaining: false });
  assert.equal(r.value.maxConnections, 7);
});

test('thresholds: budget_percent out of range is an error naming its path; per_host_thresholds warns', () => {
  // The decoder's PGV rules reject it first; the parser checks too (config built without the decoder).
  const decoded = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse('name: web\ncircuit_breakers: { thresholds: [ { retry_budget: { budget_percent: { value: 150 } } } ] }'));
  assert.ok(!decoded.ok);
  const c = cluster('circuit_breakers: { thresholds: [ { retry_budget: { budget_percent: { value: 50 } } } ] }');
  c.circuit_breakers!.thresholds[0]!.retry_budget!.budget_percent = { value: 150 };
  const bad = parseCluster(c, 'clusters[3]');
  assert.ok(!bad.ok);
  assert.deepEqual(bad.errors, [{ path: 'clusters[3].circuit_breakers.thresholds[0].retry_budget.budget_percent.value', reason: 'value must be inside range [0, 100]' }]);
  const warn = parseCircuitBreakers(cluster('circuit_breakers: { per_host_thresholds: [ { max_connections: 1 } ] }').circuit_breakers, 'cb');
  assert.ok(warn.ok);
  assert.deepEqual(warn.warnings, ['cb.per_host_thresholds: per-host circuit breakers are not enforced']);
});

test('retry budget: max(min_retry_concurrency, budget% × (active + pending)), truncated', () => {
  const b = { budgetPercent: 20, minRetryConcurrency: 3 };
  assert.equal(retryBudgetLimit(b, 0, 0), 3);
  assert.equal(retryBudgetLimit(b, 10, 0), 3); // 2 < 3
  assert.equal(retryBudgetLimit(b, 20, 0), 4);
  assert.equal(retryBudgetLimit(b, 20, 5), 5);
  assert.equal(retryBudgetLimit(b, 24, 0), 4); // 4.8 → 4
  assert.equal(retryBudgetLimit({ budgetPercent: 25, minRetryConcurrency: 0 }, 100, 0), 25);
  assert.equal(retryBudgetLimit({ budgetPercent: 0, minRetryConcurrency: 1 }, 1000, 1000), 1);
});

test('routePriority: RouteAction.priority HIGH, anything else DEFAULT', () => {
  assert.equal(routePriority({ priority: 'HIGH' }), 'HIGH');
  assert.equal(routePriority({ priority: 'DEFAULT' }), 'DEFAULT');
  assert.equal(routePriority(undefined), 'DEFAULT');
});

function twoWorkers(extra: string): { a: ClusterCircuitBreakers; b: ClusterCircuitBreakers; sa: StatsStore; sb: StatsStore } {
  const r = parseCluster(cluster(extra), 'c');
  assert.ok(r.ok);
  const shared = SharedCounters.create(256);
  const sa = new StatsStore();
  const sb = new StatsStore();
  // Two workers: separate SharedCounters views over one buffer, separate stats.
  const a = new ClusterCircuitBreakers('web', 'cluster.web.', r.value.circuitBreakers, new SharedCounters(shared.buffer), sa);
  const b = new ClusterCircuitBreakers('web', 'cluster.web.', r.value.circuitBreakers, new SharedCounters(shared.buffer), sb);
  return { a, b, sa, sb };
}

test('requests: the limit is process-wide; overflow counts upstream_rq_pending_overflow; rq_open and remaining_rq', () => {
  const { a, b, sa, sb } = twoWorkers('circuit_breakers: { thresholds: [ { max_requests: 3, track_remaining: true } ] }');
  const ra = a.get('DEFAULT').requests;
  const rb = b.get('DEFAULT').requests;
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.remaining_rq'], 3);
  assert.ok(ra.tryAcquire());
  assert.ok(rb.tryAcquire());
  assert.ok(ra.tryAcquire());
  assert.equal(rb.tryAcquire(), false);
  assert.equal(ra.tryAcquire(), false);
  assert.ok(ra.open && rb.open);
  assert.equal(sa.snapshot().counters['cluster.web.upstream_rq_pending_overflow'], 1);
  assert.equal(sb.snapshot().counters['cluster.web.upstream_rq_pending_overflow'], 1);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.rq_open'], 1);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.remaining_rq'], 0);
  // Worker b releases everything; a's gauges are stale until refreshed (done before each stats snapshot).
  rb.release();
  rb.release();
  rb.release();
  assert.equal(sb.snapshot().gauges['cluster.web.circuit_breakers.default.rq_open'], 0);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.rq_open'], 1);
  a.refreshGauges();
  const merged = mergeSnapshots([sa.snapshot(), sb.snapshot()], { ...sa.gaugeModes(), ...sb.gaugeModes() });
  assert.equal(merged.gauges['cluster.web.circuit_breakers.default.rq_open'], 0);
  assert.equal(merged.gauges['cluster.web.circuit_breakers.default.remaining_rq'], 3); // 'max' merge: not 6
  assert.equal(merged.counters['cluster.web.upstream_rq_pending_overflow'], 2);
  // HIGH is separate and untracked.
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.high.remaining_rq'], undefined);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.high.rq_open'], 0);
});

test('connections: overflow counts upstream_cx_overflow; forceAcquire goes past the limit; cx_open', () => {
  const { a, sa } = twoWorkers('circuit_breakers: { thresholds: [ { max_connections: 1, track_remaining: true } ] }');
  const cx = a.get('DEFAULT').connections;
  assert.ok(cx.tryAcquire());
  assert.equal(cx.tryAcquire(), false);
  cx.forceAcquire();
  assert.equal(cx.count, 2);
  const s = sa.snapshot();
  assert.equal(s.counters['cluster.web.upstream_cx_overflow'], 1);
  assert.equal(s.gauges['cluster.web.circuit_breakers.default.cx_open'], 1);
  assert.equal(s.gauges['cluster.web.circuit_breakers.default.remaining_cx'], 0);
  assert.equal(s.gauges['cluster.web.circuit_breakers.default.cx_pool_open'], 0);
  cx.release();
  cx.release();
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.cx_open'], 0);
});

test('retries: max_retries, or the retry budget over active + pending requests (remaining_retries follows)', () => {
  const fixed = twoWorkers('circuit_breakers: { thresholds: [ { max_retries: 2 } ] }');
  const rf = fixed.a.get('DEFAULT').retries;
  assert.ok(rf.tryAcquire() && rf.tryAcquire());
  assert.equal(rf.tryAcquire(), false);
  assert.equal(fixed.sa.snapshot().gauges['cluster.web.circuit_breakers.default.rq_retry_open'], 1);
  // Retry overflow is counted by the retry logic, not the breaker.
  assert.equal(fixed.sa.snapshot().counters['cluster.web.upstream_rq_retry_overflow'], undefined);

  const { a, b, sa } = twoWorkers('circuit_breakers: { thresholds: [ { max_retries: 100, track_remaining: true, retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 1 } } ] }');
  const d = a.get('DEFAULT');
  assert.equal(d.retries.limit, 1); // budget overrides max_retries
  for (let i = 0; i < 4; i++) assert.ok(d.requests.tryAcquire());
  assert.ok(b.get('DEFAULT').pendingRequests.tryAcquire());
  assert.ok(b.get('DEFAULT').pendingRequests.tryAcquire());
  assert.equal(d.retries.limit, 3); // 50% of 6
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.remaining_retries'], 2); // a saw 5 of the 6 when it last counted
  a.refreshGauges();
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.remaining_retries'], 3);
  assert.ok(d.retries.tryAcquire() && d.retries.tryAcquire() && d.retries.tryAcquire());
  assert.equal(d.retries.tryAcquire(), false);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.rq_retry_open'], 1);
  d.requests.release();
  d.requests.release();
  d.requests.release();
  d.requests.release();
  assert.equal(d.retries.limit, 1);
  assert.equal(sa.snapshot().gauges['cluster.web.circuit_breakers.default.remaining_retries'], 0);
});
