import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBinary, decodeJson, encodeAny, encodeBinary, extensionTypeUrl, toProto3Json, unpackAny } from '../../src/config/decode.ts';
import type { ConfigError, Result } from '../../src/config/result.ts';
import { lookupMessageType, protoLoadMs, protoRoot } from '../../src/config/protos.ts';

type Obj = Record<string, any>;

function errorsOf(r: Result<unknown>): ConfigError[] {
  assert.equal(r.ok, false, 'expected a failure');
  return r.ok ? [] : [...r.errors];
}
function value(r: Result<unknown>): Obj {
  if (!r.ok) assert.fail(`unexpected errors: ${JSON.stringify(r.errors)}`);
  return r.value as Obj;
}
function hasError(r: Result<unknown>, path: string, reason: string | RegExp): void {
  const errs = errorsOf(r);
  const hit = errs.some((e) => e.path === path && (typeof reason === 'string' ? e.reason === reason : reason.test(e.reason)));
  assert.ok(hit, `no error ${path}: ${reason} in ${JSON.stringify(errs)}`);
}

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const SA = 'envoy.config.core.v3.SocketAddress';
const CLUSTER = 'envoy.config.cluster.v3.Cluster';

test('protoRoot loads once, fast, and finds types by name or URL', () => {
  const root = protoRoot();
  assert.equal(protoRoot(), root);
  assert.ok(protoLoadMs() > 0);
  console.log(`# proto load: ${protoLoadMs().toFixed(0)} ms (reported, not asserted)`);
  assert.ok(lookupMessageType('envoy.config.bootstrap.v3.Bootstrap'));
  assert.equal(lookupMessageType(ROUTER)?.name, 'Router');
  assert.equal(lookupMessageType('google.protobuf.Duration')?.name, 'Duration');
  assert.ok(lookupMessageType('type.googleapis.com/udpa.type.v1.TypedStruct'));
  assert.ok(lookupMessageType('xds.type.v3.TypedStruct'));
  assert.equal(lookupMessageType('no.such.Type'), undefined);
  assert.equal(lookupMessageType('envoy.config.cluster.v3.Cluster.DiscoveryType'), undefined); // an enum
});

test('proto-loader form: defaults, oneof names, enums as names, 64-bit as strings', () => {
  const v = value(decodeJson(SA, { address: '1.2.3.4', portValue: 80 }));
  assert.deepEqual(v, { protocol: 'TCP', address: '1.2.3.4', resolver_name: '', ipv4_compat: false, port_value: 80, port_specifier: 'port_value' });
  const c = value(decodeJson(CLUSTER, { name: 'c', lb_policy: 3, connect_timeout: '1.5s', dns_refresh_rate: { seconds: 2, nanos: 5 } }));
  assert.equal(c.lb_policy, 'RANDOM');
  assert.deepEqual(c.connect_timeout, { seconds: '1', nanos: 500000000 });
  assert.deepEqual(c.dns_refresh_rate, { seconds: '2', nanos: 5 });
  assert.equal(c.circuit_breakers, null);
  assert.deepEqual(c.health_checks, []);
  assert.equal(c.cluster_discovery_type, undefined); // unset oneof: neither the name nor the member
  assert.equal(c.type, undefined);
});

test('unknown fields are errors with full paths, or warnings when allowed', () => {
  const json = { static_resources: { clusters: [{ name: 'a' }, { name: 'b', load_assignment: { cluster_name: 'b', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'x', port_value: 1, bogus: 1 } } } }] }] } }] } };
  hasError(decodeJson('envoy.config.bootstrap.v3.Bootstrap', json), 'static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.bogus', 'unknown field "bogus"');
  const r = decodeJson('envoy.config.bootstrap.v3.Bootstrap', json, { allowUnknownFields: true });
  assert.equal(r.ok, true);
  assert.ok(r.ok && r.warnings?.some((w) => w.includes('socket_address.bogus')));
});

test('errors are collected, not just the first', () => {
  const errs = errorsOf(decodeJson(CLUSTER, { name: 1, nme: 'x', lb_policy: 'NOPE', connect_timeout: 'forever' }));
  assert.equal(errs.length, 4);
  hasError(decodeJson(CLUSTER, { name: 1 }), 'name', 'expected string, got number');
  hasError(decodeJson(CLUSTER, { name: 'c', lb_policy: 'NOPE' }), 'lb_policy', /^unknown enum value "NOPE" for envoy.config.cluster.v3.Cluster.LbPolicy/);
  hasError(decodeJson(CLUSTER, { name: 'c', connect_timeout: 'forever' }), 'connect_timeout', /invalid duration "forever"/);
  hasError(decodeJson(CLUSTER, { name: 'c', connect_timeout: 5 }), 'connect_timeout', /expected duration string/);
});

test('wrong JSON types', () => {
  hasError(decodeJson(SA, { address: 'a', port_value: 'abc' }), 'port_value', 'expected uint32, got string "abc"');
  hasError(decodeJson(SA, { address: 'a', port_value: 1.5 }), 'port_value', /non-integer/);
  hasError(decodeJson(SA, { address: 'a', port_value: -1 }), 'port_value', /out of range for uint32/);
  hasError(decodeJson(SA, { address: 'a', port_value: 1, ipv4_compat: 'yes' }), 'ipv4_compat', 'expected bool, got string');
  hasError(decodeJson(SA, 'str'), '', 'expected object, got string');
  hasError(decodeJson(SA, [1]), '', 'expected object, got array');
  hasError(decodeJson(CLUSTER, { name: 'c', health_checks: 5 }), 'health_checks[0]', 'expected object, got number');
  hasError(decodeJson(CLUSTER, { name: 'c', typed_extension_protocol_options: [] }), 'typed_extension_protocol_options', /expected object \(map\), got array/);
});

test('a lone value for a repeated field is a one-item list, as in Envoy', () => {
  const c = value(decodeJson(CLUSTER, { name: 'c', dns_resolvers: { socket_address: { address: '8.8.8.8', port_value: 53 } } }));
  assert.equal(c.dns_resolvers.length, 1);
});

test('null means absent', () => {
  const v = value(decodeJson(CLUSTER, { name: 'c', connect_timeout: null, lb_policy: null, health_checks: null }));
  assert.equal(v.connect_timeout, null);
  assert.equal(v.lb_policy, 'ROUND_ROBIN');
});

test('oneof: two members set is an error; required oneof unset is an error', () => {
  hasError(decodeJson(SA, { address: 'a', port_value: 1, named_port: 'http' }), '', 'only one of port_value, named_port may be set');
  hasError(decodeJson('envoy.config.core.v3.Address', { socket_address: { address: 'a', port_value: 1, named_port: 'x' } }), 'socket_address', 'only one of port_value, named_port may be set');
  hasError(decodeJson(SA, { address: 'a' }), '', 'exactly one of fields [port_value, named_port] must be set');
});

test('enums by name or number', () => {
  assert.equal(value(decodeJson(SA, { address: 'a', port_value: 1, protocol: 'UDP' })).protocol, 'UDP');
  assert.equal(value(decodeJson(SA, { address: 'a', port_value: 1, protocol: 1 })).protocol, 'UDP');
  hasError(decodeJson(SA, { address: 'a', port_value: 1, protocol: true }), 'protocol', /expected enum/);
});

test('durations: strings of many shapes and the object form', () => {
  const d = (s: unknown) => decodeJson('google.protobuf.Duration', s);
  assert.deepEqual(value(d('5s')), { seconds: '5', nanos: 0 });
  assert.deepEqual(value(d('0.25s')), { seconds: '0', nanos: 250000000 });
  assert.deepEqual(value(d('1.000340012s')), { seconds: '1', nanos: 340012 });
  assert.deepEqual(value(d('-1.5s')), { seconds: '-1', nanos: -500000000 });
  assert.deepEqual(value(d({ seconds: '3', nanos: 7 })), { seconds: '3', nanos: 7 });
  for (const bad of ['5', '5ms', 's', '1.0000000001s', '', ' 5s']) errorsOf(d(bad));
  errorsOf(d('315576000001s'));
});

test('timestamps, field masks, wrappers, bytes, 64-bit, floats', () => {
  assert.deepEqual(value(decodeJson('google.protobuf.Timestamp', '1970-01-01T00:00:01.5Z')), { seconds: '1', nanos: 500000000 });
  assert.deepEqual(value(decodeJson('google.protobuf.Timestamp', '1970-01-01T01:00:00+01:00')), { seconds: '0', nanos: 0 });
  errorsOf(decodeJson('google.protobuf.Timestamp', '2023-02-30T00:00:00Z'));
  assert.deepEqual(value(decodeJson('google.protobuf.FieldMask', 'fooBar,a.bC')), { paths: ['foo_bar', 'a.b_c'] });
  assert.deepEqual(value(decodeJson('google.protobuf.UInt32Value', 7)), { value: 7 });
  assert.deepEqual(value(decodeJson('google.protobuf.UInt64Value', '18446744073709551615')), { value: '18446744073709551615' });
  assert.deepEqual(value(decodeJson('google.protobuf.Int64Value', -5)), { value: '-5' });
  errorsOf(decodeJson('google.protobuf.UInt64Value', '18446744073709551616'));
  errorsOf(decodeJson('google.protobuf.BoolValue', 'true'));
  const bytes = value(decodeJson('google.protobuf.BytesValue', Buffer.from('hello').toString('base64'))).value;
  assert.ok(Buffer.isBuffer(bytes));
  assert.equal(bytes.toString(), 'hello');
  errorsOf(decodeJson('google.protobuf.BytesValue', 'not base64!'));
  assert.ok(Number.isNaN(value(decodeJson('google.protobuf.DoubleValue', 'NaN')).value));
  assert.equal(value(decodeJson('google.protobuf.DoubleValue', '-Infinity')).value, -Infinity);
  assert.equal(value(decodeJson('google.protobuf.FloatValue', 1.25)).value, 1.25);
  errorsOf(decodeJson('google.protobuf.FloatValue', 1e39));
  assert.equal(value(decodeJson('envoy.config.core.v3.RuntimeUInt32', { default_value: 5, runtime_key: 'k' })).default_value, 5);
});

test('Struct and Value from plain JSON', () => {
  const v = value(decodeJson('google.protobuf.Struct', { a: 1, b: 'x', c: null, d: [true, { e: [] }] }));
  assert.deepEqual(v.fields.a, { numberValue: 1, kind: 'numberValue' });
  assert.deepEqual(v.fields.c, { nullValue: 'NULL_VALUE', kind: 'nullValue' });
  assert.equal(v.fields.d.listValue.values[1].structValue.fields.e.listValue.values.length, 0);
  const round = toProto3Json('google.protobuf.Struct', v);
  assert.deepEqual(round, { a: 1, b: 'x', c: null, d: [true, { e: [] }] });
});

test('maps: string keys with odd characters in paths, int keys validated', () => {
  const json = { filter_metadata: { 'envoy.lb': { canary: true }, 'odd key': {} } };
  const v = value(decodeJson('envoy.config.core.v3.Metadata', json));
  assert.equal(v.filter_metadata['envoy.lb'].fields.canary.boolValue, true);
  hasError(decodeJson('envoy.config.core.v3.Metadata', { filter_metadata: { 'odd key': 5 } }), 'filter_metadata["odd key"]', 'expected object, got number');
  hasError(decodeJson('envoy.config.core.v3.Metadata', { filter_metadata: { plain: 5 } }), 'filter_metadata.plain', 'expected object, got number');
});

test('Any: @type decoded, encoded to bytes, unpacked; unknown @type named', () => {
  const f = value(decodeJson('envoy.config.listener.v3.Filter', { name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 's', rds: { route_config_name: 'r', config_source: { ads: {} } }, http_filters: [{ name: 'router', typed_config: { '@type': ROUTER, dynamic_stats: false } }] } }));
  assert.equal(f.typed_config.type_url, HCM);
  assert.ok(Buffer.isBuffer(f.typed_config.value));
  const u = unpackAny<Obj>(f.typed_config, 'typed_config');
  assert.ok(u.ok);
  assert.equal(u.ok && u.value.typeName, 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  assert.equal(u.ok && u.value.message.stat_prefix, 's');
  assert.equal(u.ok && u.value.message.http_filters[0].typed_config.type_url, ROUTER);
  hasError(decodeJson('envoy.config.listener.v3.Filter', { name: 'x', typed_config: { '@type': 'type.googleapis.com/no.such.Thing' } }), 'typed_config', 'unknown type URL "type.googleapis.com/no.such.Thing"');
  hasError(decodeJson('envoy.config.listener.v3.Filter', { name: 'x', typed_config: { stat_prefix: 's' } }), 'typed_config', /missing "@type"/);
  const bad = unpackAny({ type_url: 'type.googleapis.com/no.such.Thing', value: Buffer.alloc(0) }, 'p');
  hasError(bad, 'p', 'unknown type URL "type.googleapis.com/no.such.Thing"');
});

test('Any of a well-known type carries its payload under "value"', () => {
  const v = value(decodeJson('google.protobuf.Any', { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' }));
  const u = unpackAny<Obj>(v as never, '');
  assert.deepEqual(u.ok && u.value.message, { seconds: '2', nanos: 0 });
  assert.deepEqual(toProto3Json('google.protobuf.Any', v), { '@type': 'type.googleapis.com/google.protobuf.Duration', value: '2s' });
});

test('an optional filter with an unknown type is kept as an empty Any', () => {
  const json = { stat_prefix: 's', route_config: {}, http_filters: [{ name: 'x', is_optional: true, typed_config: { '@type': 'type.googleapis.com/vendor.Unknown', a: 1 } }, { name: 'r', typed_config: { '@type': ROUTER } }] };
  const v = value(decodeJson('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', json));
  assert.equal(v.http_filters[0].typed_config.type_url, 'type.googleapis.com/vendor.Unknown');
  assert.equal(v.http_filters[0].typed_config.value.length, 0);
  const route = { prefix: '/' };
  const fc = value(decodeJson('envoy.config.route.v3.Route', { match: route, direct_response: { status: 200 }, typed_per_filter_config: { x: { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', is_optional: true, config: { '@type': 'type.googleapis.com/vendor.Unknown' } } } }));
  assert.ok(fc.typed_per_filter_config.x);
  json.http_filters[0]!.is_optional = false;
  hasError(decodeJson('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', json), 'http_filters[0].typed_config', /unknown type URL/);
});

test('an error inside an Any inside an Any has a path through both', () => {
  const json = { static_resources: { listeners: [{ name: 'l', address: { socket_address: { address: '0.0.0.0', port_value: 80 } }, filter_chains: [{ filters: [{ name: 'hcm', typed_config: { '@type': HCM, stat_prefix: 's', route_config: {}, http_filters: [{ name: 'r', typed_config: { '@type': ROUTER, foo: 1 } }] } }] }] }] } };
  hasError(decodeJson('envoy.config.bootstrap.v3.Bootstrap', json), 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.foo', 'unknown field "foo"');
});

test('TypedStruct is a fine Any, and unpackAny converts it to the type it names', () => {
  const json = { name: 'f', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: ROUTER, value: { dynamic_stats: false, suppress_envoy_headers: true } } };
  const v = value(decodeJson('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', json));
  const u = unpackAny<Obj>(v.typed_config, 'typed_config');
  assert.ok(u.ok);
  assert.equal(u.ok && u.value.typeName, 'envoy.extensions.filters.http.router.v3.Router');
  assert.equal(u.ok && u.value.message.suppress_envoy_headers, true);
  const bad = { ...json, typed_config: { ...json.typed_config, value: { dynamic_stats: 'no' } } };
  const r = decodeJson('envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter', bad);
  assert.ok(!r.ok && r.errors.some((e) => e.path === 'typed_config.value.dynamic_stats' && e.reason === 'expected bool, got string'), JSON.stringify(r));
  assert.equal(extensionTypeUrl(v.typed_config), ROUTER);
  assert.equal(extensionTypeUrl({ type_url: HCM, value: Buffer.alloc(0) }), HCM);
  const unknownInner = value(decodeJson('google.protobuf.Any', { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: 'type.googleapis.com/vendor.Wasm', value: { a: 1 } }));
  const u2 = unpackAny<Obj>(unknownInner as never, '');
  assert.equal(u2.ok && u2.value.typeName, 'xds.type.v3.TypedStruct');
});

test('decodeBinary and encodeAny round-trip, with PGV on binary input', () => {
  const c = value(decodeJson(CLUSTER, { name: 'c', connect_timeout: '2s', lb_policy: 'RANDOM' }));
  const any = encodeAny(CLUSTER, c);
  assert.equal(any.type_url, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
  assert.deepEqual(value(decodeBinary(CLUSTER, any.value)), c);
  const noName = encodeBinary(CLUSTER, { ...c, name: '' });
  hasError(decodeBinary(CLUSTER, noName, 'resources[0]'), 'resources[0].name', 'value length must be at least 1 characters');
  hasError(decodeBinary(CLUSTER, Buffer.from([0xff, 0xff, 0xff])), '', /invalid envoy.config.cluster.v3.Cluster bytes/);
  hasError(decodeBinary('no.Such', Buffer.alloc(0)), '', /unknown message type/);
  assert.throws(() => encodeAny('no.Such', {}));
});

test('toProto3Json: snake_case, defaults omitted, Anys expanded, durations as strings', () => {
  const json = { name: 'c', connect_timeout: '0.250s', lb_policy: 'RANDOM', per_connection_buffer_limit_bytes: 1024, typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };
  const v = value(decodeJson(CLUSTER, json));
  assert.deepEqual(toProto3Json(CLUSTER, v), json);
});

test('path option prefixes every error', () => {
  hasError(decodeJson(CLUSTER, { nme: 1 }, { path: 'resources[3]' }), 'resources[3].nme', 'unknown field "nme"');
});

test('unknown message type is an error, not a throw', () => {
  hasError(decodeJson('no.such.Type', {}), '', /unknown message type/);
});

test("toProto3Json with redact: 'sensitive' prints private keys and passwords as [redacted], the rest as is", () => {
  const type = 'envoy.extensions.transport_sockets.tls.v3.TlsCertificate';
  const cert = value(decodeJson(type, {
    certificate_chain: { inline_string: 'CHAIN' },
    private_key: { inline_bytes: Buffer.from('KEY').toString('base64') },
    password: { filename: '/etc/secret/pass' },
  }));
  const plain = toProto3Json(type, cert) as Obj;
  assert.equal(plain.private_key.inline_bytes, Buffer.from('KEY').toString('base64'));
  const red = toProto3Json(type, cert, { redact: 'sensitive' }) as Obj;
  assert.deepEqual(red, {
    certificate_chain: { inline_string: 'CHAIN' },
    private_key: { inline_bytes: Buffer.from('[redacted]').toString('base64') },
    password: { filename: '[redacted]' },
  });
  // Inside an Any (a listener's transport socket), too.
  const ctx = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
  const listener = value(decodeJson('envoy.config.listener.v3.Listener', {
    name: 'l',
    filter_chains: [{ transport_socket: { name: 'tls', typed_config: { '@type': `type.googleapis.com/${ctx}`, common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: 'CHAIN' }, private_key: { inline_string: 'KEY' } }] } } } }],
  }));
  const dumped = JSON.stringify(toProto3Json('envoy.config.listener.v3.Listener', listener, { redact: 'sensitive' }));
  assert.ok(!dumped.includes('"KEY"'), dumped);
  assert.match(dumped, /"private_key":\{"inline_string":"\[redacted\]"\}/);
  assert.match(dumped, /"certificate_chain":\{"inline_string":"CHAIN"\}/);
});
