// xDS over ADS end to end, config delivery: initial config (node, ACKs, subscriptions, stats,
// /config_dump), EDS and RDS changes, warming, and wildcard deletion, through the real legate process.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../helpers/xds/control-plane.ts';
import { NODE, activeClusterNames, bodyOr, cla, configDump, dynamicListener, edsCluster, eventually, freePort, get, rdsListener, routeConfig, type Mode, type Transport } from '../helpers/xds/e2e.ts';
import { FULL, SMOKE, T, adsLabel, settlesOn, setup, statAtLeast, statEquals } from '../helpers/xds/ads-env.ts';

async function initialConfig(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  const { cp, legate } = env;
  // Every type ACKed at v1, echoing the nonce of the response (SotW: and its version_info).
  for (const type of [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]) {
    const ack = await cp.ack(type, 'v1');
    const sent = cp.responses.find((r) => r.nonce === ack.request.response_nonce)!;
    assert.equal(sent.typeUrl, ack.request.type_url);
    if (!ack.delta) assert.equal(ack.request.version_info, 'v1');
  }
  // Node identity on the first request of the stream only (set_node_on_first_message_only).
  const first = cp.requests[0]!;
  assert.equal(first.method, mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources');
  assert.equal(first.request.node?.id, NODE.id);
  assert.equal(first.request.node?.cluster, NODE.cluster);
  assert.equal(first.request.node?.locality?.zone, 'z1');
  assert.ok(JSON.stringify(first.request.node?.metadata).includes('1.24.0'), 'node metadata');
  for (const r of cp.requests.filter((x) => x.stream === first.stream).slice(1)) assert.equal(r.request.node ?? null, null, 'node only on the first request');
  // Subscriptions: LDS/CDS wildcard, EDS/RDS by name.
  const edsNames = new Set(cp.requestsFor(ENDPOINT_TYPE).flatMap((r) => (r.delta ? r.request.resource_names_subscribe : r.request.resource_names)));
  assert.deepEqual([...edsNames].sort(), ['backend', 'other']);
  const rdsNames = new Set(cp.requestsFor(ROUTE_TYPE).flatMap((r) => (r.delta ? r.request.resource_names_subscribe : r.request.resource_names)));
  assert.deepEqual([...rdsNames], ['routes']);
  for (const type of [LISTENER_TYPE, CLUSTER_TYPE]) {
    const r = cp.requestsFor(type)[0]!;
    const names = r.delta ? r.request.resource_names_subscribe : r.request.resource_names;
    assert.ok(names.length === 0 || (names.length === 1 && names[0] === '*'), `${type} is a wildcard subscription`);
  }
  // Envoy's stats.
  await statEquals(env, 'control_plane.connected_state', 1);
  await statAtLeast(env, 'cluster_manager.cds.update_success', 1);
  await statAtLeast(env, 'listener_manager.lds.update_success', 1);
  await statAtLeast(env, 'http.ingress_http.rds.routes.update_success', 1);
  await statAtLeast(env, 'cluster.backend.update_success', 1);
  await statEquals(env, 'cluster_manager.active_clusters', 3);
  await statEquals(env, 'cluster_manager.warming_clusters', 0);
  await statEquals(env, 'listener_manager.total_listeners_active', 1);
  await statEquals(env, 'cluster_manager.cds.update_rejected', 0);
  await statAtLeast(env, 'listener_manager.listener_added', 1);
  const stats = await env.stats();
  for (const name of ['cluster_manager.cds.update_attempt', 'listener_manager.lds.update_attempt', 'cluster_manager.cds.version', 'listener_manager.lds.version', 'control_plane.rate_limit_enforced', 'control_plane.pending_requests']) {
    assert.equal(typeof stats[name], 'number', `stat ${name}`);
  }
  assert.ok(stats['cluster_manager.cds.update_attempt']! >= 1);
  // /config_dump as Envoy shapes it.
  const l = await dynamicListener(legate.admin, 'http');
  const active = l?.['active_state'] as { version_info?: string; listener?: { name?: string }; last_updated?: string } | undefined;
  assert.equal(active?.listener?.name, 'http', JSON.stringify(l));
  assert.ok(active?.last_updated, 'active_state.last_updated');
  if (mode === 'sotw') assert.equal(active?.version_info, 'v1');
  else assert.ok(active?.version_info, 'a resource version');
  assert.deepEqual((await activeClusterNames(legate.admin)).sort(), ['backend', 'other']);
  const routes = await configDump(legate.admin, 'RoutesConfigDump');
  const dyn = (routes['dynamic_route_configs'] as Array<{ route_config?: { name?: string }; version_info?: string }> | undefined) ?? [];
  assert.deepEqual(dyn.map((r) => r.route_config?.name), ['routes']);
  const eds = await configDump(legate.admin, 'EndpointsConfigDump', '?include_eds');
  assert.ok(JSON.stringify(eds).includes(String(env.up.a.port)), 'EDS endpoints in /config_dump?include_eds');
}

async function endpointsShift(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  env.cp.set(ENDPOINT_TYPE, 'backend', cla('backend', [env.up.a.port, env.up.c.port]), 'v2');
  await env.cp.ack(ENDPOINT_TYPE, 'v2');
  await eventually(async () => (await bodyOr(env.httpPort)) === 'c', 'the added endpoint to get traffic');
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) seen.add((await get(env.httpPort)).body);
  assert.deepEqual([...seen].sort(), ['a', 'c'], 'round robin over both endpoints');
  env.cp.set(ENDPOINT_TYPE, 'backend', cla('backend', [env.up.c.port]), 'v3');
  await env.cp.ack(ENDPOINT_TYPE, 'v3');
  await settlesOn(env, 'c');
  await statAtLeast(env, 'cluster.backend.update_success', 3);
}

async function weightedSplit(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  env.cp.set(ROUTE_TYPE, 'routes', routeConfig('routes', { backend: 100 }), 'v2');
  await env.cp.ack(ROUTE_TYPE, 'v2');
  await settlesOn(env, 'a');
  env.cp.set(ROUTE_TYPE, 'routes', routeConfig('routes', { backend: 50, other: 50 }), 'v3');
  await env.cp.ack(ROUTE_TYPE, 'v3');
  // 50/50: within 60 requests both are hit (the chance of not is 2^-59).
  await eventually(async () => (await bodyOr(env.httpPort)) === 'b', 'the split to reach other');
  const seen = new Set<string>();
  for (let i = 0; i < 60 && seen.size < 2; i++) seen.add((await get(env.httpPort)).body);
  assert.deepEqual([...seen].sort(), ['a', 'b']);
  env.cp.set(ROUTE_TYPE, 'routes', routeConfig('routes', { other: 100 }), 'v4');
  await env.cp.ack(ROUTE_TYPE, 'v4');
  await settlesOn(env, 'b');
  await statAtLeast(env, 'http.ingress_http.rds.routes.update_success', 4);
}

async function wildcardDeletion(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  const { cp, legate } = env;
  const port2 = await freePort();
  cp.update((s) => {
    s.setJson(CLUSTER_TYPE, 'extra', edsCluster('extra'));
    s.setJson(ENDPOINT_TYPE, 'extra', cla('extra', [env.up.c.port]));
    s.setJson(LISTENER_TYPE, 'http2', rdsListener('http2', port2, 'routes'));
  }, 'v2');
  await cp.ack(CLUSTER_TYPE, 'v2');
  await eventually(async () => (await bodyOr(port2)) === 'a', 'the second listener');
  await eventually(async () => (await activeClusterNames(legate.admin)).includes('extra'), 'cluster extra active');
  // A keep-alive connection to http2, idle when the listener goes away.
  const idle = net.connect(port2, '127.0.0.1');
  idle.on('error', () => undefined);
  let idleReply = '';
  idle.on('data', (d: Buffer) => (idleReply += d.toString('latin1')));
  const idleClosed = new Promise<void>((r) => idle.on('close', () => r()));
  idle.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => idleReply.endsWith('\r\n\r\na'), 'a reply on the keep-alive connection');
  // An unused cluster and a listener missing from the next CDS/LDS responses are removed.
  cp.update((s) => {
    s.remove(CLUSTER_TYPE, 'extra');
    s.remove(LISTENER_TYPE, 'http2');
  }, 'v3');
  await cp.ack(CLUSTER_TYPE, 'v3');
  await cp.ack(LISTENER_TYPE, 'v3');
  if (mode === 'delta') {
    assert.ok(cp.responses.some((r) => r.removed.includes('extra')), 'delta: removed_resources carries extra');
    assert.ok(cp.responses.some((r) => r.removed.includes('http2')), 'delta: removed_resources carries http2');
  } else {
    const last = cp.responses.filter((r) => r.version === 'v3' && r.typeUrl.endsWith('.Cluster')).at(-1)!;
    assert.deepEqual([...last.names].sort(), ['backend', 'other'], 'SotW: the response simply omits extra');
  }
  await eventually(async () => !(await activeClusterNames(legate.admin)).includes('extra'), 'cluster extra removed');
  // …and its endpoints are no longer subscribed.
  await cp.waitFor(
    () => cp.requestsFor(ENDPOINT_TYPE).some((r) => (r.delta ? r.request.resource_names_unsubscribe.includes('extra') : r.request.resource_names.length > 0 && !r.request.resource_names.includes('extra') && r.request.resource_names.includes('backend'))),
    'EDS for extra unsubscribed',
  );
  await statEquals(env, 'cluster_manager.active_clusters', 3);
  await eventually(async () => (await bodyOr(port2)) === undefined, 'listener http2 closed');
  // Its connections are closed by the end of the drain time (2 s here).
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([idleClosed, new Promise((_, j) => (timer = setTimeout(() => j(new Error('the removed listener kept its connection past the drain time')), 30_000)))]);
  clearTimeout(timer);
  await statAtLeast(env, 'listener_manager.listener_removed', 1);
  // A cluster still routed to stays until the route moves away, then goes.
  cp.remove(CLUSTER_TYPE, 'backend', 'v4');
  await cp.ack(CLUSTER_TYPE, 'v4');
  for (let i = 0; i < 5; i++) assert.equal((await get(env.httpPort)).body, 'a', 'a removed cluster still in use keeps serving');
  cp.set(ROUTE_TYPE, 'routes', routeConfig('routes', 'other'), 'v5');
  await cp.ack(ROUTE_TYPE, 'v5');
  await settlesOn(env, 'b');
  await eventually(async () => !(await activeClusterNames(legate.admin)).includes('backend'), 'cluster backend removed once unused');
  await statEquals(env, 'cluster_manager.active_clusters', 2);
}

async function warming(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  const { cp, legate } = env;
  const port3 = await freePort();
  // A cluster without endpoints yet and a listener without its routes yet: both warm.
  cp.update((s) => {
    s.setJson(CLUSTER_TYPE, 'late', edsCluster('late'));
    s.setJson(LISTENER_TYPE, 'http3', rdsListener('http3', port3, 'routes3'));
  }, 'v2');
  await cp.ack(CLUSTER_TYPE, 'v2');
  await cp.ack(LISTENER_TYPE, 'v2');
  await statEquals(env, 'cluster_manager.warming_clusters', 1);
  await statEquals(env, 'listener_manager.total_listeners_warming', 1);
  const clusters = await configDump(legate.admin, 'ClustersConfigDump');
  const warmingClusters = ((clusters['dynamic_warming_clusters'] as Array<{ cluster?: { name?: string } }> | undefined) ?? []).map((c) => c.cluster?.name);
  assert.deepEqual(warmingClusters, ['late']);
  const l3 = await dynamicListener(legate.admin, 'http3');
  assert.ok(l3?.['warming_state'] && !l3['active_state'], `http3 is warming: ${JSON.stringify(l3)}`);
  assert.equal(await bodyOr(port3), undefined, 'a warming listener does not serve');
  assert.equal((await get(env.httpPort)).body, 'a', 'the active listener keeps serving');
  // Its routes and the cluster's endpoints arrive: both become active and traffic flows.
  cp.update((s) => {
    s.setJson(ENDPOINT_TYPE, 'late', cla('late', [env.up.c.port]));
    s.setJson(ROUTE_TYPE, 'routes3', routeConfig('routes3', 'late'));
  }, 'v3');
  await eventually(async () => (await bodyOr(port3)) === 'c', 'the warmed listener to serve the warmed cluster');
  await statEquals(env, 'cluster_manager.warming_clusters', 0);
  await statEquals(env, 'listener_manager.total_listeners_warming', 0);
  await statEquals(env, 'listener_manager.total_listeners_active', 2);
  assert.ok((await dynamicListener(legate.admin, 'http3'))?.['active_state']);
}

for (const [mode, transport] of FULL) {
  const at = adsLabel(mode, transport);
  test(`${at}: initial config served (node, ACKs, wildcard/named subscriptions, stats, /config_dump) and traffic flows`, T, (t) => initialConfig(t, mode, transport));
  test(`${at}: an endpoint added and removed shifts traffic`, T, (t) => endpointsShift(t, mode, transport));
  test(`${at}: a weighted split changed by RDS applies to the next request`, T, (t) => weightedSplit(t, mode, transport));
  test(`${at}: a cluster warms until its endpoints arrive, a listener until its routes arrive`, T, (t) => warming(t, mode, transport));
  test(`${at}: wildcard deletion — a cluster or listener missing from CDS/LDS is removed once unused`, T, (t) => wildcardDeletion(t, mode, transport));
}

for (const [mode, transport] of SMOKE) {
  const at = adsLabel(mode, transport);
  test(`${at} (smoke): initial config served, an endpoint change shifts traffic`, T, async (t) => {
    await endpointsShift(t, mode, transport);
  });
}
