// The command line end to end: validate mode, bad flags, malformed bootstraps naming field paths,
// --config-yaml merging, JSON bootstraps, and SIGTERM draining to exit 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { runCli, writeConfig, startLegate } from '../helpers/legate.ts';
import { httpBootstrap, cluster } from '../helpers/config.ts';

const good = httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }], clusters: { backend: { ports: [1] } } });

test('--mode validate prints OK and opens no socket', async () => {
  // Occupy a port and point the listener and admin at it: serving would fail, validating must not.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  const cfg = structuredClone(good) as { static_resources: { listeners: Array<{ address: unknown }> }; admin: { address: unknown } };
  cfg.static_resources.listeners[0]!.address = { socket_address: { address: '127.0.0.1', port_value: port } };
  cfg.admin.address = { socket_address: { address: '127.0.0.1', port_value: port } };
  try {
    const r = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'OK');
    const r2 = await runCli(['validate', writeConfig(cfg)]);
    assert.equal(r2.code, 0, r2.stderr);
  } finally {
    blocker.close();
  }
});

test('unknown flags and bad flag values are clear errors', async () => {
  const r = await runCli(['--no-such-flag']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option "--no-such-flag"/);
  const r2 = await runCli(['--concurrency', 'x', '-c', 'f.yaml']);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--concurrency: expected an integer/);
  const r3 = await runCli(['--mode', 'validate', '-c', writeConfig(good), '--disable-hot-restart', '--base-id', '3', '--file-flush-interval-msec', '100', '--drain-strategy', 'immediate', '--parent-shutdown-time-s', '5', '--service-cluster', 'c', '--service-node', 'n', '--local-address-ip-version', 'v4', '-l', 'warning', '--component-log-level', 'upstream:debug,config:trace']);
  assert.equal(r3.code, 0, r3.stderr);
});

const malformed: Array<[string, string, RegExp]> = [
  ['bad YAML', 'static_resources:\n  clusters: [\n', /bootstrap\.yaml:\d+:\d+: YAML error/],
  ['unknown field', 'static_resources:\n  clusters:\n  - name: a\n    nme: b\n', /static_resources\.clusters\[0\]\.nme: unknown field/],
  ['wrong type', 'static_resources:\n  clusters:\n  - name: a\n    connect_timeout: 1s\n    load_assignment:\n      cluster_name: a\n      endpoints:\n      - lb_endpoints:\n        - endpoint:\n            address:\n              socket_address: { address: 127.0.0.1, port_value: "abc" }\n', /static_resources\.clusters\[0\]\.load_assignment\.endpoints\[0\]\.lb_endpoints\[0\]\.endpoint\.address\.socket_address\.port_value/],
  ['missing required field', 'static_resources:\n  clusters:\n  - connect_timeout: 1s\n', /static_resources\.clusters\[0\]\.name/],
];

for (const [what, yaml, re] of malformed) {
  test(`malformed bootstrap (${what}) exits non-zero naming the field`, async () => {
    const r = await runCli(['-c', writeConfig(yaml)]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, re);
  });
}

test('a route to an unknown cluster is an error naming the route', async () => {
  const cfg = httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'nope' } }], clusters: { backend: { ports: [1] } } });
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /static_resources\.listeners\[0\]\.filter_chains\[0\]\.filters\[0\]\.typed_config\.route_config\.virtual_hosts\[0\]\.routes\[0\]\.route\.cluster/);
  assert.match(r.stderr, /nope/);
  assert.equal(r.stdout.trim(), 'ERROR');
});

test('an unimplemented extension is named; an optional one is skipped', async () => {
  const cfg = httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }], clusters: { backend: { ports: [1] } } }) as {
    static_resources: { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: unknown[] } }> }> }> };
  };
  const filters = cfg.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.http_filters;
  filters.unshift({ name: 'envoy.filters.http.csrf', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy', filter_enabled: { default_value: { numerator: 100 } } } });
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /http_filters\[0\].*envoy\.filters\.http\.csrf/);
  (filters[0] as { is_optional?: boolean }).is_optional = true;
  const r2 = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
  assert.equal(r2.code, 0, r2.stderr);
});

test('--allow-unknown-static-fields accepts unknown fields', async () => {
  const yaml = 'static_resources:\n  clusters:\n  - name: a\n    connect_timeout: 1s\n    surprise: 1\n';
  assert.equal((await runCli(['--mode', 'validate', '-c', writeConfig(yaml)])).code, 1);
  const r = await runCli(['--mode', 'validate', '--allow-unknown-static-fields', '-c', writeConfig(yaml)]);
  assert.equal(r.code, 0, r.stderr);
});

test('--config-yaml merges over the file; JSON bootstraps load', async () => {
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(good, 'json'), '--config-yaml', 'static_resources: { clusters: [ { name: extra, connect_timeout: 2s } ] }']);
  assert.equal(r.code, 0, r.stderr);
  // The merged cluster list now has a duplicate: the error proves the YAML was merged (appended).
  const dup = JSON.stringify({ static_resources: { clusters: [cluster('backend', { ports: [1] })] } });
  const r2 = await runCli(['--mode', 'validate', '-c', writeConfig(good, 'json'), '--config-yaml', dup]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /static_resources\.clusters\[1\]\.name: .*duplicate cluster 'backend'/);
  const r3 = await runCli(['--mode', 'validate', '--config-yaml', JSON.stringify(good)]);
  assert.equal(r3.code, 0, r3.stderr);
});

test('SIGTERM drains and exits 0; server stats are reported', async () => {
  const l = await startLegate(good, { concurrency: 2 });
  try {
    const s = await l.stats();
    assert.equal(s['server.live'], 1);
    assert.equal(s['server.state'], 0);
    assert.equal(s['server.concurrency'], 2);
    assert.equal(s['listener_manager.workers_started'], 2);
    assert.equal(s['listener_manager.total_listeners_active'], 1);
    const ready = await fetch(`${l.admin}/ready`);
    assert.equal(ready.status, 200);
    assert.match(l.stderr(), /\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\]\[main\]\[info\]\[main\] legate/);
  } finally {
    assert.equal(await l.stop('SIGTERM'), 0);
  }
});
