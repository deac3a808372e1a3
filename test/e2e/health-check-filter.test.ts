// envoy.filters.http.health_check in a real legate process, as an edge proxy behind a load balancer
// uses it: /healthz answered by legate (not the upstream) with x-envoy-upstream-healthchecked-cluster,
// 503 (LH, health_check_failed) after admin /healthcheck/fail on every worker, other responses
// marked x-envoy-immediate-health-check-fail meanwhile, access logs' not_health_check_filter;
// cluster_min_healthy_percentages against a cluster with a failing host; pass-through mode with
// cache_time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { cluster, hcm, ROUTER_TYPE, socketAddress } from '../helpers/config.ts';

const TIMEOUT = { timeout: 30_000 };
const HC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck';

async function upstream(): Promise<{ port: number; paths: string[]; server: http.Server }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.end(req.url === '/healthz' ? 'upstream healthy' : 'app');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, paths, server };
}

function hcListener(name: string, hc: Record<string, unknown>, extra: Record<string, unknown> = {}): object {
  const h = hcm({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] }, {
    http_filters: [
      { name: 'envoy.filters.http.health_check', typed_config: { '@type': HC_TYPE, headers: [{ name: ':path', string_match: { exact: '/healthz' } }], ...hc } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
    ],
    ...extra,
  });
  return { name, address: socketAddress(0), filter_chains: [{ filters: [h] }] };
}

const fileLog = (path: string, onlyNonHealthChecks: boolean): object => ({
  name: 'envoy.access_loggers.file',
  ...(onlyNonHealthChecks ? { filter: { not_health_check_filter: {} } } : {}),
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
    path,
    log_format: { text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n' } },
  },
});

async function get(port: number, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { reset: true }); // a new connection: any worker
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

test('answered by legate on two workers; /healthcheck/fail turns it to 503 LH and marks other responses; access logs can skip it', TIMEOUT, async () => {
  const up = await upstream();
  const dir = mkdtempSync(join(tmpdir(), 'legate-hc-filter-'));
  const all = join(dir, 'all.log');
  const apps = join(dir, 'apps.log');
  let legate: Legate | undefined;
  try {
    const bootstrap = {
      node: { id: 'edge-1', cluster: 'edge' },
      static_resources: {
        listeners: [hcListener('http', { pass_through_mode: false }, { access_log: [fileLog(all, false), fileLog(apps, true)] })],
        clusters: [cluster('up', { ports: [up.port] })],
      },
      admin: { address: socketAddress(0) },
    };
    legate = await startLegate(bootstrap, { concurrency: 2 });
    const port = await legate.listenerPort('http');
    for (let i = 0; i < 4; i++) {
      const ok = await get(port, '/healthz');
      assert.equal(ok.status, 200);
      assert.equal(ok.body, '');
      assert.equal(ok.headers['x-envoy-upstream-healthchecked-cluster'], 'edge');
    }
    const app = await get(port, '/app');
    assert.equal(app.body, 'app');
    assert.equal(app.headers['x-envoy-immediate-health-check-fail'], undefined);
    assert.deepEqual(up.paths, ['/app'], 'health checks never reached the upstream');

    assert.equal((await fetch(`${legate.admin}/healthcheck/fail`, { method: 'POST' })).status, 200);
    for (let i = 0; i < 4; i++) {
      const failing = await get(port, '/healthz');
      assert.equal(failing.status, 503, 'every worker sees the failed state');
      assert.equal(failing.headers['x-envoy-upstream-healthchecked-cluster'], 'edge');
    }
    const marked = await get(port, '/app');
    assert.equal(marked.status, 200);
    assert.equal(marked.headers['x-envoy-immediate-health-check-fail'], 'true');

    assert.equal((await fetch(`${legate.admin}/healthcheck/ok`, { method: 'POST' })).status, 200);
    assert.equal((await get(port, '/healthz')).status, 200);
    await legate.stop();
    legate = undefined;
    const lines = readFileSync(all, 'utf8').trim().split('\n');
    assert.equal(lines.filter((l) => l === '/healthz 200 - health_check_ok').length, 5);
    assert.equal(lines.filter((l) => l === '/healthz 503 LH health_check_failed').length, 4);
    assert.deepEqual(readFileSync(apps, 'utf8').trim().split('\n'), ['/app 200 - via_upstream', '/app 200 - via_upstream'], 'not_health_check_filter drops the health checks');
  } finally {
    await legate?.stop();
    up.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster_min_healthy_percentages: a missing cluster, too few available hosts, enough; pass-through mode with cache_time', TIMEOUT, async () => {
  const up = await upstream();
  const gone = net.createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const gonePort = (gone.address() as net.AddressInfo).port;
  gone.close(); // refused: its active TCP check fails
  const checked = cluster('pair', {
    ports: [up.port, gonePort],
    extra: { health_checks: [{ timeout: '0.5s', interval: '0.1s', no_traffic_interval: '0.1s', unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {} }] },
  });
  let legate: Legate | undefined;
  try {
    const bootstrap = {
      node: { id: 'edge-1', cluster: 'edge' },
      static_resources: {
        listeners: [
          hcListener('strict', { pass_through_mode: false, cluster_min_healthy_percentages: { pair: { value: 60 } } }),
          hcListener('lenient', { pass_through_mode: false, cluster_min_healthy_percentages: { pair: { value: 50.9 } } }),
          hcListener('missing', { pass_through_mode: false, cluster_min_healthy_percentages: { nope: { value: 0 } } }),
          hcListener('cached', { pass_through_mode: true, cache_time: '60s' }),
        ],
        clusters: [cluster('up', { ports: [up.port] }), checked],
      },
      admin: { address: socketAddress(0) },
    };
    legate = await startLegate(bootstrap, { concurrency: 1 });
    assert.equal((await get(await legate.listenerPort('strict'), '/healthz')).status, 503, '1 of 2 available is below 60%');
    assert.equal((await get(await legate.listenerPort('lenient'), '/healthz')).status, 200, '50.9 is taken as 50, as Envoy truncates it');
    assert.equal((await get(await legate.listenerPort('missing'), '/healthz')).status, 503);
    const cachedPort = await legate.listenerPort('cached');
    const first = await get(cachedPort, '/healthz');
    assert.equal(first.body, 'upstream healthy', 'pass-through: the upstream answers');
    assert.equal(first.headers['x-envoy-upstream-healthchecked-cluster'], 'edge');
    const second = await get(cachedPort, '/healthz');
    assert.equal(second.status, 200);
    assert.equal(second.body, '', 'within cache_time legate answers with the cached status');
    assert.deepEqual(up.paths, ['/healthz']);
  } finally {
    await legate?.stop();
    up.server.close();
  }
});
