// Random JSON against a few message types: decodeJson must return a Result, never throw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson, toProto3Json } from '../../src/config/decode.ts';

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['name', 'address', 'port_value', 'portValue', 'socket_address', 'connect_timeout', 'type', 'lb_policy', 'typed_config', '@type', 'value',
  'static_resources', 'clusters', 'listeners', 'filter_chains', 'filters', 'load_assignment', 'endpoints', 'lb_endpoints', 'endpoint', 'is_optional',
  'http_filters', 'route_config', 'virtual_hosts', 'domains', 'routes', 'match', 'prefix', 'route', 'cluster', 'metadata', 'filter_metadata', 'nanos', 'seconds', 'x'];
const STRINGS = ['', 'a', '5s', '0.25s', 'NaN', 'Infinity', '18446744073709551616', '-1', 'STATIC', 'ROUND_ROBIN', 'aGVsbG8=',
  'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'type.googleapis.com/google.protobuf.Duration', 'type.googleapis.com/nope.Nope', '2024-01-01T00:00:00Z', '\u0000', '😀'];

function randomJson(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 4 ? 5 : 8));
  switch (k) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return [0, -1, 1.5, 65536, 2 ** 53, -(2 ** 63), Number.NaN, Infinity][Math.floor(r() * 8)];
    case 3: case 4: return STRINGS[Math.floor(r() * STRINGS.length)];
    case 5: return Array.from({ length: Math.floor(r() * 3) }, () => randomJson(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 4); i > 0; i--) o[KEYS[Math.floor(r() * KEYS.length)]!] = randomJson(r, depth + 1);
      return o;
    }
  }
}

const TYPES = ['envoy.config.bootstrap.v3.Bootstrap', 'envoy.config.cluster.v3.Cluster', 'envoy.config.core.v3.Address', 'envoy.config.listener.v3.Filter',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', 'google.protobuf.Any', 'google.protobuf.Duration', 'google.protobuf.Struct',
  'envoy.config.route.v3.RouteConfiguration'];

test('random JSON never throws (seeded, 1,500 cases)', () => {
  const r = rng(0x1e9a7e);
  let runs = 0;
  let oks = 0;
  // A fixed count, not a deadline: the result must not depend on how busy the machine is.
  while (runs < 1500) {
    const type = TYPES[runs % TYPES.length]!;
    const json = runs % 3 === 0 ? randomJson(r, 0) : { ...(randomJson(r, 1) as object) };
    const res = decodeJson(type, json);
    assert.equal(typeof res.ok, 'boolean');
    if (res.ok) {
      oks++;
      toProto3Json(type, res.value); // must not throw either
    } else {
      for (const e of res.errors) assert.equal(typeof e.path, 'string');
    }
    runs++;
  }
  assert.ok(oks > 0);
});
