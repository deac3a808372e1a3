import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson, validateDecoded } from '../../src/config/decode.ts';
import type { ConfigError, Result } from '../../src/config/result.ts';

function errs(r: Result<unknown>): ConfigError[] {
  return r.ok ? [] : [...r.errors];
}
function expectError(r: Result<unknown>, path: string, reason: string): void {
  const e = errs(r);
  assert.ok(e.some((x) => x.path === path && x.reason === reason), `no "${path}: ${reason}" in ${JSON.stringify(e)}`);
}

const BOOT = 'envoy.config.bootstrap.v3.Bootstrap';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

test('string min_len: a cluster without a name', () => {
  expectError(decodeJson(BOOT, { static_resources: { clusters: [{ connect_timeout: '1s' }] } }), 'static_resources.clusters[0].name', 'value length must be at least 1 characters');
});

test('string rules inside an Any (HCM stat_prefix, filter name)', () => {
  const json = { static_resources: { listeners: [{ name: 'l', filter_chains: [{ filters: [{ name: '', typed_config: { '@type': HCM, route_config: {}, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER } }] } }] }] }] } };
  const r = decodeJson(BOOT, json);
  expectError(r, 'static_resources.listeners[0].filter_chains[0].filters[0].name', 'value length must be at least 1 characters');
  expectError(r, 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix', 'value length must be at least 1 characters');
});

test('required oneof inside an Any inside an Any', () => {
  const json = { stat_prefix: 's', http_filters: [{ name: 'r', typed_config: { '@type': ROUTER } }] };
  expectError(decodeJson('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', json), '', 'exactly one of fields [rds, route_config, scoped_routes] must be set');
});

test('numeric ranges: uint32 lte, gt 0, in ranges', () => {
  expectError(decodeJson('envoy.config.core.v3.SocketAddress', { address: 'a', port_value: 65536 }), 'port_value', 'value must be less than or equal to 65535');
  // Cluster.per_connection_buffer_limit_bytes has no rule; CircuitBreakers thresholds neither: use HealthCheck.unhealthy_threshold (required wrapper)
  const hc = { timeout: '1s', interval: '1s', healthy_threshold: 1, tcp_health_check: {} };
  expectError(decodeJson('envoy.config.core.v3.HealthCheck', hc), 'unhealthy_threshold', 'value is required');
  expectError(decodeJson('envoy.config.core.v3.HealthCheck', { ...hc, unhealthy_threshold: 1, timeout: '0s' }), 'timeout', 'value must be greater than 0s');
  expectError(decodeJson('envoy.config.core.v3.HealthCheck', { ...hc, unhealthy_threshold: 1, timeout: null }), 'timeout', 'value is required');
  assert.equal(decodeJson('envoy.config.core.v3.HealthCheck', { ...hc, unhealthy_threshold: 1 }).ok, true);
});

test('double ranges with wording for ranges', () => {
  // RuntimeFractionalPercent? Use type.v3.Percent: double value gte 0 lte 100
  expectError(decodeJson('envoy.type.v3.Percent', { value: 101 }), 'value', 'value must be inside range [0, 100]');
  expectError(decodeJson('envoy.type.v3.Percent', { value: -1 }), 'value', 'value must be inside range [0, 100]');
  assert.equal(decodeJson('envoy.type.v3.Percent', { value: 50.5 }).ok, true);
});

test('enum defined_only rejects unknown numbers', () => {
  expectError(decodeJson('envoy.config.cluster.v3.Cluster', { name: 'c', lb_policy: 99 }), 'lb_policy', 'value must be one of the defined enum values');
});

test('repeated min_items and items rules', () => {
  // VirtualHost.domains: min_items 1, items string well_known header value (skipped)
  expectError(decodeJson('envoy.config.route.v3.VirtualHost', { name: 'v' }), 'domains', 'value must contain at least 1 item(s)');
  assert.equal(decodeJson('envoy.config.route.v3.VirtualHost', { name: 'v', domains: ['*'] }).ok, true);
  // HeaderMatcher list in RouteMatch are messages: errors get indices
  const r = decodeJson('envoy.config.route.v3.RouteMatch', { prefix: '/', headers: [{ name: 'a', present_match: true }, { name: '', present_match: true }] });
  expectError(r, 'headers[1].name', 'value length must be at least 1 characters');
});

test('message required, any required', () => {
  expectError(decodeJson('envoy.config.route.v3.Route', { route: { cluster: 'c' } }), 'match', 'value is required');
  expectError(decodeJson('envoy.config.core.v3.TypedExtensionConfig', { name: 'x' }), 'typed_config', 'value is required');
  assert.equal(decodeJson('envoy.config.core.v3.TypedExtensionConfig', { name: 'x', typed_config: { '@type': ROUTER } }).ok, true);
});

test('map min_pairs', () => {
  const m = 'envoy.config.common.matcher.v3.Matcher.MatcherTree.MatchMap';
  expectError(decodeJson(m, { map: {} }), 'map', 'value must contain at least 1 pair(s)');
  expectError(decodeJson(m, {}), 'map', 'value must contain at least 1 pair(s)');
});

test('errors inside map values carry the key', () => {
  const m = 'envoy.config.common.matcher.v3.Matcher.MatcherTree.MatchMap';
  const r = decodeJson(m, { map: { 'a.b': { action: { name: '' } } } });
  expectError(r, 'map["a.b"].action.name', 'value length must be at least 1 characters');
});

test('validateDecoded runs PGV alone', () => {
  const errors = validateDecoded('envoy.config.core.v3.SocketAddress', { address: '', port_value: 1, port_specifier: 'port_value', protocol: 'TCP' }, 'x');
  assert.deepEqual(errors, [{ path: 'x.address', reason: 'value length must be at least 1 characters' }]);
});
