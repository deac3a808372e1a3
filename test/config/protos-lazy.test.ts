// Lazy proto loading: a lookup loads only the file defining the type (and its imports), and what it
// finds is the same as in a Root holding every Envoy proto. Test order matters: the first tests
// run before anything loads the whole set.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { lookupEnumType, lookupMessageType, protoLoadMs, protoRoot } from '../../src/config/protos.ts';
import { findInclude, protoIndex, scanProto } from '../../src/config/proto-index.ts';
import { loadBootstrap } from '../../src/config/bootstrap.ts';
import { decodeJson, encodeAny, unpackAny } from '../../src/config/decode.ts';

type Obj = Record<string, any>;
const DEFAULT_CONFIG = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../config/default.yaml');

/** The shared Root (a looked-up type lives in it); the lookup itself loads only duration.proto. */
function loadedRoot(): protobuf.Root {
  return lookupMessageType('google.protobuf.Duration')!.root;
}

test('scanProto finds the package, top-level types (not nested ones) and imports, ignoring comments and strings', () => {
  const s = scanProto(`
    syntax = "proto3";
    // message Commented {}
    package a.b.v3;
    import "x/y.proto";
    import public "z.proto";
    /* enum Hidden { } */
    message Outer { string s = 1 [(validate.rules).string = {pattern: "}{"}]; message Inner { enum E { X = 0; } } }
    enum Top { A = 0; }
    service Svc { rpc M(Outer) returns (Outer); }
  `);
  assert.deepEqual(s.names, ['a.b.v3.Outer', 'a.b.v3.Top', 'a.b.v3.Svc']);
  assert.deepEqual(s.imports, ['x/y.proto', 'z.proto']);
});

test('a lookup loads only what it needs; types from several packages, by name and by type URL', () => {
  const total = protoIndex().files.length;
  assert.equal(loadedRoot().files.length < 20, true, `${loadedRoot().files.length} files after one WKT lookup`);
  const bootstrap = lookupMessageType('envoy.config.bootstrap.v3.Bootstrap');
  assert.equal(bootstrap?.fullName, '.envoy.config.bootstrap.v3.Bootstrap');
  assert.equal(lookupMessageType('type.googleapis.com/envoy.extensions.filters.http.router.v3.Router')?.name, 'Router');
  assert.equal(lookupMessageType('type.googleapis.com/udpa.type.v1.TypedStruct')?.name, 'TypedStruct');
  assert.equal(lookupMessageType('xds.type.v3.TypedStruct')?.name, 'TypedStruct');
  assert.equal(lookupMessageType('google.protobuf.Struct')?.name, 'Struct');
  assert.equal(lookupMessageType('.envoy.config.core.v3.SocketAddress')?.name, 'SocketAddress');
  // nested types live in their parent's file
  assert.equal(lookupMessageType('envoy.config.cluster.v3.Cluster.CommonLbConfig')?.name, 'CommonLbConfig');
  assert.equal(lookupMessageType('envoy.type.matcher.v3.StringMatcher')?.name, 'StringMatcher');
  assert.equal(lookupEnumType('envoy.type.v3.StatusCode')?.values['NotFound'], 404);
  assert.equal(lookupEnumType('envoy.config.cluster.v3.Cluster.DiscoveryType')?.values['EDS'], 3);
  const loaded = loadedRoot().files.length;
  assert.ok(loaded < total / 2, `${loaded} of ${total} files loaded`);
  console.log(`# lazily loaded ${loaded} of ${total} files in ${protoLoadMs().toFixed(0)} ms (reported, not asserted)`);
});

test('unknown names, enums, namespaces and malformed names are not message types', () => {
  assert.equal(lookupMessageType('no.such.Type'), undefined);
  assert.equal(lookupMessageType('type.googleapis.com/envoy.config.core.v3.NoSuchThing'), undefined);
  assert.equal(lookupMessageType('envoy.config.cluster.v3.Cluster.DiscoveryType'), undefined); // an enum
  assert.equal(lookupMessageType('envoy.config.core'), undefined); // a namespace
  assert.equal(lookupMessageType('envoy.config.core.v3.Address; rm'), undefined);
  assert.equal(lookupMessageType(''), undefined);
  assert.equal(lookupEnumType('envoy.config.core.v3.Address'), undefined); // a message
  // a tracer whose imports @grpc/grpc-js-xds does not ship stays unknown, as with the full Root
  assert.equal(lookupMessageType('envoy.config.trace.v3.OpenCensusConfig'), undefined);
});

test('the quick-start bootstrap decodes with its typed_config Anys after lazy loading', () => {
  const r = loadBootstrap({ configPath: DEFAULT_CONFIG });
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  const hcm = (r.value as Obj).static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  assert.equal(hcm.type_url, 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  const inner = unpackAny<Obj>(hcm, 'hcm');
  if (!inner.ok) assert.fail(JSON.stringify(inner.errors));
  assert.equal(inner.value.message.stat_prefix, 'ingress_http');
  assert.equal(inner.value.message.http_filters[0].typed_config.type_url, 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router');
  // PGV rules and unknown-field errors still apply inside an Any whose type was loaded on demand
  const bad = decodeJson('envoy.config.listener.v3.Filter', {
    name: 'x',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', cluster: 'c', bogus: 1 },
  });
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok && bad.errors.some((e) => e.path === 'typed_config.bogus'), JSON.stringify(bad));
  const pgv = decodeJson('envoy.config.listener.v3.Filter', {
    name: 'x',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', cluster: 'c' },
  });
  assert.equal(pgv.ok, false, 'TcpProxy.stat_prefix has min_len 1');
  const any = encodeAny('envoy.extensions.filters.http.fault.v3.HTTPFault', { max_active_faults: { value: 3 } });
  const unpacked = unpackAny<Obj>(any, '');
  assert.ok(unpacked.ok && unpacked.value.message.max_active_faults.value === 3);
});

/** A type's own fields; extension fields (`.validate.rules` on FieldOptions…) come with the files that declare them. */
function fieldsOf(t: protobuf.Type): unknown[] {
  return t.fieldsArray.filter((f) => !f.name.startsWith('.')).map((f) => [f.name, f.id, f.type, f.rule, f.resolvedType?.fullName, f.options, f.parsedOptions]);
}

test('every type in a Root holding all protos is found lazily with the same fields', () => {
  const full = new protobuf.Root();
  full.resolvePath = (_origin: string, target: string): string => findInclude(target) ?? target;
  full.loadSync([...protoIndex().files], { keepCase: true });
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) types.push(o);
      else if (o instanceof protobuf.Enum) enums.push(o);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o);
    }
  };
  walk(full);
  assert.ok(types.length > 1000, `${types.length} types`);
  // Reverse order: nested types and late packages first, so lookups start from unloaded files.
  for (const t of types.reverse()) {
    const lazy = lookupMessageType(t.fullName);
    assert.ok(lazy, `${t.fullName} not found lazily`);
    assert.deepEqual(fieldsOf(lazy), fieldsOf(t), t.fullName);
  }
  for (const e of enums) assert.deepEqual({ ...lookupEnumType(e.fullName)?.values }, { ...e.values }, e.fullName);
  // protoRoot() then holds exactly what the full Root holds.
  assert.equal(protoRoot().files.length, full.files.length);
});
