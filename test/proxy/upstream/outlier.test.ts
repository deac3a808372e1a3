// Outlier detection, unit level: a fake clock and a hand-driven interval sweep, real hosts from a
// parsed cluster. Checks ejection, return, back-off, each detection type and max_ejection_percent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { OutlierDetection__Output } from '../../../src/generated/envoy/config/cluster/v3/OutlierDetection.ts';
import { parseOutlierDetection } from '../../../src/proxy/upstream/outlier/config.ts';
import { OutlierDetector } from '../../../src/proxy/upstream/outlier/detector.ts';
import { healthFlagNames } from '../../../src/proxy/upstream/health-check/flags.ts';
import type { ConfigError } from '../../../src/config/result.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import type { Host, UpstreamResult } from '../../../src/proxy/upstream/types.ts';

function config(yaml: string): ReturnType<typeof parseOutlierDetection> {
  const d = decodeJson<OutlierDetection__Output>('envoy.config.cluster.v3.OutlierDetection', parse(yaml) ?? {});
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const errors: ConfigError[] = [];
  const c = parseOutlierDetection(d.value, 'outlier_detection', errors);
  assert.deepEqual(errors, []);
  return c;
}

function hosts(n: number): Host[] {
  return Array.from({ length: n }, (_, i) => ({
    address: '127.0.0.1',
    port: 1000 + i,
    key: `127.0.0.1:${1000 + i}`,
    hostname: undefined,
    weight: 1,
    priority: 0,
    locality: undefined,
    health: 'healthy' as const,
    activeRequests: 0,
  }));
}

/**
 * A detector over `n` hosts. With Envoy's default max_ejection_percent (10%) a cluster of fewer than
 * ten hosts ejects none, so unless `yaml` sets it (or always_eject_one_host) the tests about what
 * gets detected run with max_ejection_percent 100.
 */
function setup(yamlIn: string, n: number, random = (): number => 0) {
  const yaml = /max_ejection_percent|always_eject_one_host/.test(yamlIn) ? yamlIn : yamlIn.replace(/^\s*\{/, '{ max_ejection_percent: 100, ');
  const stats = new StatsStore();
  let now = 0;
  let changes = 0;
  const d = new OutlierDetector(config(yaml), stats, 'cluster.c.', () => changes++, { now: () => now, random, timer: false });
  const hs = hosts(n);
  d.setHosts(hs);
  const snap = () => stats.snapshot();
  return {
    d,
    hs,
    advance: (ms: number) => {
      now += ms;
      d.sweep();
    },
    report: (h: Host, r: UpstreamResult, times = 1) => {
      for (let i = 0; i < times; i++) d.report(h, r);
    },
    counter: (name: string) => snap().counters[`cluster.c.outlier_detection.${name}`] ?? 0,
    gauge: (name: string) => snap().gauges[`cluster.c.outlier_detection.${name}`] ?? 0,
    changes: () => changes,
  };
}

const http = (status: number): UpstreamResult => ({ kind: 'http', status });
const local = (failure: 'connect_failure' | 'timeout' | 'reset' | 'success'): UpstreamResult => ({ kind: 'local', failure });

test('defaults follow Envoy', () => {
  const c = config('{}');
  assert.equal(c.consecutive5xx, 5);
  assert.equal(c.intervalMs, 10_000);
  assert.equal(c.baseEjectionTimeMs, 30_000);
  assert.equal(c.maxEjectionTimeMs, 300_000);
  assert.equal(c.maxEjectionPercent, 10);
  assert.equal(c.enforcingConsecutive5xx, 100);
  assert.equal(c.enforcingConsecutiveGatewayFailure, 0);
  assert.equal(c.enforcingSuccessRate, 100);
  assert.equal(c.enforcingFailurePercentage, 0);
  assert.equal(c.successRateStdevFactor, 1.9);
  assert.equal(c.failurePercentageThreshold, 85);
});

test('max_ejection_time below base_ejection_time is an error with its path', () => {
  assert.equal(decodeJson('envoy.config.cluster.v3.OutlierDetection', { max_ejection_percent: 150 }).ok, false, 'PGV: at most 100');
  const d = decodeJson<OutlierDetection__Output>('envoy.config.cluster.v3.OutlierDetection', { base_ejection_time: '10s', max_ejection_time: '5s' });
  assert.ok(d.ok);
  const errors: ConfigError[] = [];
  parseOutlierDetection(d.value, 'od', errors);
  assert.deepEqual(errors.map((e) => e.path), ['od.max_ejection_time']);
});

test('five consecutive 5xx eject a host; it returns after base_ejection_time, then twice as long', () => {
  const t = setup('{ interval: 0.01s, base_ejection_time: 0.1s }', 3);
  const h = t.hs[0]!;
  t.report(h, http(500), 4);
  t.report(h, http(200));
  t.report(h, http(500), 4);
  assert.equal(h.health, 'healthy', 'a success resets the streak');
  t.report(h, http(500));
  assert.equal(h.health, 'unhealthy');
  assert.deepEqual(healthFlagNames(h), ['failed_outlier_check']);
  assert.equal(t.gauge('ejections_active'), 1);
  assert.equal(t.counter('ejections_enforced_total'), 1);
  assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1);
  assert.equal(t.counter('ejections_enforced_consecutive_5xx'), 1);
  assert.equal(t.changes(), 1);
  t.advance(90);
  assert.equal(h.health, 'unhealthy');
  t.advance(10);
  assert.equal(h.health, 'healthy');
  assert.equal(t.gauge('ejections_active'), 0);
  // Ejected again at once: the multiplier is now 2 (200 ms).
  t.report(h, http(503), 5);
  assert.equal(h.health, 'unhealthy');
  t.advance(150);
  assert.equal(h.health, 'unhealthy');
  t.advance(50);
  assert.equal(h.health, 'healthy');
  assert.equal(t.counter('ejections_enforced_total'), 2);
});

test('max_ejection_time caps the ejection time', () => {
  const t = setup('{ base_ejection_time: 0.1s, max_ejection_time: 0.15s }', 3);
  const h = t.hs[0]!;
  for (let round = 0; round < 4; round++) {
    t.report(h, http(500), 5);
    assert.equal(h.health, 'unhealthy');
    t.advance(150);
    assert.equal(h.health, 'healthy', `round ${round}: back within max_ejection_time`);
  }
});

test('consecutive gateway failures: detected always, enforced per enforcing_consecutive_gateway_failure', () => {
  const off = setup('{ consecutive_5xx: 100 }', 3);
  off.report(off.hs[0]!, http(502), 5);
  assert.equal(off.counter('ejections_detected_consecutive_gateway_failure'), 1);
  assert.equal(off.counter('ejections_enforced_consecutive_gateway_failure'), 0);
  assert.equal(off.hs[0]!.health, 'healthy', 'enforcing defaults to 0%');
  const on = setup('{ consecutive_5xx: 100, enforcing_consecutive_gateway_failure: 100 }', 3);
  on.report(on.hs[0]!, http(504), 4);
  on.report(on.hs[0]!, http(500)); // not a gateway error: breaks the gateway streak
  on.report(on.hs[0]!, http(503), 4);
  assert.equal(on.hs[0]!.health, 'healthy');
  on.report(on.hs[0]!, http(503));
  assert.equal(on.hs[0]!.health, 'unhealthy');
  assert.equal(on.counter('ejections_enforced_consecutive_gateway_failure'), 1);
});

test('local-origin failures: mapped to 5xx without the split, their own streak with it', () => {
  const plain = setup('{}', 3);
  plain.report(plain.hs[0]!, local('connect_failure'), 3);
  plain.report(plain.hs[0]!, local('timeout'), 2);
  assert.equal(plain.hs[0]!.health, 'unhealthy');
  assert.equal(plain.counter('ejections_enforced_consecutive_5xx'), 1);

  const split = setup('{ split_external_local_origin_errors: true, consecutive_local_origin_failure: 3 }', 3);
  const h = split.hs[0]!;
  split.report(h, local('reset'), 2);
  split.report(h, http(500)); // a response: the connection worked, the local streak resets
  split.report(h, local('connect_failure'), 2);
  assert.equal(h.health, 'healthy');
  split.report(h, local('timeout'));
  assert.equal(h.health, 'unhealthy');
  assert.equal(split.counter('ejections_enforced_consecutive_local_origin_failure'), 1);
  assert.equal(split.counter('ejections_detected_consecutive_5xx'), 0);
});

test('success-rate ejection: below mean − 1.9 stdev over the last interval', () => {
  const t = setup('{ interval: 1s }', 5);
  t.hs.forEach((h, i) => {
    for (let k = 0; k < 100; k++) t.report(h, http(i === 4 && k % 2 === 0 ? 500 : 200));
  });
  assert.equal(t.hs[4]!.health, 'healthy', 'no consecutive streak');
  t.advance(1000);
  // mean 90, stdev 20 → threshold 52; 50% is below.
  assert.equal(t.hs[4]!.health, 'unhealthy');
  assert.deepEqual(t.hs.slice(0, 4).map((h) => h.health), ['healthy', 'healthy', 'healthy', 'healthy']);
  assert.equal(t.counter('ejections_detected_success_rate'), 1);
  assert.equal(t.counter('ejections_enforced_success_rate'), 1);
});

test('success-rate ejection needs success_rate_minimum_hosts with request_volume', () => {
  const t = setup('{ interval: 1s }', 5);
  t.hs.forEach((h, i) => {
    for (let k = 0; k < (i === 0 ? 99 : 100); k++) t.report(h, http(i === 4 && k % 2 === 0 ? 500 : 200));
  });
  t.advance(1000);
  assert.equal(t.hs[4]!.health, 'healthy', 'only 4 hosts have enough volume');
  assert.equal(t.counter('ejections_detected_success_rate'), 0);
});

test('failure-percentage ejection at failure_percentage_threshold when enforced', () => {
  const t = setup('{ consecutive_5xx: 1000, enforcing_failure_percentage: 100, enforcing_success_rate: 0, failure_percentage_minimum_hosts: 3, success_rate_minimum_hosts: 100 }', 3);
  t.hs.forEach((h, i) => {
    for (let k = 0; k < 50; k++) t.report(h, http(i === 2 && k % 10 !== 0 ? 500 : 200));
  });
  t.advance(10_000);
  assert.equal(t.hs[2]!.health, 'unhealthy');
  assert.equal(t.counter('ejections_detected_failure_percentage'), 1);
  assert.equal(t.counter('ejections_enforced_failure_percentage'), 1);
});

test('max_ejection_percent: an ejection must keep the ejected share (this host included) within it; always_eject_one_host allows the first', () => {
  const t = setup('{ max_ejection_percent: 10 }', 4); // Envoy's default: 25% > 10%
  t.report(t.hs[0]!, http(500), 5);
  assert.equal(t.hs[0]!.health, 'healthy');
  assert.equal(t.counter('ejections_overflow'), 1);
  assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1, 'detected, not enforced');
  assert.equal(t.gauge('ejections_active'), 0);

  const one = setup('{ max_ejection_percent: 10, always_eject_one_host: true }', 4);
  for (const h of one.hs) one.report(h, http(500), 5);
  assert.deepEqual(one.hs.map((h) => h.health), ['unhealthy', 'healthy', 'healthy', 'healthy']);
  assert.equal(one.counter('ejections_overflow'), 3);

  const half = setup('{ max_ejection_percent: 50 }', 4);
  for (const h of half.hs) half.report(h, http(500), 5);
  // 25% and 50% are within 50%; a third (75%) is refused.
  assert.deepEqual(half.hs.map((h) => h.health), ['unhealthy', 'unhealthy', 'healthy', 'healthy']);
  assert.equal(half.counter('ejections_overflow'), 2);
});

test('enforcing percentage is a chance: 0 never ejects but still counts detection', () => {
  const t = setup('{ enforcing_consecutive_5xx: 50 }', 3, () => 0.7);
  t.report(t.hs[0]!, http(500), 5);
  assert.equal(t.hs[0]!.health, 'healthy');
  assert.equal(t.counter('ejections_detected_consecutive_5xx'), 1);
  assert.equal(t.counter('ejections_enforced_total'), 0);
});

test('a removed host drops its ejection', () => {
  const t = setup('{}', 3);
  t.report(t.hs[0]!, http(500), 5);
  assert.equal(t.gauge('ejections_active'), 1);
  t.d.setHosts(t.hs.slice(1));
  assert.equal(t.gauge('ejections_active'), 0);
});
