import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBootstrap, parseYaml } from '../../src/config/bootstrap.ts';
import { decodeJson } from '../../src/config/decode.ts';
import type { ConfigError, Result } from '../../src/config/result.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'legate-bootstrap-'));
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}
function errs(r: Result<unknown>): ConfigError[] {
  assert.equal(r.ok, false, 'expected failure');
  return r.ok ? [] : [...r.errors];
}
function expectError(r: Result<unknown>, p: string, reason: string | RegExp): void {
  const e = errs(r);
  const hit = e.some((x) => x.path === p && (typeof reason === 'string' ? x.reason === reason : reason.test(x.reason)));
  assert.ok(hit, `no "${p}: ${reason}" in ${JSON.stringify(e)}`);
}

const BASE = `
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 9901 }
static_resources:
  clusters:
  - name: a
    connect_timeout: 0.25s
    type: STATIC
    load_assignment:
      cluster_name: a
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: 8080 }
`;

test('a YAML file decodes to a Bootstrap', () => {
  const r = loadBootstrap({ configPath: file('ok.yaml', BASE) });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  const c = r.value.static_resources!.clusters[0]!;
  assert.equal(c.name, 'a');
  assert.deepEqual(c.connect_timeout, { seconds: '0', nanos: 250000000 });
  assert.equal(c.type, 'STATIC');
  assert.equal(r.value.admin!.address!.socket_address!.port_value, 9901);
});

test('a JSON file decodes too', () => {
  const r = loadBootstrap({ configPath: file('ok.json', JSON.stringify({ node: { id: 'n1', cluster: 'c' } })) });
  assert.ok(r.ok);
  assert.equal(r.value.node!.id, 'n1');
});

test('--config-yaml merges over the file: messages merged, repeated appended, scalars replaced', () => {
  const overlay = `
admin: { address: { socket_address: { port_value: 9902 } } }
node: { id: sidecar }
static_resources:
  clusters:
  - name: b
    connect_timeout: 1s
`;
  const r = loadBootstrap({ configPath: file('merge.yaml', BASE), configYaml: overlay });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  assert.equal(r.value.admin!.address!.socket_address!.port_value, 9902);
  assert.equal(r.value.admin!.address!.socket_address!.address, '127.0.0.1'); // kept: merged, not replaced
  assert.deepEqual(r.value.static_resources!.clusters.map((c) => c.name), ['a', 'b']);
  assert.equal(r.value.node!.id, 'sidecar');
});

test('--config-yaml: a oneof member set in the overlay clears its sibling', () => {
  const overlay = 'admin: { address: { pipe: { path: /tmp/admin.sock } } }';
  const r = loadBootstrap({ configPath: file('oneof.yaml', BASE), configYaml: overlay });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  assert.equal(r.value.admin!.address!.address, 'pipe');
  assert.equal(r.value.admin!.address!.socket_address, undefined);
  assert.equal(r.value.admin!.address!.pipe!.path, '/tmp/admin.sock');
});

test('--config-yaml alone is a whole config', () => {
  const r = loadBootstrap({ configYaml: 'node: { id: x }' });
  assert.ok(r.ok);
  assert.equal(r.value.node!.id, 'x');
});

test('errors in --config-yaml say so', () => {
  expectError(loadBootstrap({ configPath: file('o.yaml', BASE), configYaml: 'nod: {}' }), 'nod', /unknown field "nod" \(in --config-yaml\)/);
});

test('neither a file nor --config-yaml is an error', () => {
  expectError(loadBootstrap({}), '', /no configuration given/);
});

test('a missing file is a clear error', () => {
  expectError(loadBootstrap({ configPath: path.join(dir, 'nope.yaml') }), '', /cannot read config file ".*nope.yaml": no such file/);
});

test('.pb and .pb_text are rejected as unsupported', () => {
  expectError(loadBootstrap({ configPath: file('x.pb', '') }), '', /not supported/);
  expectError(loadBootstrap({ configPath: file('x.pb_text', '') }), '', /not supported/);
});

test('bad YAML names line and column', () => {
  const p = file('bad.yaml', 'admin:\n  address: [1, 2\nnode: {}\n');
  const e = errs(loadBootstrap({ configPath: p }));
  assert.match(e[0]!.reason, /bad\.yaml:\d+:\d+: YAML error: /);
  const dup = errs(parseYaml('a: 1\na: 2\n', 'dup.yaml'));
  assert.match(dup[0]!.reason, /^dup\.yaml:2:1: YAML error: /);
});

test('unknown field, wrong type, missing required field, two oneof members: each at its path', () => {
  const unknown = BASE.replace('- name: a', '- nme: a');
  const r1 = loadBootstrap({ configPath: file('u.yaml', unknown) });
  expectError(r1, 'static_resources.clusters[0].nme', 'unknown field "nme"');
  const wrongType = BASE.replace('port_value: 8080', 'port_value: "abc"');
  expectError(loadBootstrap({ configPath: file('w.yaml', wrongType) }), 'static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value', 'expected uint32, got string "abc"');
  const noName = BASE.replace('- name: a', '- alt_stat_name: a');
  expectError(loadBootstrap({ configPath: file('n.yaml', noName) }), 'static_resources.clusters[0].name', 'value length must be at least 1 characters');
  const twoOneof = BASE.replace('port_value: 8080', 'port_value: 8080, named_port: http');
  expectError(loadBootstrap({ configPath: file('t.yaml', twoOneof) }), 'static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address', 'only one of port_value, named_port may be set');
  const badDuration = BASE.replace('0.25s', '250ms');
  expectError(loadBootstrap({ configPath: file('d.yaml', badDuration) }), 'static_resources.clusters[0].connect_timeout', /invalid duration "250ms"/);
});

test('--allow-unknown-static-fields turns unknown fields into warnings', () => {
  const r = loadBootstrap({ configPath: file('a.yaml', BASE + 'bogus: 1\n'), allowUnknownFields: true });
  assert.ok(r.ok);
  assert.deepEqual(r.warnings, ['bogus: unknown field ignored']);
});

test('a listener filter chain: HCM without a route source is rejected inside the Any', () => {
  const y = `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 0.0.0.0, port_value: 10000 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
`;
  expectError(loadBootstrap({ configYaml: y }), 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config', 'exactly one of fields [rds, route_config, scoped_routes] must be set');
});

test('YAML anchors and merge keys work', () => {
  const r = parseYaml('a: &x { b: 1 }\nc: { <<: *x, d: 2 }\n', 's');
  assert.deepEqual(r.ok && r.value, { a: { b: 1 }, c: { b: 1, d: 2 } });
  assert.equal(decodeJson('envoy.config.core.v3.Node', { id: 'x' }).ok, true);
});
