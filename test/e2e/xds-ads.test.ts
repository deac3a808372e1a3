// xDS over ADS end to end, through the real legate process and the test control plane, for
// state-of-the-world (api_type GRPC) and delta (DELTA_GRPC), over TCP and over a Unix socket:
// the full scenario list for SotW over TCP and delta over a Unix socket, a smoke for the other
// two combinations. Assertions are what an Envoy user sees: traffic, the requests the control
// plane received (node, ACK/NACK, nonces, initial_resource_versions), Envoy's stat names and
// /config_dump.

import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { ControlPlane, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, asTypeUrl, type RecordedRequest } from '../helpers/xds/control-plane.ts';
import {
  NODE,
  activeClusterNames,
  adsBootstrap,
  bodyOr,
  cla,
  configDump,
  dynamicListener,
  echoUpstream,
  edsCluster,
  eventually,
  freePort,
  get,
  namedUpstream,
  rdsListener,
  routeConfig,
  tcpListener,
  type Mode,
  type NamedUpstream,
  type Transport,
} from '../helpers/xds/e2e.ts';
import { tempDir } from '../xds-client/helpers.ts';

const dir = tempDir('legate-e2e-xds-');
after(() => rmSync(dir, { recursive: true, force: true }));

interface Env {
  readonly mode: Mode;
  readonly cp: ControlPlane;
  readonly legate: Legate;
  /** Upstreams a, b, c answer with their name. */
  readonly up: Record<'a' | 'b' | 'c', NamedUpstream>;
  readonly httpPort: number;
  /** tcp_proxy listener port (0 without `tcp`). */
  readonly tcpPort: number;
  stats(): Promise<Record<string, number>>;
}

let seq = 0;

/**
 * v1: clusters backend (EDS → a) and other (EDS → b); listener `http` on a fixed port with RDS
 * `routes` → backend; with `tcp`, a tcp_proxy listener `tcp` to EDS cluster tcp_backend (echo).
 * Resolves once traffic flows through `http`.
 */
async function setup(t: TestContext, mode: Mode, transport: Transport, opts: { tcp?: boolean; args?: string[] } = {}): Promise<Env> {
  const socketPath = transport === 'uds' ? join(dir, `cp-${++seq}.sock`) : undefined;
  const cp = await ControlPlane.start(socketPath ? { socketPath } : {});
  t.after(() => cp.close());
  const up = { a: await namedUpstream('a'), b: await namedUpstream('b'), c: await namedUpstream('c') };
  t.after(() => Promise.all(Object.values(up).map((u) => u.close())));
  const httpPort = await freePort();
  let tcpPort = 0;
  let echoPort = 0;
  if (opts.tcp) {
    const echo = await echoUpstream('echo');
    t.after(() => echo.close());
    echoPort = echo.port;
    tcpPort = await freePort();
  }
  cp.update((s) => {
    s.setJson(CLUSTER_TYPE, 'backend', edsCluster('backend'));
    s.setJson(CLUSTER_TYPE, 'other', edsCluster('other'));
    s.setJson(ENDPOINT_TYPE, 'backend', cla('backend', [up.a.port]));
    s.setJson(ENDPOINT_TYPE, 'other', cla('other', [up.b.port]));
    s.setJson(LISTENER_TYPE, 'http', rdsListener('http', httpPort, 'routes'));
    s.setJson(ROUTE_TYPE, 'routes', routeConfig('routes', 'backend'));
    if (opts.tcp) {
      s.setJson(CLUSTER_TYPE, 'tcp_backend', edsCluster('tcp_backend'));
      s.setJson(ENDPOINT_TYPE, 'tcp_backend', cla('tcp_backend', [echoPort]));
      s.setJson(LISTENER_TYPE, 'tcp', tcpListener('tcp', tcpPort, 'tcp_backend', 'tcp_v1'));
    }
  }, 'v1');
  const legate = await startLegate(adsBootstrap(cp, mode, socketPath), { args: opts.args });
  t.after(() => legate.stop());
  await eventually(async () => (await bodyOr(httpPort)) === 'a', `traffic through the xDS listener\n${legate.stderr()}`);
  return { mode, cp, legate, up, httpPort, tcpPort, stats: () => legate.stats() };
}

/** Waits until `n` consecutive GETs answer `want` (after a change: the first may still be old). */
async function settlesOn(env: Env, want: string, n = 10): Promise<void> {
  await eventually(async () => (await bodyOr(env.httpPort)) === want, `traffic to ${want}`);
  for (let i = 0; i < n; i++) assert.equal((await get(env.httpPort)).body, want, `request ${i} after the change`);
}

async function statAtLeast(env: Env, name: string, min: number): Promise<number> {
  let last: number | undefined;
  return eventually(async () => {
    const v = (last = (await env.stats())[name]);
    return v !== undefined && v >= min ? v : undefined;
  }, () => `stat ${name} >= ${min} (last ${String(last)})`);
}

async function statEquals(env: Env, name: string, want: number): Promise<void> {
  let last: number | undefined;
  await eventually(async () => (last = (await env.stats())[name]) === want, () => `stat ${name} == ${want} (last ${String(last)})`);
}

const firstOfStream = (cp: ControlPlane, r: RecordedRequest): RecordedRequest => cp.requests.find((x) => x.stream === r.stream)!;

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

/** A GET whose response headers and first part arrived; resolves `done` with the whole reply. */
function startSlowRequest(port: number): Promise<{ done: Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> }> {
  return new Promise((resolveStarted, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      let started = false;
      const done = new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, rej) => {
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', rej);
        res.on('aborted', () => rej(new Error(`aborted after ${JSON.stringify(body)}`)));
      });
      done.catch(() => undefined);
      res.on('data', (d: string) => {
        body += d;
        if (!started && body.includes('part1;')) {
          started = true;
          resolveStarted({ done });
        }
      });
    });
    req.on('error', reject);
  });
}

/** A TCP connection through the tcp_proxy listener; say(x) resolves with the echo of x. */
async function tcpClient(port: number): Promise<{ say(s: string): Promise<string>; end(): Promise<void>; closed: Promise<boolean> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => {
    sock.once('connect', r);
    sock.once('error', j);
  });
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (buf += d));
  sock.on('error', () => undefined);
  const closed = new Promise<boolean>((r) => sock.on('close', (hadError) => r(hadError)));
  return {
    async say(s) {
      buf = '';
      sock.write(s);
      return eventually(() => (buf.length >= `echo:${s}`.length ? buf : undefined), `the echo of ${s}`);
    },
    async end() {
      const ended = new Promise<void>((r) => sock.once('end', r));
      sock.end();
      await ended;
    },
    closed,
  };
}

async function listenerReplaced(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  // A drain time longer than the test: the old connections must finish on their own.
  const env = await setup(t, mode, transport, { tcp: true, args: ['--drain-time-s', '60'] });
  const { cp } = env;
  const slow = await startSlowRequest(env.httpPort);
  const conn = await tcpClient(env.tcpPort);
  assert.equal(await conn.say('hello'), 'echo:hello');
  // Replace both listeners (same addresses): http now takes routes_v2 → other; tcp has a new stat prefix.
  cp.update((s) => {
    s.setJson(LISTENER_TYPE, 'http', rdsListener('http', env.httpPort, 'routes_v2', { statPrefix: 'ingress_v2' }));
    s.setJson(ROUTE_TYPE, 'routes_v2', routeConfig('routes_v2', 'other'));
    s.setJson(LISTENER_TYPE, 'tcp', tcpListener('tcp', env.tcpPort, 'tcp_backend', 'tcp_v2'));
  }, 'v2');
  await cp.ack(LISTENER_TYPE, 'v2');
  await settlesOn(env, 'b', 3);
  // The old listeners drain (for --drain-time-s) while their connections are open.
  await statAtLeast(env, 'listener_manager.total_listeners_draining', 1);
  // The established TCP connection still carries data both ways, and a new one goes to the new listener.
  assert.equal(await conn.say('again'), 'echo:again');
  const conn2 = await tcpClient(env.tcpPort);
  assert.equal(await conn2.say('new'), 'echo:new');
  await conn2.end();
  await statAtLeast(env, 'tcp.tcp_v2.downstream_cx_total', 1);
  // The long request completes on the old listener's config (cluster backend → a).
  env.up.a.release();
  const r = await slow.done;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'a part1;a part2');
  await conn.end();
  assert.equal(await conn.closed, false, 'the old TCP connection closed cleanly');
  await statAtLeast(env, 'listener_manager.listener_modified', 2);
  await statAtLeast(env, 'http.ingress_v2.downstream_rq_total', 1);
}

async function nackKeepsOldConfig(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  const { cp, legate } = env;
  // A cluster failing validation (connect_timeout must be > 0s).
  let since = cp.requests.length;
  cp.set(CLUSTER_TYPE, 'bad_cluster', { ...edsCluster('bad_cluster'), connect_timeout: '0s' }, 'v2');
  const cdsNack = await cp.nack(CLUSTER_TYPE, since);
  const cdsMsg = cdsNack.request.error_detail?.message ?? '';
  assert.match(cdsMsg, /connect_timeout/, 'error_detail names the field');
  if (!cdsNack.delta) assert.equal(cdsNack.request.version_info, 'v1', 'a NACK carries the last accepted version');
  assert.ok(cdsNack.request.response_nonce, 'a NACK echoes the nonce');
  await statAtLeast(env, 'cluster_manager.cds.update_rejected', 1);
  for (let i = 0; i < 5; i++) assert.equal((await get(env.httpPort)).body, 'a');
  // A listener failing validation (stat_prefix must not be empty): NACK, error_state in /config_dump.
  since = cp.requests.length;
  const badPort = await freePort();
  cp.set(LISTENER_TYPE, 'bad_listener', rdsListener('bad_listener', badPort, 'routes', { statPrefix: '' }), 'v3');
  const ldsNack = await cp.nack(LISTENER_TYPE, since);
  const ldsMsg = ldsNack.request.error_detail?.message ?? '';
  assert.match(ldsMsg, /stat_prefix/);
  await statAtLeast(env, 'listener_manager.lds.update_rejected', 1);
  // Envoy validates the HCM when it builds the listener, so /config_dump shows error_state for it.
  const bad = await dynamicListener(legate.admin, 'bad_listener');
  assert.equal((await dynamicListener(legate.admin, 'http'))?.['error_state'] ?? undefined, undefined, 'the good listener has no error');
  for (let i = 0; i < 5; i++) assert.equal((await get(env.httpPort)).body, 'a');
  // The control plane fixes it: the next version is ACKed and applies.
  cp.update((s) => {
    s.remove(CLUSTER_TYPE, 'bad_cluster');
    s.remove(LISTENER_TYPE, 'bad_listener');
    s.setJson(ENDPOINT_TYPE, 'backend', cla('backend', [env.up.c.port]));
  }, 'v4');
  await cp.ack(CLUSTER_TYPE, 'v4');
  await cp.ack(LISTENER_TYPE, 'v4');
  await settlesOn(env, 'c');
  assert.equal((await env.stats())['cluster_manager.cds.update_rejected'], 1);
  // Checked last so the behaviour above is proven either way: Envoy names the rejected resource
  // ("Error adding/updating listener(s) bad_listener: …") and keeps error_state until it is fixed.
  const errorState = bad?.['error_state'] as { details?: string; last_update_attempt?: string; failed_configuration?: unknown } | undefined;
  assert.match(errorState?.details ?? '', /stat_prefix/, `dynamic_listeners[bad_listener].error_state: ${JSON.stringify(bad)}`);
  assert.ok(errorState?.last_update_attempt, 'error_state.last_update_attempt');
  assert.match(cdsMsg, /bad_cluster/, 'error_detail names the cluster');
  assert.match(ldsMsg, /bad_listener/, 'error_detail names the listener');
}

async function controlPlaneRestart(t: TestContext, mode: Mode, transport: Transport): Promise<void> {
  const env = await setup(t, mode, transport);
  const { cp } = env;
  await cp.ack(ROUTE_TYPE, 'v1');
  await cp.ack(ENDPOINT_TYPE, 'v1');
  const lastStream = Math.max(...cp.streamIds());
  cp.stop();
  await statEquals(env, 'control_plane.connected_state', 0);
  // Traffic keeps flowing on the last config while the control plane is away.
  for (let i = 0; i < 5; i++) assert.equal((await get(env.httpPort)).body, 'a');
  cp.set(ENDPOINT_TYPE, 'backend', cla('backend', [env.up.c.port]), 'v2');
  await cp.listen();
  const cds = await cp.nextStreamRequest(CLUSTER_TYPE, lastStream, 60_000);
  const lds = await cp.nextStreamRequest(LISTENER_TYPE, lastStream, 60_000);
  assert.equal(firstOfStream(cp, cds).request.node?.id, NODE.id, 'node on the first request of the new stream');
  if (cds.delta && lds.delta) {
    // The versions the client accepted: the per-resource versions this control plane sent.
    const v = (type: string, name: string): string => cp.snapshot.get(asTypeUrl(type), name)!.version;
    assert.deepEqual(cds.request.initial_resource_versions, { backend: v(CLUSTER_TYPE, 'backend'), other: v(CLUSTER_TYPE, 'other') });
    assert.deepEqual(lds.request.initial_resource_versions, { http: v(LISTENER_TYPE, 'http') });
  } else if (!cds.delta && !lds.delta) {
    assert.equal(cds.request.version_info, 'v1', 'SotW resubscribes with the accepted version');
    assert.equal(lds.request.version_info, 'v1');
  }
  await cp.ack(ENDPOINT_TYPE, 'v2');
  await settlesOn(env, 'c');
  await statEquals(env, 'control_plane.connected_state', 1);
  // And later changes keep applying on the new stream.
  cp.set(ROUTE_TYPE, 'routes', routeConfig('routes', 'other'), 'v3');
  await cp.ack(ROUTE_TYPE, 'v3');
  await settlesOn(env, 'b');
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

const FULL: Array<[Mode, Transport]> = [
  ['sotw', 'tcp'],
  ['delta', 'uds'],
];
const SMOKE: Array<[Mode, Transport]> = [
  ['sotw', 'uds'],
  ['delta', 'tcp'],
];
const T = { timeout: 120_000 };

for (const [mode, transport] of FULL) {
  const at = `${mode} ADS over ${transport === 'tcp' ? 'TCP' : 'a Unix socket'}`;
  test(`${at}: initial config served (node, ACKs, wildcard/named subscriptions, stats, /config_dump) and traffic flows`, T, (t) => initialConfig(t, mode, transport));
  test(`${at}: an endpoint added and removed shifts traffic`, T, (t) => endpointsShift(t, mode, transport));
  test(`${at}: a weighted split changed by RDS applies to the next request`, T, (t) => weightedSplit(t, mode, transport));
  test(`${at}: listeners replaced while a long HTTP request and a tcp_proxy connection are in flight — both complete`, T, (t) => listenerReplaced(t, mode, transport));
  test(`${at}: a bad cluster and a bad listener are NACKed with error_detail; traffic keeps the old config`, T, (t) => nackKeepsOldConfig(t, mode, transport));
  test(`${at}: control plane killed and restarted — traffic flows, the stream resubscribes, a new config applies`, T, (t) => controlPlaneRestart(t, mode, transport));
  test(`${at}: a cluster warms until its endpoints arrive, a listener until its routes arrive`, T, (t) => warming(t, mode, transport));
  test(`${at}: wildcard deletion — a cluster or listener missing from CDS/LDS is removed once unused`, T, (t) => wildcardDeletion(t, mode, transport));
}

for (const [mode, transport] of SMOKE) {
  const at = `${mode} ADS over ${transport === 'tcp' ? 'TCP' : 'a Unix socket'}`;
  test(`${at} (smoke): initial config served, an endpoint change shifts traffic`, T, async (t) => {
    await endpointsShift(t, mode, transport);
  });
}
