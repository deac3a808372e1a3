// Test fixture for the xDS end-to-end tests: Envoy-shaped bootstraps that point legate at the
// test control plane (ADS SotW or delta, per-type services, or files; over TCP or a Unix socket),
// the dynamic resources those tests serve (listeners with RDS or tcp_proxy, EDS clusters,
// ClusterLoadAssignments, route configurations), named upstreams, and small traffic and admin
// readers (an HTTP GET through a listener, /config_dump sections, stats).

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HCM_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE, HTTP_OPTIONS_TYPE, socketAddress } from '../config.ts';
import type { ControlPlane } from './control-plane.ts';

export type Mode = 'sotw' | 'delta';
export type Transport = 'tcp' | 'uds';

export const NODE = { id: 'sidecar~127.0.0.1~e2e.default~default.svc.cluster.local', cluster: 'e2e-cluster', metadata: { ISTIO_VERSION: '1.24.0' }, locality: { region: 'r1', zone: 'z1' } };

/** The static cluster that reaches the control plane (h2c, over TCP or a `pipe`). */
export function xdsCluster(cp: ControlPlane, socketPath?: string): object {
  const address = socketPath ? { pipe: { path: socketPath } } : socketAddress(cp.port);
  return {
    name: 'xds_cluster',
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS_TYPE, explicit_http_config: { http2_protocol_options: {} } } },
    load_assignment: { cluster_name: 'xds_cluster', endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

/** A bootstrap with dynamic_resources over ADS (GRPC = SotW, DELTA_GRPC = delta), as Istio and go-control-plane users write it. */
export function adsBootstrap(cp: ControlPlane, mode: Mode, socketPath?: string, staticResources: { listeners?: object[]; clusters?: object[] } = {}): object {
  return {
    node: NODE,
    dynamic_resources: {
      ads_config: { api_type: mode === 'sotw' ? 'GRPC' : 'DELTA_GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds_cluster' } }], set_node_on_first_message_only: true },
      lds_config: { ads: {}, resource_api_version: 'V3' },
      cds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: { listeners: staticResources.listeners ?? [], clusters: [xdsCluster(cp, socketPath), ...(staticResources.clusters ?? [])] },
    admin: { address: socketAddress(0) },
  };
}

/** An api_config_source to the control plane's per-type services (no ADS). */
export function apiSource(mode: Mode): object {
  return { api_config_source: { api_type: mode === 'sotw' ? 'GRPC' : 'DELTA_GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds_cluster' } }] }, resource_api_version: 'V3' };
}

export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

/** A listener on 127.0.0.1:port whose HCM takes route config `routeName` from `source` (RDS). */
export function rdsListener(name: string, port: number, routeName: string, opts: { statPrefix?: string; source?: object } = {}): object {
  return {
    name,
    address: socketAddress(port),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: opts.statPrefix ?? 'ingress_http',
              rds: { route_config_name: routeName, config_source: opts.source ?? ADS_SOURCE },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
            },
          },
        ],
      },
    ],
  };
}

/** A tcp_proxy listener on 127.0.0.1:port to `cluster`. */
export function tcpListener(name: string, port: number, cluster: string, statPrefix = 'tcp'): object {
  return {
    name,
    address: socketAddress(port),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster } }] }],
  };
}

/** An EDS cluster whose endpoints come from `source` (ADS by default). */
export function edsCluster(name: string, source: object = ADS_SOURCE): object {
  return { name, type: 'EDS', connect_timeout: '1s', lb_policy: 'ROUND_ROBIN', eds_cluster_config: { eds_config: source } };
}

/** A ClusterLoadAssignment: 127.0.0.1 endpoints at `ports`. */
export function cla(cluster: string, ports: readonly number[]): object {
  return { cluster_name: cluster, endpoints: [{ lb_endpoints: ports.map((p) => ({ endpoint: { address: socketAddress(p) } })) }] };
}

/** A RouteConfiguration with one catch-all route: to one cluster, or a weighted split. */
export function routeConfig(name: string, to: string | Record<string, number>): object {
  const route = typeof to === 'string' ? { cluster: to } : { weighted_clusters: { clusters: Object.entries(to).map(([c, weight]) => ({ name: c, weight })) } };
  return { name, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route }] }] };
}

export { freePort } from '../free-port.ts';

export interface NamedUpstream {
  readonly name: string;
  readonly port: number;
  /** Requests seen. */
  hits: number;
  /** Requests to paths starting /slow wait here until release() (a long request). */
  release(): void;
  close(): Promise<void>;
}

/** An HTTP/1.1 upstream answering `<name>` (and holding /slow requests until release()). */
export async function namedUpstream(name: string): Promise<NamedUpstream> {
  const held: Array<() => void> = [];
  let released = false;
  const server = http.createServer((req, res) => {
    u.hits++;
    if (req.url?.startsWith('/slow') && !released) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(`${name} part1;`);
      held.push(() => res.end(`${name} part2`));
      return;
    }
    res.end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u: NamedUpstream = {
    name,
    port: (server.address() as AddressInfo).port,
    hits: 0,
    release() {
      released = true;
      for (const f of held.splice(0)) f();
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return u;
}

/** A TCP echo upstream (prefixes each echo with `<name>:`). */
export async function echoUpstream(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('data', (d: Buffer) => s.write(`${name}:${d.toString()}`));
    s.on('end', () => s.end());
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** One GET through a listener on a fresh connection; rejects on a connection error. */
export function get(port: number, path = '/', timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** The body of a GET, or undefined on an error or a non-200 (for polling). */
export async function bodyOr(port: number, path = '/'): Promise<string | undefined> {
  try {
    const r = await get(port, path);
    return r.status === 200 ? r.body : undefined;
  } catch {
    return undefined;
  }
}

/** Polls until `f` returns a truthy value, every 50 ms (behavioural timeout, generous); `what` may be lazy. */
export async function eventually<T>(f: () => T | undefined | false | Promise<T | undefined | false>, what: string | (() => string), timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Obj = Record<string, unknown>;

/** The /config_dump section of `@type` ending with `kind` (e.g. 'ListenersConfigDump'). */
export async function configDump(admin: string, kind: string, query = ''): Promise<Obj> {
  const d = (await (await fetch(`${admin}/config_dump${query}`)).json()) as { configs?: Obj[] };
  const c = (d.configs ?? []).find((x) => String(x['@type']).endsWith(`.${kind}`));
  if (!c) throw new Error(`no ${kind} in /config_dump: ${JSON.stringify(d).slice(0, 2000)}`);
  return c;
}

/** dynamic_listeners[] entry named `name` in the ListenersConfigDump. */
export async function dynamicListener(admin: string, name: string): Promise<Obj | undefined> {
  const d = await configDump(admin, 'ListenersConfigDump');
  return ((d['dynamic_listeners'] as Obj[] | undefined) ?? []).find((l) => l['name'] === name);
}

/** Names of dynamic_active_clusters in the ClustersConfigDump. */
export async function activeClusterNames(admin: string): Promise<string[]> {
  const d = await configDump(admin, 'ClustersConfigDump');
  return ((d['dynamic_active_clusters'] as Array<{ cluster?: { name?: string } }> | undefined) ?? []).map((c) => c.cluster?.name ?? '');
}
