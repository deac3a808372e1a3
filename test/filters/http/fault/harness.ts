// Test harness for the fault filter: a real connection manager (HCM YAML with the fault filter and
// the router) on 127.0.0.1 with a Runtime and SharedCounters the test holds, a real upstream that
// answers 200 "ok" (optionally after a pause), and helpers to count outcomes.

import { MemorySecretStore } from '../../../../src/proxy/tls/secret-store.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { SharedCounters } from '../../../../src/proxy/shared-counters.ts';
import { Runtime } from '../../../../src/proxy/runtime.ts';
import { clusterManager, clusterYaml } from '../router/harness.ts';
import { startUpstream, type TestUpstream } from '../router/upstreams.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';

import { serveHcm } from '../router/proxy-harness.ts';

export { Client, type Downstream, type Reply } from '../router/proxy-harness.ts';

export interface FaultProxy {
  readonly port: number;
  readonly stats: StatsStore;
  readonly runtime: Runtime;
  readonly shared: SharedCounters;
  readonly upstream: TestUpstream;
  /** Requests the upstream received. */
  upstreamRequests: number;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

/**
 * HCM YAML with stat_prefix `ingress_http`, one virtual host routing everything to cluster
 * `backend` (plus `routesYaml` before it), the fault filter with `faultYaml` (indented body of
 * typed_config) and the router. `extra` is appended at HCM level (access_log…).
 */
export function hcmYaml(faultYaml: string, opts: { routesYaml?: string; extra?: string; vhostExtra?: string } = {}): string {
  const indent = (s: string, n: number): string =>
    s
      .trim()
      .split('\n')
      .map((l) => ' '.repeat(n) + l)
      .join('\n');
  return `
stat_prefix: ingress_http
route_config:
  name: local_route
  virtual_hosts:
  - name: local
    domains: ["*"]
${opts.vhostExtra ? indent(opts.vhostExtra, 4) + '\n' : ''}    routes:
${opts.routesYaml ? indent(opts.routesYaml, 4) + '\n' : ''}    - match: { prefix: "/" }
      route: { cluster: backend }
http_filters:
- name: envoy.filters.http.fault
  typed_config:
    "@type": ${FAULT_TYPE}
${faultYaml.trim() && faultYaml.trim() !== '{}' ? indent(faultYaml, 4) : ''}
- name: envoy.filters.http.router
  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
${opts.extra ?? ''}`;
}

export async function startFaultProxy(
  hcm: string,
  opts: { runtime?: Record<string, string>; upstreamDelayMs?: number; upstreamProtocol?: 'http1' | 'http2'; moreClusters?: readonly string[] } = {},
): Promise<FaultProxy> {
  const proxy = { upstreamRequests: 0 } as { upstreamRequests: number };
  const upstream = await startUpstream(opts.upstreamProtocol ?? 'http1', (req, res) => {
    proxy.upstreamRequests++;
    req.resume();
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    };
    if (opts.upstreamDelayMs) setTimeout(answer, opts.upstreamDelayMs);
    else answer();
  });
  try {
    return await build(hcm, opts, proxy, upstream);
  } catch (e) {
    await upstream.close();
    throw e;
  }
}

async function build(
  hcm: string,
  opts: { runtime?: Record<string, string>; upstreamProtocol?: 'http1' | 'http2'; moreClusters?: readonly string[] },
  proxy: { upstreamRequests: number },
  upstream: TestUpstream,
): Promise<FaultProxy> {
  const stats = new StatsStore();
  const cm: ClusterManager = await clusterManager([clusterYaml('backend', upstream.port, opts.upstreamProtocol === 'http2'), ...(opts.moreClusters ?? []).map((n) => clusterYaml(n, upstream.port, opts.upstreamProtocol === 'http2'))], stats);
  const runtime = new Runtime([{ name: 'static', values: opts.runtime ?? {} }]);
  const shared = SharedCounters.create(1024);
  const served = await serveHcm(hcm, { stats, clusterManager: cm, workerId: 0, shared, runtime, secrets: new MemorySecretStore() });
  return Object.assign(proxy, {
    port: served.port,
    stats,
    runtime,
    shared,
    upstream,
    counter: (n: string) => stats.snapshot().counters[n] ?? 0,
    gauge: (n: string) => stats.snapshot().gauges[n] ?? 0,
    close: async () => {
      await served.close();
      await cm.close();
      await upstream.close();
    },
  });
}

/** Runs `n` requests `concurrency` at a time (`lane` says which); returns how many answered each status. */
export async function statusCounts(send: (lane: number) => Promise<{ status: number }>, n: number, concurrency = 8): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  let left = n;
  const lane = async (i: number): Promise<void> => {
    while (left > 0) {
      left--;
      const r = await send(i);
      counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => lane(i)));
  return counts;
}
