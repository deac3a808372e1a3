// xDS over ADS end to end, config changing under live traffic: listeners replaced mid-request,
// bad resources NACKed while the last good config serves, and the control plane restarting.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { type ControlPlane, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, asTypeUrl, type RecordedRequest } from '../helpers/xds/control-plane.ts';
import { NODE, cla, dynamicListener, edsCluster, eventually, freePort, get, rdsListener, routeConfig, tcpListener, type Mode, type Transport } from '../helpers/xds/e2e.ts';
import { FULL, T, adsLabel, settlesOn, setup, statAtLeast, statEquals } from '../helpers/xds/ads-env.ts';

const firstOfStream = (cp: ControlPlane, r: RecordedRequest): RecordedRequest => cp.requests.find((x) => x.stream === r.stream)!;

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

for (const [mode, transport] of FULL) {
  const at = adsLabel(mode, transport);
  test(`${at}: listeners replaced while a long HTTP request and a tcp_proxy connection are in flight — both complete`, T, (t) => listenerReplaced(t, mode, transport));
  test(`${at}: a bad cluster and a bad listener are NACKed with error_detail; traffic keeps the old config`, T, (t) => nackKeepsOldConfig(t, mode, transport));
  test(`${at}: control plane killed and restarted — traffic flows, the stream resubscribes, a new config applies`, T, (t) => controlPlaneRestart(t, mode, transport));
}
