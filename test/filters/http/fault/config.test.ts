// parseFault: Envoy's fields, defaults and runtime keys; errors name their field paths.

import test from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { parseFault, FaultRuntimeKeys, type FaultConfig } from '../../../../src/filters/http/fault/index.ts';
import type { HTTPFault__Output } from '../../../../src/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import type { Result } from '../../../../src/config/result.ts';

const TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';

function parseYaml(y: string): Result<FaultConfig> {
  const d = decodeJson<HTTPFault__Output>(TYPE, parse(y) ?? {});
  if (!d.ok) return d;
  return parseFault(d.value, { path: 'f', clusterNames: undefined });
}

function okYaml(y: string): FaultConfig {
  const r = parseYaml(y);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

test('empty config: no abort, no delay, Envoy default runtime keys, unlimited faults', () => {
  const c = okYaml('{}');
  assert.equal(c.abort, undefined);
  assert.equal(c.delay, undefined);
  assert.equal(c.maxActiveFaults, undefined);
  assert.equal(c.upstreamCluster, '');
  assert.equal(c.downstreamNodes.size, 0);
  assert.deepEqual(c.runtimeKeys, {
    delayPercent: 'fault.http.delay.fixed_delay_percent',
    abortPercent: 'fault.http.abort.abort_percent',
    delayDuration: 'fault.http.delay.fixed_duration_ms',
    abortHttpStatus: 'fault.http.abort.http_status',
    abortGrpcStatus: 'fault.http.abort.grpc_status',
    maxActiveFaults: 'fault.http.max_active_faults',
  });
  assert.equal(FaultRuntimeKeys.abortPercent, 'fault.http.abort.abort_percent');
  assert.ok(Object.isFrozen(c));
});

test('abort kinds, delay kinds, every denominator, matchers and runtime overrides', () => {
  const c = okYaml(`
abort: { http_status: 503, percentage: { numerator: 25, denominator: TEN_THOUSAND } }
delay: { fixed_delay: 0.25s, percentage: { numerator: 7, denominator: MILLION } }
upstream_cluster: backend
downstream_nodes: [a, b]
headers: [{ name: x-fault, string_match: { exact: "yes" } }]
max_active_faults: 3
abort_percent_runtime: my.abort
delay_percent_runtime: my.delay
delay_duration_runtime: my.duration
abort_http_status_runtime: my.status
abort_grpc_status_runtime: my.grpc
max_active_faults_runtime: my.max
disable_downstream_cluster_stats: true`);
  assert.deepEqual(c.abort, { spec: { kind: 'http', status: 503 }, percentage: { numerator: 25, denominator: 'TEN_THOUSAND' } });
  assert.deepEqual(c.delay, { spec: { kind: 'fixed', ms: 250 }, percentage: { numerator: 7, denominator: 'MILLION' } });
  assert.equal(c.upstreamCluster, 'backend');
  assert.deepEqual([...c.downstreamNodes], ['a', 'b']);
  assert.equal(c.maxActiveFaults, 3);
  assert.deepEqual(c.runtimeKeys, { abortPercent: 'my.abort', delayPercent: 'my.delay', delayDuration: 'my.duration', abortHttpStatus: 'my.status', abortGrpcStatus: 'my.grpc', maxActiveFaults: 'my.max' });
  assert.equal(c.disableDownstreamClusterStats, true);
  assert.equal(c.headers!(HeaderMap.fromPairs([['x-fault', 'yes']])), true);
  assert.equal(c.headers!(HeaderMap.fromPairs([['x-fault', 'no']])), false);

  const g = okYaml('abort: { grpc_status: 14, percentage: { numerator: 100 } }');
  assert.deepEqual(g.abort, { spec: { kind: 'grpc', status: 14 }, percentage: { numerator: 100, denominator: 'HUNDRED' } });
  const h = okYaml('abort: { header_abort: {} }\ndelay: { header_delay: {} }');
  // An unset percentage is the proto default: 0%.
  assert.deepEqual(h.abort, { spec: { kind: 'header' }, percentage: { numerator: 0, denominator: 'HUNDRED' } });
  assert.deepEqual(h.delay, { spec: { kind: 'header' }, percentage: { numerator: 0, denominator: 'HUNDRED' } });
});

test('errors name their fields: unsupported response_rate_limit, bad status, missing oneofs, bad matcher', () => {
  const rl = parseYaml('response_rate_limit: { fixed_limit: { limit_kbps: 10 }, percentage: { numerator: 100 } }');
  assert.equal(rl.ok, false);
  assert.ok(!rl.ok && rl.errors.some((e) => e.path === 'f.response_rate_limit' && /not supported/.test(e.reason)));

  const direct = (m: unknown): Result<FaultConfig> => parseFault(m, { path: 'f', clusterNames: undefined });
  const base = (decodeJson<HTTPFault__Output>(TYPE, {}) as { ok: true; value: HTTPFault__Output }).value;
  const bad = direct({ ...base, abort: { http_status: 700, error_type: 'http_status', percentage: null } });
  assert.ok(!bad.ok && bad.errors[0]!.path === 'f.abort.http_status', JSON.stringify(bad));
  const noType = direct({ ...base, abort: { percentage: null } });
  assert.ok(!noType.ok && noType.errors[0]!.path === 'f.abort.error_type');
  const noDelay = direct({ ...base, delay: { percentage: null } });
  assert.ok(!noDelay.ok && noDelay.errors[0]!.path === 'f.delay.fault_delay_secifier');
  const zero = direct({ ...base, delay: { fixed_delay: { seconds: '0', nanos: 0 }, fault_delay_secifier: 'fixed_delay', percentage: null } });
  assert.ok(!zero.ok && zero.errors[0]!.path === 'f.delay.fixed_delay');
  const re = parseYaml('headers: [{ name: x, safe_regex_match: { regex: "(" } }]');
  assert.ok(!re.ok && re.errors[0]!.path.startsWith('f.headers[0]'), JSON.stringify(re));
});
