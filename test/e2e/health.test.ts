// Health end to end through the real process: active HTTP checks run once (worker 0) and every
// worker routes by the published flags; /clusters shows Envoy's health flags; outlier ejection
// shows /failed_outlier_check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { httpBootstrap } from '../helpers/config.ts';

const TIMEOUT = { timeout: 30_000 };

async function upstream(healthz: number, status = 200) {
  const up = { port: 0, hits: 0, healthz, status, close: async (): Promise<void> => {} };
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      res.statusCode = up.healthz;
      return res.end();
    }
    up.hits++;
    res.statusCode = up.status;
    res.end(String(up.port));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  up.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

/** A fresh connection per request, so the kernel spreads them over the workers. */
function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

async function clustersText(admin: string): Promise<string> {
  return (await fetch(`${admin}/clusters`)).text();
}

async function until(cond: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('active HTTP checks across two workers: flags in /clusters, traffic avoids the failing host', TIMEOUT, async () => {
  const a = await upstream(200);
  const b = await upstream(503);
  const healthChecks = [{ timeout: '0.5s', interval: '0.05s', no_traffic_interval: '0.05s', unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: { path: '/healthz' } }];
  let legate: Legate | undefined;
  try {
    legate = await startLegate(httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }], clusters: { up: { ports: [a.port, b.port], extra: { health_checks: healthChecks } } } }), { concurrency: 2 });
    const port = await legate.listenerPort('http');
    const admin = legate.admin;
    await until(async () => (await clustersText(admin)).includes(`up::127.0.0.1:${b.port}::health_flags::/failed_active_hc\n`));
    assert.match(await clustersText(admin), new RegExp(`up::127\\.0\\.0\\.1:${a.port}::health_flags::healthy\\n`));
    for (let i = 0; i < 30; i++) assert.equal(await get(port), 200);
    assert.equal(b.hits, 0, 'no worker sends traffic to the failing host');
    const s = await legate.stats();
    assert.equal(s['cluster.up.health_check.healthy'], 1);
    assert.ok((s['cluster.up.health_check.failure'] ?? 0) >= 1);
    b.healthz = 200;
    await until(async () => (await clustersText(admin)).includes(`up::127.0.0.1:${b.port}::health_flags::healthy\n`));
    for (let i = 0; i < 30; i++) await get(port);
    assert.ok(b.hits > 0, 'the restored host takes traffic');
  } finally {
    await legate?.stop();
    await a.close();
    await b.close();
  }
});

test('across two workers: x-envoy-degraded shows /degraded_active_hc, an endpoint without checks takes traffic, one checked on another port', TIMEOUT, async () => {
  const degraded = await upstream(200);
  const unchecked = await upstream(503); // its /healthz would fail, but its endpoint disables checks
  const served = await upstream(503); // its own /healthz fails; its checks go to `checker`
  const checker = await upstream(200);
  const degradedHc = http.createServer((_req, res) => res.writeHead(200, { 'x-envoy-degraded': 'true' }).end());
  await new Promise<void>((r) => degradedHc.listen(0, '127.0.0.1', r));
  const degradedHcPort = (degradedHc.address() as AddressInfo).port;
  const healthChecks = [{ timeout: '0.5s', interval: '0.05s', no_traffic_interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: '/healthz' } }];
  const ep = (port: number, hc?: Record<string, unknown>) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } }, ...(hc ? { health_check_config: hc } : {}) } });
  // Envoy gives degraded hosts the load healthy ones cannot cover: 2 of 3 healthy × an
  // overprovisioning factor of 2 covers all of it (with the default 1.4 the degraded host gets ~7%).
  const loadAssignment = {
    cluster_name: 'up',
    policy: { overprovisioning_factor: 200 },
    endpoints: [{ lb_endpoints: [ep(degraded.port, { port_value: degradedHcPort }), ep(unchecked.port, { disable_active_health_check: true }), ep(served.port, { port_value: checker.port })] }],
  };
  let legate: Legate | undefined;
  try {
    legate = await startLegate(
      httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }], clusters: { up: { ports: [], extra: { load_assignment: loadAssignment, health_checks: healthChecks } } } }),
      { concurrency: 2 },
    );
    const port = await legate.listenerPort('http');
    const admin = legate.admin;
    await until(async () => (await clustersText(admin)).includes(`up::127.0.0.1:${degraded.port}::health_flags::/degraded_active_hc\n`));
    const text = await clustersText(admin);
    assert.match(text, new RegExp(`up::127\\.0\\.0\\.1:${unchecked.port}::health_flags::healthy\\n`));
    assert.match(text, new RegExp(`up::127\\.0\\.0\\.1:${served.port}::health_flags::healthy\\n`));
    const json = (await (await fetch(`${admin}/clusters?format=json`)).json()) as { cluster_statuses: Array<{ name: string; host_statuses: Array<{ address: { socket_address: { port_value: number } }; health_status: Record<string, unknown> }> }> };
    const hosts = json.cluster_statuses.find((c) => c.name === 'up')!.host_statuses;
    assert.equal(hosts.find((h) => h.address.socket_address.port_value === degraded.port)!.health_status.failed_active_degraded_check, true);
    // Both healthy hosts take traffic from both workers; the degraded one none while they suffice.
    for (let i = 0; i < 40; i++) assert.equal(await get(port), 200);
    assert.ok(unchecked.hits > 0 && served.hits > 0, `unchecked ${unchecked.hits}, served ${served.hits}`);
    assert.equal(degraded.hits, 0);
    const s = await legate.stats();
    assert.equal(s['cluster.up.health_check.degraded'], 1);
    assert.equal(s['cluster.up.health_check.healthy'], 2, 'the two checked hosts pass');
  } finally {
    await legate?.stop();
    for (const u of [degraded, unchecked, served, checker]) await u.close();
    degradedHc.close();
  }
});

test('outlier ejection shows /failed_outlier_check in /clusters', TIMEOUT, async () => {
  const a = await upstream(200);
  const b = await upstream(200, 500);
  let legate: Legate | undefined;
  try {
    legate = await startLegate(
      httpBootstrap({
        routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }],
        clusters: { up: { ports: [a.port, b.port], extra: { outlier_detection: { interval: '0.1s', base_ejection_time: '30s', max_ejection_percent: 50 } } } },
      }),
    );
    const port = await legate.listenerPort('http');
    const admin = legate.admin;
    for (let i = 0; i < 30 && b.hits < 5; i++) await get(port);
    await until(async () => (await clustersText(admin)).includes(`up::127.0.0.1:${b.port}::health_flags::/failed_outlier_check\n`));
    const s = await legate.stats();
    assert.equal(s['cluster.up.outlier_detection.ejections_active'], 1);
    assert.equal(s['cluster.up.outlier_detection.ejections_enforced_total'], 1);
    const json = (await (await fetch(`${admin}/clusters?format=json`)).json()) as { cluster_statuses: Array<{ name: string; host_statuses: Array<{ health_status: Record<string, unknown> }> }> };
    const up = json.cluster_statuses.find((c) => c.name === 'up')!;
    assert.ok(up.host_statuses.some((h) => h.health_status.failed_outlier_check === true));
  } finally {
    await legate?.stop();
    await a.close();
    await b.close();
  }
});
