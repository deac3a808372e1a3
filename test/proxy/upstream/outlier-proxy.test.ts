// Outlier detection behind the real connection manager and router: an upstream that answers 500 on
// purpose is ejected after five 5xx, traffic avoids it, and it returns after base_ejection_time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, ROUTER_FILTER, startProxy, type Downstream } from '../../filters/http/router/proxy-harness.ts';

const TIMEOUT = { timeout: 20_000 };

interface Up {
  port: number;
  hits: number;
  status: number;
  close(): Promise<void>;
}

async function upstream(status: number): Promise<Up> {
  const up: Up = { port: 0, hits: 0, status, close: async () => {} };
  const server = http.createServer((req, res) => {
    up.hits++;
    req.resume();
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

function hcm(): string {
  return `
stat_prefix: ingress_http
route_config:
  virtual_hosts:
  - { name: vh, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: up } }] }
${ROUTER_FILTER}`;
}

function cluster(ports: number[], outlier: string): string {
  return `
name: up
connect_timeout: 1s
lb_policy: ROUND_ROBIN
load_assignment:
  cluster_name: up
  endpoints:
  - lb_endpoints:
${ports.map((p) => `    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`).join('\n')}
outlier_detection: ${outlier}`;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const down of ['h1', 'h2'] as Downstream[]) {
  test(`${down}: five 5xx eject a host, traffic avoids it, it returns after its ejection time`, TIMEOUT, async () => {
    const bad = await upstream(500);
    const good = await upstream(200);
    const proxy = await startProxy(hcm(), [cluster([bad.port, good.port], '{ interval: 0.05s, base_ejection_time: 0.4s, max_ejection_percent: 50 }')]);
    const c = new Client(down, proxy.port);
    const od = (n: string): number => proxy.counter(`cluster.up.outlier_detection.${n}`);
    try {
      while (bad.hits < 5) await c.request({ path: '/' });
      assert.equal(proxy.gauge('cluster.up.outlier_detection.ejections_active'), 1);
      assert.equal(od('ejections_enforced_total'), 1);
      assert.equal(od('ejections_enforced_consecutive_5xx'), 1);
      assert.equal(od('ejections_detected_consecutive_5xx'), 1);
      assert.equal(proxy.gauge('cluster.up.membership_healthy'), 1);
      const before = bad.hits;
      const ejectedAt = Date.now();
      for (let i = 0; i < 10; i++) assert.equal((await c.request({ path: '/' })).status, 200);
      if (Date.now() - ejectedAt < 350) assert.equal(bad.hits, before, 'the ejected host gets no traffic');
      bad.status = 200;
      await until(() => proxy.gauge('cluster.up.outlier_detection.ejections_active') === 0);
      assert.ok(Date.now() - ejectedAt >= 350, 'back only after base_ejection_time');
      const hitsBack = bad.hits;
      for (let i = 0; i < 10; i++) await c.request({ path: '/' });
      assert.ok(bad.hits > hitsBack, 'the host takes traffic again');
      assert.equal(od('ejections_enforced_total'), 1);
    } finally {
      c.close();
      await proxy.close();
      await bad.close();
      await good.close();
    }
  });
}

test('connection failures count as local-origin failures (split) and eject', TIMEOUT, async () => {
  const good = await upstream(200);
  const gone = await upstream(200);
  const gonePort = gone.port;
  await gone.close();
  const proxy = await startProxy(hcm(), [cluster([gonePort, good.port], '{ interval: 1s, base_ejection_time: 10s, split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, always_eject_one_host: true }')]);
  const c = new Client('h1', proxy.port);
  try {
    for (let i = 0; i < 8 && proxy.counter('cluster.up.outlier_detection.ejections_enforced_total') === 0; i++) await c.request({ path: '/' });
    assert.equal(proxy.counter('cluster.up.outlier_detection.ejections_enforced_consecutive_local_origin_failure'), 1);
    for (let i = 0; i < 6; i++) assert.equal((await c.request({ path: '/' })).status, 200);
  } finally {
    c.close();
    await proxy.close();
    await good.close();
  }
});
