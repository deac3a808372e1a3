// A cluster replaced (CDS) across two workers sharing SharedCounters: while worker 0's new cluster
// warms (its first health checks not answered yet), worker 1 keeps following the serving cluster's
// results, so its hosts stay healthy; once worker 0 swaps, both follow the new checker.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { SharedCounters } from '../../../src/proxy/shared-counters.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import type { ClusterConfig } from '../../../src/proxy/upstream/types.ts';

function hcCluster(port: number, connectTimeout: string): ClusterConfig {
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', {
    name: 'c',
    type: 'STATIC',
    connect_timeout: connectTimeout,
    load_assignment: { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    health_checks: [{ timeout: '20s', interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: '/health' } }],
  });
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = parseCluster(d.value, 'c');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

test('a replaced cluster warming on worker 0 does not disturb what the other workers follow', { timeout: 30_000 }, async () => {
  let hold = false;
  const held: http.ServerResponse[] = [];
  let checks = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    checks++;
    if (hold) held.push(res);
    else res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const shared = SharedCounters.create(1024);
  const w0 = createClusterManager([hcCluster(port, '1s')], { stats: new StatsStore(), workerId: 0, shared });
  const w1 = createClusterManager([hcCluster(port, '1s')], { stats: new StatsStore(), workerId: 1, shared });
  try {
    await Promise.all([w0.ready(), w1.ready()]);
    const health = (cm: typeof w0): string | undefined => cm.get('c')?.hosts()[0]?.health;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(health(w0), 'healthy');
    assert.equal(health(w1), 'healthy');

    // Health checks now hang: the serving checker keeps its last result; a new one cannot finish warming.
    hold = true;
    const r1 = await w1.addOrUpdateCluster(hcCluster(port, '2s'));
    assert.ok(r1.ok);
    const before = checks;
    const warming = w0.addOrUpdateCluster(hcCluster(port, '2s'));
    await new Promise((r) => setTimeout(r, 400)); // several follower polls (every ≤100 ms)
    assert.ok(checks > before, "worker 0's new checker has probed");
    assert.equal(w0.get('c')?.info.connectTimeoutMs, 1000, 'worker 0 still serves the old cluster');
    assert.equal(health(w1), 'healthy', 'worker 1 keeps following the serving checker');

    hold = false;
    for (const res of held.splice(0)) res.end();
    assert.ok((await warming).ok);
    assert.equal(w0.get('c')?.info.connectTimeoutMs, 2000);
    assert.equal(health(w0), 'healthy');
    assert.equal(health(w1), 'healthy');
  } finally {
    for (const res of held.splice(0)) res.end();
    await w0.close();
    await w1.close();
    server.closeAllConnections();
    server.close();
  }
});
