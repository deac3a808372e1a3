// Test harness for one worker's dynamic config, in-process: a DynamicConfig over an empty cluster
// manager, fed XdsWorkerUpdates built from plain JSON (decoded with decodeJson as the main thread
// would send them), real upstreams on 127.0.0.1, and small helpers for listeners, routes and stats.

import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../../src/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { Listener__Output } from '../../../src/generated/envoy/config/listener/v3/Listener.ts';
import type { RouteConfiguration__Output } from '../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry } from '../../../src/filters/registry.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { createClusterManager, type DynamicClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { DynamicConfig, type ApplyResult } from '../../../src/proxy/worker/dynamic-config.ts';
import type { XdsWorkerUpdate } from '../../../src/proxy/worker/messages.ts';
import { HCM_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE, socketAddress } from '../../helpers/config.ts';
import { testRuntime } from '../../helpers/runtime-context.ts';

registerBuiltins(registry);

/** An XdsWorkerUpdate with every resource as plain JSON (as a user writes it in YAML). */
export interface JsonUpdate {
  routes?: object[];
  clusters?: Array<{ cluster: object; endpoints?: object }>;
  endpoints?: Array<{ clusterName: string; assignment: object }>;
  listeners?: object[];
  ports?: Record<string, number>;
  removeListeners?: string[];
  removeClusters?: string[];
  removeRoutes?: string[];
}

function decode<T>(type: string, json: object): T {
  const r = decodeJson<T>(type, json, { path: type });
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

export function toUpdate(u: JsonUpdate): XdsWorkerUpdate {
  return {
    ...(u.routes ? { routes: u.routes.map((r) => decode<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', r)) } : {}),
    ...(u.clusters
      ? {
          clusters: u.clusters.map((c) => ({
            cluster: decode<Cluster__Output>('envoy.config.cluster.v3.Cluster', c.cluster),
            ...(c.endpoints ? { endpoints: decode<ClusterLoadAssignment__Output>('envoy.config.endpoint.v3.ClusterLoadAssignment', c.endpoints) } : {}),
          })),
        }
      : {}),
    ...(u.endpoints ? { endpoints: u.endpoints.map((e) => ({ clusterName: e.clusterName, assignment: decode<ClusterLoadAssignment__Output>('envoy.config.endpoint.v3.ClusterLoadAssignment', e.assignment) })) } : {}),
    ...(u.listeners ? { listeners: u.listeners.map((l) => decode<Listener__Output>('envoy.config.listener.v3.Listener', l)) } : {}),
    ...(u.ports ? { ports: u.ports } : {}),
    ...(u.removeListeners ? { removeListeners: u.removeListeners } : {}),
    ...(u.removeClusters ? { removeClusters: u.removeClusters } : {}),
    ...(u.removeRoutes ? { removeRoutes: u.removeRoutes } : {}),
  };
}

export interface WorkerHarness {
  readonly dyn: DynamicConfig;
  readonly cm: DynamicClusterManager;
  readonly stats: StatsStore;
  /** Applies an update; throws when the worker reports errors. */
  apply(u: JsonUpdate): Promise<ApplyResult>;
  /** Applies an update and returns whatever it reports (errors included). */
  applyRaw(u: JsonUpdate): Promise<ApplyResult>;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

export function startWorker(opts: { drainTimeMs?: number } = {}): WorkerHarness {
  const stats = new StatsStore();
  const rt = testRuntime();
  const cm = createClusterManager([], { stats, workerId: 0, shared: rt.shared, secrets: rt.secrets });
  const dyn = new DynamicConfig({ rt: { stats, clusterManager: cm, workerId: 0, ...rt }, clusterManager: cm, staticSecrets: new Map(), drainTimeMs: opts.drainTimeMs ?? 60_000 });
  const applyRaw = (u: JsonUpdate): Promise<ApplyResult> => dyn.apply(toUpdate(u));
  return {
    dyn,
    cm,
    stats,
    applyRaw,
    async apply(u) {
      const r = await applyRaw(u);
      if (r.errors.length > 0) throw new Error(r.errors.join('\n'));
      return r;
    },
    counter: (n) => stats.snapshot().counters[n] ?? 0,
    gauge: (n) => stats.snapshot().gauges[n] ?? 0,
    async close() {
      await dyn.closeAll();
      await cm.close();
    },
  };
}

// ---- resources as JSON ----

export const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } };

/** An HCM network filter with `rds` naming `routeConfigName`. */
export function rdsHcm(routeConfigName: string, statPrefix = 'ingress_http'): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: { '@type': HCM_TYPE, stat_prefix: statPrefix, rds: { route_config_name: routeConfigName, config_source: { ads: {} } }, http_filters: [ROUTER] },
  };
}

/** An HCM network filter with an inline route_config. */
export function inlineHcm(routeConfig: object, statPrefix = 'ingress_http'): object {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: { '@type': HCM_TYPE, stat_prefix: statPrefix, route_config: routeConfig, http_filters: [ROUTER] } };
}

export function tcpProxy(clusterName: string): object {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: clusterName } };
}

export function listener(name: string, filters: object[], extra: Record<string, unknown> = {}, port = 0): object {
  return { name, address: socketAddress(port), filter_chains: [{ filters }], ...extra };
}

/** A RouteConfiguration with one catch-all virtual host. */
export function routeConfig(name: string, routes: object[]): object {
  return { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] };
}

export function toCluster(cluster: string, prefix = '/'): object {
  return { match: { prefix }, route: { cluster } };
}

export function directResponse(body: string, prefix = '/'): object {
  return { match: { prefix }, direct_response: { status: 200, body: { inline_string: body } } };
}

export function staticCluster(name: string, ports: number[]): object {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: socketAddress(p) } })) }] } };
}

export function edsCluster(name: string): object {
  return { name, type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } };
}

export function assignment(name: string, ports: number[]): object {
  return { cluster_name: name, endpoints: ports.length ? [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: socketAddress(p) } })) }] : [] };
}

// ---- upstreams and clients ----

/**
 * An HTTP/1.1 upstream answering `<name>` for every request; `/slow` waits until release() is
 * called; `/health` answers 200, or 503 while `healthy` is false (health checks do not count as hits).
 */
export interface NamedUpstream {
  readonly port: number;
  readonly name: string;
  healthy: boolean;
  /** Requests received (including slow ones still waiting). */
  readonly hits: number;
  /** Slow requests waiting. */
  readonly waiting: number;
  release(): void;
  close(): Promise<void>;
}

export async function namedUpstream(name: string): Promise<NamedUpstream> {
  let hits = 0;
  const slow: Array<() => void> = [];
  let healthy = true;
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/health') {
      res.statusCode = healthy ? 200 : 503;
      return void res.end();
    }
    hits++;
    const answer = (): void => void res.end(name);
    if (req.url === '/slow') slow.push(answer);
    else answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    name,
    get hits() {
      return hits;
    },
    get healthy() {
      return healthy;
    },
    set healthy(v: boolean) {
      healthy = v;
    },
    get waiting() {
      return slow.length;
    },
    release: () => {
      for (const f of slow.splice(0)) f();
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP upstream echoing every byte back. */
export function echoUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  return tcpUpstream((s) => s.pipe(s));
}

/** A TCP upstream on 127.0.0.1 running `serve` on each connection; close() destroys what is still open. */
export async function tcpUpstream(serve: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    serve(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Polls `cond` every 10 ms until it holds (a behavioural wait; the test's own timeout bounds it). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

export { freePort } from '../../helpers/free-port.ts';
