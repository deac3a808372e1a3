// The main-thread xDS manager against the test control plane (ADS SotW and delta over TCP): the
// initial fetch (CDS → EDS → LDS → RDS) and the updates it pushes to workers, warming, NACKs with
// the previous config kept (and the listener's error_state), SotW deletion of unused clusters,
// clusters kept while a route still names them, and Envoy's stat names. The workers' side is
// stood in for by recording the XdsWorkerUpdates (the workers' handling is tested elsewhere).

import test from 'node:test';
import assert from 'node:assert/strict';
import { loadBootstrap } from '../../../src/config/bootstrap.ts';
import { buildStaticConfig, type StaticConfig } from '../../../src/config/static-config.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry } from '../../../src/filters/registry.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { XdsManager } from '../../../src/proxy/xds/xds-manager.ts';
import type { XdsWorkerUpdate } from '../../../src/proxy/worker/messages.ts';
import { buildConfigDump } from '../../../src/proxy/admin/config-dump.ts';
import { ControlPlane } from '../../helpers/xds/control-plane.ts';
import { adsBootstrap, apiSource, cla, edsCluster, rdsListener, routeConfig, tcpListener, type Mode } from '../../helpers/xds/e2e.ts';
import { TYPE_URL } from '../../../src/xds-client/codec.ts';
import { tempDir, until } from '../../xds-client/helpers.ts';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

registerBuiltins(registry);

const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const CLA = 'envoy.config.endpoint.v3.ClusterLoadAssignment';
const LISTENER = 'envoy.config.listener.v3.Listener';
const ROUTE = 'envoy.config.route.v3.RouteConfiguration';

function staticConfig(bootstrap: object): StaticConfig {
  const b = loadBootstrap({ configYaml: JSON.stringify(bootstrap) });
  if (!b.ok) throw new Error(formatErrors(b.errors));
  const c = buildStaticConfig(b.value);
  if (!c.ok) throw new Error(formatErrors(c.errors));
  return c.value;
}

interface Harness {
  readonly manager: XdsManager;
  readonly stats: StatsStore;
  readonly pushes: XdsWorkerUpdate[];
  counter(name: string): number;
  gauge(name: string): number;
}

function harness(cp: ControlPlane, mode: Mode): Harness {
  const config = staticConfig(adsBootstrap(cp, mode));
  const stats = new StatsStore();
  const pushes: XdsWorkerUpdate[] = [];
  const manager = new XdsManager({ config, plan: config.dynamic!, stats, push: async (u) => void pushes.push(u), drainTimeMs: 100, workers: 2 });
  return {
    manager,
    stats,
    pushes,
    counter: (n) => stats.snapshot().counters[n] ?? 0,
    gauge: (n) => stats.snapshot().gauges[n] ?? 0,
  };
}

function seed(cp: ControlPlane): void {
  cp.snapshot.setJson(CLUSTER, 'backend', edsCluster('backend'));
  cp.snapshot.setJson(CLA, 'backend', cla('backend', [10001, 10002]));
  cp.snapshot.setJson(LISTENER, 'http', rdsListener('http', 0, 'local_route'));
  cp.snapshot.setJson(ROUTE, 'local_route', routeConfig('local_route', 'backend'));
}

for (const mode of ['sotw', 'delta'] as const) {
  test(`${mode}: initial fetch warms the EDS cluster then the RDS listener, pushes them in order, and counts Envoy's stats`, async () => {
    const cp = await ControlPlane.start();
    seed(cp);
    const h = harness(cp, mode);
    try {
      await h.manager.start();
      const all = h.pushes;
      const ci = all.findIndex((u) => u.clusters?.some((c) => c.cluster.name === 'backend'));
      const li = all.findIndex((u) => u.listeners?.some((l) => l.name === 'http'));
      assert.ok(ci >= 0 && li > ci, `cluster pushed before listener: ${JSON.stringify(all.map((u) => Object.keys(u)))}`);
      const c = all[ci]!.clusters!.find((x) => x.cluster.name === 'backend')!;
      assert.equal(c.endpoints?.endpoints[0]?.lb_endpoints.length, 2, 'an EDS cluster comes with its first ClusterLoadAssignment');
      const withListener = all[li]!;
      const routesBefore = all.slice(0, li + 1).some((u) => u.routes?.some((r) => r.name === 'local_route'));
      assert.ok(routesBefore, 'the route configuration reaches workers no later than the listener');
      assert.equal(withListener.ports?.['http'] !== undefined && withListener.ports['http'] > 0, true, 'a port-0 listener gets a reserved port');
      assert.ok(h.counter('cluster_manager.cds.update_success') >= 1);
      assert.ok(h.counter('listener_manager.lds.update_success') >= 1);
      assert.equal(h.counter('cluster_manager.cluster_added'), 1);
      assert.equal(h.counter('listener_manager.listener_added'), 1);
      assert.equal(h.counter('listener_manager.listener_create_success'), 2);
      assert.equal(h.gauge('cluster_manager.active_clusters'), 2, 'xds_cluster (static) and backend');
      assert.equal(h.gauge('cluster_manager.warming_clusters'), 0);
      assert.equal(h.gauge('listener_manager.total_listeners_active'), 1);
      assert.equal(h.gauge('listener_manager.total_listeners_warming'), 0);
      assert.ok(h.counter('http.ingress_http.rds.local_route.update_success') >= 1);
      assert.equal(h.gauge('control_plane.connected_state'), 1);
      assert.equal(h.gauge('control_plane.pending_requests'), 0);
      assert.ok('control_plane.rate_limit_enforced' in h.stats.snapshot().counters);
      // The EDS and RDS requests name what the config refers to.
      const eds = cp.requestsFor(TYPE_URL.endpoint).map((r) => r.request);
      const edsNames = eds.flatMap((q) => ('resource_names' in q ? q.resource_names : q.resource_names_subscribe));
      assert.ok(edsNames.includes('backend'));
      const rds = cp.requestsFor(TYPE_URL.route).map((r) => r.request);
      assert.ok(rds.flatMap((q) => ('resource_names' in q ? q.resource_names : q.resource_names_subscribe)).includes('local_route'));
      // CDS was asked for before LDS (Envoy's init order).
      const first = (t: string): number => cp.requests.findIndex((r) => r.request.type_url === t);
      assert.ok(first(TYPE_URL.cluster) < first(TYPE_URL.listener));
      // config_dump shape.
      const dump = buildConfigDump({ bootstrap: staticConfig(adsBootstrap(cp, mode)).bootstrap, loadedAt: new Date(), xds: h.manager.dumpState(), secrets: {} }, { includeEds: true }) as { configs: Array<Record<string, unknown>> };
      const byType = (t: string): Record<string, unknown> => dump.configs.find((x) => String(x['@type']).endsWith(t))!;
      const clusters = byType('ClustersConfigDump');
      assert.equal((clusters['dynamic_active_clusters'] as Array<{ cluster: { name: string } }>)[0]!.cluster.name, 'backend');
      const listeners = byType('ListenersConfigDump')['dynamic_listeners'] as Array<{ name: string; active_state?: { listener: { name: string }; version_info: string; last_updated: string } }>;
      assert.equal(listeners[0]!.name, 'http');
      assert.equal(listeners[0]!.active_state?.listener.name, 'http');
      assert.ok(listeners[0]!.active_state?.last_updated);
      assert.equal((byType('RoutesConfigDump')['dynamic_route_configs'] as Array<{ route_config: { name: string } }>)[0]!.route_config.name, 'local_route');
      assert.equal((byType('EndpointsConfigDump')['dynamic_endpoint_configs'] as Array<{ endpoint_config: { cluster_name: string } }>)[0]!.endpoint_config.cluster_name, 'backend');
      const masked = buildConfigDump({ bootstrap: staticConfig(adsBootstrap(cp, mode)).bootstrap, loadedAt: new Date(), xds: h.manager.dumpState(), secrets: {} }, { includeEds: false, resource: 'dynamic_active_clusters', mask: 'cluster.name' }) as { configs: Array<Record<string, unknown>> };
      assert.deepEqual(masked.configs, [{ '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster', cluster: { name: 'backend' } }]);
    } finally {
      h.manager.close();
      await cp.close();
    }
  });

  test(`${mode}: a bad listener is NACKed naming it, the last good config keeps serving, and error_state records it`, async () => {
    const cp = await ControlPlane.start();
    seed(cp);
    const h = harness(cp, mode);
    try {
      await h.manager.start();
      const pushed = h.pushes.length;
      cp.snapshot.setJson(LISTENER, 'broken', { name: 'broken', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [] });
      const nack = await cp.waitFor(() => cp.requestsFor(TYPE_URL.listener).find((r) => r.request.error_detail), 'an LDS NACK');
      assert.match(nack.request.error_detail!.message, /listener 'broken'/);
      assert.match(nack.request.error_detail!.message, /filter_chains/);
      assert.equal(h.counter('listener_manager.lds.update_rejected'), 1);
      assert.equal(h.pushes.length, pushed, 'nothing of a rejected update reaches the workers');
      const st = h.manager.dumpState();
      assert.ok(st.activeListeners.has('http'));
      assert.match(st.listenerErrors.get('broken')?.details ?? '', /filter_chains/);
      // A fixed version is accepted and the error state goes.
      cp.snapshot.setJson(LISTENER, 'broken', tcpListener('broken', 0, 'backend'));
      await until(() => h.manager.dumpState().activeListeners.has('broken'), 'the fixed listener');
      assert.equal(h.manager.dumpState().listenerErrors.has('broken'), false);
      // A listener failing PGV validation inside a typed_config (empty HCM stat_prefix) is named too.
      const since = cp.requests.length;
      cp.snapshot.setJson(LISTENER, 'pgv', rdsListener('pgv', 0, 'local_route', { statPrefix: '' }));
      const pgv = await cp.waitFor(() => cp.requests.slice(since).find((r) => r.request.type_url === TYPE_URL.listener && r.request.error_detail), 'the PGV NACK');
      assert.match(pgv.request.error_detail!.message, /listener 'pgv'.*stat_prefix/);
      assert.match(h.manager.dumpState().listenerErrors.get('pgv')?.details ?? '', /stat_prefix/);
    } finally {
      h.manager.close();
      await cp.close();
    }
  });

  test(`${mode}: a cluster gone from CDS is removed once no route names it; a bad ClusterLoadAssignment is NACKed`, async () => {
    const cp = await ControlPlane.start();
    seed(cp);
    cp.snapshot.setJson(CLUSTER, 'spare', edsCluster('spare'));
    cp.snapshot.setJson(CLA, 'spare', cla('spare', [10003]));
    const h = harness(cp, mode);
    try {
      await h.manager.start();
      assert.equal(h.gauge('cluster_manager.active_clusters'), 3);
      cp.snapshot.remove(TYPE_URL.cluster, 'spare');
      await until(() => h.pushes.some((u) => u.removeClusters?.includes('spare')), 'spare removed');
      assert.equal(h.counter('cluster_manager.cluster_removed'), 1);
      // backend is named by local_route: removed from CDS, it stays until the route changes.
      cp.snapshot.remove(TYPE_URL.cluster, 'backend');
      await until(() => h.counter('cluster_manager.cds.update_success') >= 3, 'the CDS update without backend');
      await h.manager.flushed();
      assert.ok(h.manager.dumpState().activeClusters.has('backend'), 'a referenced cluster is kept');
      assert.ok(!h.pushes.some((u) => u.removeClusters?.includes('backend')));
      cp.snapshot.setJson(ROUTE, 'local_route', { name: 'local_route', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] });
      await until(() => h.pushes.some((u) => u.removeClusters?.includes('backend')), 'backend removed once unreferenced');
      // A bad EDS resource (for a new cluster): NACK, the cluster stays warming.
      cp.snapshot.setJson(CLUSTER, 'other', edsCluster('other'));
      await until(() => h.gauge('cluster_manager.warming_clusters') === 1, 'other warming');
      cp.snapshot.setJson(CLA, 'other', { cluster_name: 'other', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'not-an-ip', port_value: 1 } } } }] }] });
      const nack = await cp.waitFor(() => cp.requestsFor(TYPE_URL.endpoint).find((r) => r.request.error_detail), 'an EDS NACK');
      assert.match(nack.request.error_detail!.message, /cluster_load_assignment 'other'/);
      assert.equal(h.counter('cluster.other.update_rejected'), 1);
      assert.equal(h.gauge('cluster_manager.warming_clusters'), 1);
      cp.snapshot.setJson(CLA, 'other', cla('other', [10004]));
      await until(() => h.gauge('cluster_manager.warming_clusters') === 0, 'other warmed');
      assert.ok(h.pushes.some((u) => u.clusters?.some((c) => c.cluster.name === 'other' && c.endpoints)));
      // An endpoint change of an active cluster is an `endpoints` update.
      cp.snapshot.setJson(CLA, 'other', cla('other', [10004, 10005]));
      await until(() => h.pushes.some((u) => u.endpoints?.some((e) => e.clusterName === 'other' && e.assignment.endpoints[0]?.lb_endpoints.length === 2)), 'endpoints update');
    } finally {
      h.manager.close();
      await cp.close();
    }
  });
}

test('a static cluster cannot be replaced by CDS (NACK)', async () => {
  const cp = await ControlPlane.start();
  cp.snapshot.setJson(CLUSTER, 'xds_cluster', { name: 'xds_cluster', type: 'STATIC', connect_timeout: '1s', load_assignment: cla('xds_cluster', [1]) });
  cp.snapshot.setJson(LISTENER, 'tcp', tcpListener('tcp', 0, 'xds_cluster'));
  const h = harness(cp, 'sotw');
  try {
    await h.manager.start();
    const nack = cp.requestsFor(TYPE_URL.cluster).find((r) => r.request.error_detail);
    assert.match(nack?.request.error_detail?.message ?? '', /static cluster/);
    assert.equal(h.counter('cluster_manager.cds.update_rejected'), 1);
  } finally {
    h.manager.close();
    await cp.close();
  }
});

test('per-type services (CDS delta, EDS/LDS/RDS SotW) without ADS', async () => {
  const cp = await ControlPlane.start();
  cp.snapshot.setJson(CLUSTER, 'backend', edsCluster('backend', apiSource('sotw')));
  cp.snapshot.setJson(CLA, 'backend', cla('backend', [10001]));
  cp.snapshot.setJson(LISTENER, 'http', rdsListener('http', 0, 'local_route', { source: apiSource('sotw') }));
  cp.snapshot.setJson(ROUTE, 'local_route', routeConfig('local_route', 'backend'));
  const b = adsBootstrap(cp, 'sotw') as { dynamic_resources: Record<string, unknown> };
  b.dynamic_resources = { cds_config: apiSource('delta'), lds_config: apiSource('sotw') };
  const config = staticConfig(b);
  const stats = new StatsStore();
  const pushes: XdsWorkerUpdate[] = [];
  const manager = new XdsManager({ config, plan: config.dynamic!, stats, push: async (u) => void pushes.push(u), drainTimeMs: 100, workers: 1 });
  try {
    await manager.start();
    assert.ok(pushes.some((u) => u.listeners?.some((l) => l.name === 'http')));
    const methods = new Set(cp.requests.map((r) => r.method));
    for (const m of ['DeltaClusters', 'StreamEndpoints', 'StreamListeners', 'StreamRoutes']) assert.ok(methods.has(m), `${m} in ${[...methods].join(', ')}`);
    assert.ok(!methods.has('StreamAggregatedResources') && !methods.has('DeltaAggregatedResources'));
  } finally {
    manager.close();
    await cp.close();
  }
});

test('filesystem CDS/LDS (path_config_source, watched_directory): a change to the LDS file applies', async () => {
  const dir = tempDir();
  const cds = join(dir, 'cds.yaml');
  const lds = join(dir, 'lds.yaml');
  const response = (typeUrl: string, version: string, resources: object[]): string => JSON.stringify({ version_info: version, resources: resources.map((r) => ({ '@type': typeUrl, ...r })) });
  writeFileSync(cds, response(TYPE_URL.cluster, '1', [{ name: 'static_backend', type: 'STATIC', connect_timeout: '1s', load_assignment: cla('static_backend', [10001]) }]));
  writeFileSync(lds, response(TYPE_URL.listener, '1', [tcpListener('tcp', 0, 'static_backend')]));
  const config = staticConfig({
    dynamic_resources: { cds_config: { path_config_source: { path: cds, watched_directory: { path: dir } } }, lds_config: { path_config_source: { path: lds, watched_directory: { path: dir } } } },
  });
  const stats = new StatsStore();
  const pushes: XdsWorkerUpdate[] = [];
  const manager = new XdsManager({ config, plan: config.dynamic!, stats, push: async (u) => void pushes.push(u), drainTimeMs: 100, workers: 1 });
  try {
    await manager.start();
    assert.ok(pushes.some((u) => u.clusters?.some((c) => c.cluster.name === 'static_backend')));
    assert.ok(pushes.some((u) => u.listeners?.some((l) => l.name === 'tcp')));
    writeFileSync(lds + '.tmp', response(TYPE_URL.listener, '2', [tcpListener('tcp2', 0, 'static_backend')]));
    renameSync(lds + '.tmp', lds);
    await until(() => pushes.some((u) => u.removeListeners?.includes('tcp')) && pushes.some((u) => u.listeners?.some((l) => l.name === 'tcp2')), 'the LDS file change');
    assert.equal(stats.snapshot().counters['listener_manager.lds.update_success'], 2);
    assert.equal(manager.dumpState().ldsVersion, '2');
  } finally {
    manager.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a static listener with rds over ADS: its route configuration is subscribed and pushed at start', async () => {
  const cp = await ControlPlane.start();
  cp.snapshot.setJson(CLUSTER, 'backend', { name: 'backend', type: 'STATIC', connect_timeout: '1s', load_assignment: cla('backend', [10001]) });
  cp.snapshot.setJson(ROUTE, 'static_route', routeConfig('static_route', 'backend'));
  const b = adsBootstrap(cp, 'delta', undefined, { listeners: [rdsListener('static_http', 0, 'static_route', { statPrefix: 'static' })] }) as { dynamic_resources: Record<string, unknown> };
  delete b.dynamic_resources['lds_config'];
  const config = staticConfig(b);
  assert.equal(config.staticRds.length, 1);
  const stats = new StatsStore();
  const pushes: XdsWorkerUpdate[] = [];
  const manager = new XdsManager({ config, plan: config.dynamic!, stats, push: async (u) => void pushes.push(u), drainTimeMs: 100, workers: 1 });
  try {
    await manager.start();
    assert.ok(pushes.some((u) => u.routes?.some((r) => r.name === 'static_route')));
    assert.equal(stats.snapshot().counters['http.static.rds.static_route.update_success'], 1);
  } finally {
    manager.close();
    await cp.close();
  }
});
