// setEndpoints on an EDS cluster: hosts whose address (and weight, priority, health, locality,
// metadata) stay are the same Host objects after an update; the assignment's overprovisioning
// factor applies; bad assignments and non-EDS clusters are refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../../src/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import type { ClusterConfig } from '../../../src/proxy/upstream/types.ts';

function clusterConfig(json: object): ClusterConfig {
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', json);
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = parseCluster(d.value, 'c');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function cla(endpoints: Array<{ port: number; weight?: number; health?: string }>, extra: object = {}): ClusterLoadAssignment__Output {
  const d = decodeJson<ClusterLoadAssignment__Output>('envoy.config.endpoint.v3.ClusterLoadAssignment', {
    cluster_name: 'svc',
    endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: e.port } } }, ...(e.weight ? { load_balancing_weight: e.weight } : {}), ...(e.health ? { health_status: e.health } : {}) })) }],
    ...extra,
  });
  if (!d.ok) throw new Error(formatErrors(d.errors));
  return d.value;
}

test('EDS updates keep Host objects whose endpoint stayed, replace changed ones, drop removed ones', async () => {
  const stats = new StatsStore();
  const cm = createClusterManager([], { stats, workerId: 0 });
  try {
    const r = await cm.addOrUpdateCluster(clusterConfig({ name: 'svc', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }), cla([{ port: 1 }, { port: 2 }]));
    assert.ok(r.ok);
    const c = cm.get('svc')!;
    const [h1, h2] = c.hosts();
    assert.ok(cm.setEndpoints('svc', cla([{ port: 1 }, { port: 2, weight: 5 }, { port: 3 }])).ok);
    const after = c.hosts();
    assert.equal(after.length, 3);
    assert.equal(after[0], h1, 'unchanged endpoint: same Host');
    assert.notEqual(after[1], h2, 'changed weight: a new Host');
    assert.equal(after[1]!.weight, 5);
    assert.ok(cm.setEndpoints('svc', cla([{ port: 1, health: 'UNHEALTHY' }])).ok);
    assert.equal(c.hosts().length, 1);
    assert.equal(c.hosts()[0]!.health, 'unhealthy');
    assert.equal(stats.snapshot().gauges['cluster.svc.membership_healthy'], 0);
  } finally {
    await cm.close();
  }
});

test('setEndpoints refuses unknown and non-EDS clusters and bad assignments, changing nothing', async () => {
  const cm = createClusterManager([clusterConfig({ name: 'static', load_assignment: { cluster_name: 'static', endpoints: [] } })], { stats: new StatsStore(), workerId: 0 });
  try {
    await cm.ready();
    await cm.addOrUpdateCluster(clusterConfig({ name: 'svc', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }), cla([{ port: 1 }]));
    const unknown = cm.setEndpoints('nope', cla([]));
    assert.ok(!unknown.ok && /unknown cluster 'nope'/.test(unknown.errors[0]!.reason));
    const notEds = cm.setEndpoints('static', cla([]));
    assert.ok(!notEds.ok && /is STATIC, not EDS/.test(notEds.errors[0]!.reason));
    const gap = cm.setEndpoints('svc', cla([{ port: 9 }], { endpoints: [{ priority: 1, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 9 } } } }] }] }));
    assert.ok(!gap.ok && /gap in priorities/.test(gap.errors[0]!.reason));
    assert.deepEqual(cm.get('svc')!.hosts().map((h) => h.port), [1]);
  } finally {
    await cm.close();
  }
});
