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

// A synthetic message exercising rules the Envoy protos use rarely, added to the shared root.
import protobuf from 'protobufjs';
import { protoRoot } from '../../src/config/protos.ts';

const SYNTH = `
syntax = "proto3";
package legate.test.pgv;
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
message M {
  string a = 1 [(validate.rules).string = {max_len: 3}];
  string b = 2 [(validate.rules).string = {prefix: "x-" suffix: "!" contains: "q"}];
  string c = 3 [(validate.rules).string = {in: ["one", "two"]}];
  string d = 4 [(validate.rules).string = {pattern: "^[a-z]+$" ignore_empty: true}];
  string e = 5 [(validate.rules).string = {max_bytes: 4}];
  uint32 f = 6 [(validate.rules).uint32 = {gte: 1 lt: 10}];
  int64 g = 7 [(validate.rules).int64 = {not_in: [3, 4]}];
  double h = 8 [(validate.rules).double = {gt: 0.5}];
  uint64 i = 9 [(validate.rules).uint64 = {const: 7}];
  int32 j = 10 [(validate.rules).int32 = {lt: 0 gt: 10}];
  repeated string k = 11 [(validate.rules).repeated = {max_items: 2 unique: true items {string {min_len: 2}}}];
  google.protobuf.Duration l = 12 [(validate.rules).duration = {lt {seconds: 1} gte {nanos: 1000000}}];
  google.protobuf.UInt32Value m = 13 [(validate.rules).uint32 = {gt: 5}];
  bytes n = 14 [(validate.rules).bytes = {max_len: 2}];
  map<string, string> o = 15 [(validate.rules).map = {max_pairs: 1 keys {string {min_len: 2}} values {string {max_len: 1}}}];
}
`;

function synth(json: object): ConfigError[] {
  const root = protoRoot();
  if (!root.lookup('legate.test.pgv.M')) {
    protobuf.parse(SYNTH, root, { keepCase: true });
    root.resolveAll();
  }
  const base = { b: 'x-q!', f: 1, h: 1, i: 7, j: 11, l: '0.5s' };
  return errs(decodeJson('legate.test.pgv.M', { ...base, ...json }));
}

test('synthetic rules: a valid message passes', () => {
  assert.deepEqual(synth({}), [{ path: 'c', reason: 'value must be in list [one, two]' }]);
  assert.deepEqual(synth({ c: 'one' }), []);
});

test('synthetic rules: strings', () => {
  const e = synth({ c: 'one', a: 'abcd', b: 'y', d: 'A1', e: 'ééé' });
  assert.deepEqual(e.map((x) => `${x.path}: ${x.reason}`), [
    'a: value length must be at most 3 characters',
    'b: value does not have prefix "x-"',
    'b: value does not have suffix "!"',
    'b: value does not contain substring "q"',
    'd: value does not match regex pattern "^[a-z]+$"',
    'e: value length must be at most 4 bytes',
  ]);
});

test('synthetic rules: numbers, ranges, const, not_in', () => {
  const e = synth({ c: 'one', f: 10, g: '3', h: 0.5, i: 8, j: 5 });
  assert.deepEqual(e.map((x) => `${x.path}: ${x.reason}`), [
    'f: value must be inside range [1, 10)',
    'g: value must not be in list [3, 4]',
    'h: value must be greater than 0.5',
    'i: value must equal 7',
    'j: value must be outside range [0, 10]',
  ]);
});

test('synthetic rules: repeated, duration, wrapper, bytes, map', () => {
  const e = synth({ c: 'one', k: ['ab', 'ab', 'c'], l: '1s', m: 5, n: Buffer.from('abc').toString('base64'), o: { x: 'yy', zz: 'w' } });
  assert.deepEqual(e.map((x) => `${x.path}: ${x.reason}`), [
    'k: value must contain no more than 2 item(s)',
    'k: repeated value must contain unique items',
    'k[2]: value length must be at least 2 characters',
    'l: value must be inside range [0.001s, 1s)',
    'm: value must be greater than 5',
    'n: value length must be at most 2 bytes',
    'o: value must contain no more than 1 pair(s)',
    'o.x: value length must be at least 2 characters',
    'o.x: value length must be at most 1 characters',
  ]);
  assert.deepEqual(synth({ c: 'one', m: null, l: '0.001s' }), []);
});
