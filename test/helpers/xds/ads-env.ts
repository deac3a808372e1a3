// The ADS end-to-end scenario shared by test/e2e/xds-ads*.test.ts: a real legate fed v1 config by
// the test control plane, the mode × transport matrix, and waits on traffic and stats.

import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startLegate, type Legate } from '../legate.ts';
import { ControlPlane, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from './control-plane.ts';
import { adsBootstrap, bodyOr, cla, echoUpstream, edsCluster, eventually, freePort, get, namedUpstream, rdsListener, routeConfig, tcpListener, type Mode, type NamedUpstream, type Transport } from './e2e.ts';
import { tempDir } from '../../xds-client/helpers.ts';

/**
 * State-of-the-world (api_type GRPC) and delta (DELTA_GRPC), over TCP and over a Unix socket: the
 * full scenario list for SotW over TCP and delta over a Unix socket, a smoke for the other two.
 */
export const FULL: Array<[Mode, Transport]> = [
  ['sotw', 'tcp'],
  ['delta', 'uds'],
];
export const SMOKE: Array<[Mode, Transport]> = [
  ['sotw', 'uds'],
  ['delta', 'tcp'],
];
export const T = { timeout: 120_000 };

/** The test-name prefix for a combination, e.g. `sotw ADS over TCP`. */
export function adsLabel(mode: Mode, transport: Transport): string {
  return `${mode} ADS over ${transport === 'tcp' ? 'TCP' : 'a Unix socket'}`;
}

export interface Env {
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

/**
 * v1: clusters backend (EDS → a) and other (EDS → b); listener `http` on a fixed port with RDS
 * `routes` → backend; with `tcp`, a tcp_proxy listener `tcp` to EDS cluster tcp_backend (echo).
 * Resolves once traffic flows through `http`.
 */
export async function setup(t: TestContext, mode: Mode, transport: Transport, opts: { tcp?: boolean; args?: string[] } = {}): Promise<Env> {
  let socketPath: string | undefined;
  if (transport === 'uds') {
    const dir = tempDir('legate-e2e-xds-');
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    socketPath = join(dir, 'cp.sock');
  }
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
  await eventually(async () => (await bodyOr(httpPort)) === 'a', () => `traffic through the xDS listener\n${legate.stderr()}`);
  return { mode, cp, legate, up, httpPort, tcpPort, stats: () => legate.stats() };
}

/** Waits until `n` consecutive GETs answer `want` (after a change: the first may still be old). */
export async function settlesOn(env: Env, want: string, n = 10): Promise<void> {
  await eventually(async () => (await bodyOr(env.httpPort)) === want, `traffic to ${want}`);
  for (let i = 0; i < n; i++) assert.equal((await get(env.httpPort)).body, want, `request ${i} after the change`);
}

export async function statAtLeast(env: Env, name: string, min: number): Promise<number> {
  let last: number | undefined;
  return eventually(async () => {
    const v = (last = (await env.stats())[name]);
    return v !== undefined && v >= min ? v : undefined;
  }, () => `stat ${name} >= ${min} (last ${String(last)})`);
}

export async function statEquals(env: Env, name: string, want: number): Promise<void> {
  let last: number | undefined;
  await eventually(async () => (last = (await env.stats())[name]) === want, () => `stat ${name} == ${want} (last ${String(last)})`);
}
