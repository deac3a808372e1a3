// The scenarios and how one measured run goes: autocannon (in the suite's process, pinned with the
// upstream; HTTPS with or without a client certificate for the TLS scenarios) or the h2c load
// child, while the contestant's processes are sampled for CPU seconds (/proc/<pid>/stat over the
// whole tree) and peak RSS (VmRSS every 100 ms).

import autocannon from 'autocannon';
import { rssSampler, treeCpuSeconds } from './lib/procs.ts';
import type { Listener } from './contestants/types.ts';
import { ISTIO_PEER_HEADERS } from './contestants/legate-config.ts';
import { SERVER_NAME } from './lib/pki.ts';
import { H2LOAD, h2loadRun, h2ScriptRun, type H2ScriptResult } from './lib/h2load.ts';

export interface Scenario {
  readonly id: string;
  readonly describe: string;
  readonly listener: Listener;
  readonly path: string;
  readonly connections: number;
  /** h2c: streams in flight per connection (load from bench/h2-load.ts). */
  readonly h2Streams?: number;
  /** Fixed total request rate (autocannon overallRate). */
  readonly rate?: number;
  /** Part of --quick. */
  readonly quick: boolean;
  /** Contestants this scenario is limited to (default: all but those that run only where listed). */
  readonly contestants?: readonly string[];
  /** Request headers the load generator sends (`connection: close`: a new connection per request). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The load generator speaks HTTPS (`tls`) or HTTPS with the suite's client certificate (`mtls`). */
  readonly client?: 'tls' | 'mtls';
  /**
   * An extra row measured on the same running contestant but another of its listeners, named
   * `row`, that the other rows are also compared with (e.g. legate's plain route next to its
   * filter route, in one process).
   */
  readonly baseline?: { readonly contestant: string; readonly listener: Listener; readonly row: string };
}

const TLS_SET = ['direct', 'legate', 'nginx', 'haproxy', 'http-proxy', 'minimal'];
const EXT_BASELINE = { contestant: 'legate-ext', listener: 'h1', row: 'legate-ext plain' } as const;

export const SCENARIOS: readonly Scenario[] = [
  { id: 'h1-12b', describe: 'HTTP/1.1 keep-alive, 12 B body, 50 connections', listener: 'h1', path: '/12', connections: 50, quick: true },
  { id: 'h1-1k', describe: 'HTTP/1.1 keep-alive, 1 KiB body, 50 connections', listener: 'h1', path: '/1024', connections: 50, quick: false },
  { id: 'h1-64k', describe: 'HTTP/1.1 keep-alive, 64 KiB body, 50 connections', listener: 'h1', path: '/65536', connections: 50, quick: false },
  { id: 'h1-close', describe: 'HTTP/1.1, 12 B, `connection: close` on every request (a new downstream connection each; the upstream side keeps alive), 20 connections', listener: 'h1', path: '/12', connections: 20, headers: { connection: 'close' }, quick: false, contestants: ['direct', 'legate', 'nginx', 'haproxy', 'http-proxy', 'minimal'] },
  { id: 'h2-12b', describe: 'h2c downstream (5 connections × 10 streams) → HTTP/1.1 upstream, 12 B (direct: h2c upstream)', listener: 'h2', path: '/12', connections: 5, h2Streams: 10, quick: true, contestants: ['direct', 'legate', 'nginx', 'haproxy', 'minimal'] },
  { id: 'rate-1k', describe: 'fixed 1,000 req/s, 1 KiB, 4 connections (Istio method: latency added over direct, vCPU)', listener: 'h1', path: '/1024', connections: 4, rate: 1000, quick: true, contestants: ['direct', 'legate', 'nginx', 'haproxy', 'http-proxy', 'minimal'] },
  { id: 'tls-12b', describe: 'TLS termination: HTTPS (keep-alive) in → plain HTTP/1.1 upstream, 12 B, 50 connections (direct: HTTPS to the upstream)', listener: 'tls', client: 'tls', path: '/12', connections: 50, quick: false, contestants: TLS_SET },
  { id: 'mtls-up-12b', describe: 'plain HTTP/1.1 in → mTLS upstream (client certificate, upstream verified), 12 B, 50 connections (direct: plain HTTP/1.1 to the upstream)', listener: 'mtlsUp', path: '/12', connections: 50, quick: false, contestants: TLS_SET },
  { id: 'rate-1k-mtls', describe: 'fixed 1,000 req/s, 1 KiB, 4 connections, mTLS client → proxy → mTLS upstream (Istio method; direct: mTLS client → upstream)', listener: 'mtls', client: 'mtls', path: '/1024', connections: 4, rate: 1000, quick: false, contestants: TLS_SET },
  { id: 'filters-12b', describe: 'HTTP/1.1 12 B, 50 connections, route with fault (0%) + local_ratelimit (never limits) + header_mutation before the router; ratio to legate\'s plain route in the same process', listener: 'filters', path: '/12', connections: 50, quick: false, contestants: ['direct', 'legate-ext'], baseline: EXT_BASELINE },
  { id: 'wasm-12b', describe: 'HTTP/1.1 12 B, 50 connections, Proxy-Wasm header-filter plugin (adds a header each way) before the router; ratio to legate\'s plain route in the same process', listener: 'wasm', path: '/12', connections: 50, quick: false, contestants: ['direct', 'legate-ext'], baseline: EXT_BASELINE },
  { id: 'istio-12b', describe: 'HTTP/1.1 12 B, 50 connections, an inbound sidecar listener with Istio\'s istio.metadata_exchange (the caller\'s x-envoy-peer-metadata on every request) and istio.stats before the router; ratio to legate\'s plain route in the same process', listener: 'istio', path: '/12', connections: 50, headers: ISTIO_PEER_HEADERS, quick: false, contestants: ['direct', 'legate-ext'], baseline: EXT_BASELINE },
  { id: 'tcp-12b', describe: 'TCP proxy (legate tcp_proxy, nginx stream, haproxy mode tcp, the minimal proxy\'s raw net pipe), HTTP/1.1 12 B through it, 50 connections', listener: 'tcp', path: '/12', connections: 50, quick: false, contestants: ['direct', 'legate', 'nginx', 'haproxy', 'minimal'] },
];

export interface Figures {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Proxy CPU seconds (user + system, all processes and threads); NaN for direct. */
  readonly cpuSeconds: number;
  readonly cpuPer1k: number;
  /** CPU seconds per wall second. */
  readonly vcpu: number;
  readonly peakRssMB: number;
  readonly errors: number;
}

/** What one load run reports (latencies NaN where the generator gives none). */
export type Load = H2ScriptResult;

/** Latency percentile of sorted samples (ms). */
export function percentile(sorted: readonly number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

/** The suite's client certificate (PEM), presented in `client: 'mtls'` scenarios. */
export interface ClientCert { readonly cert: Buffer; readonly key: Buffer }

// autocannon's histogram keeps whole milliseconds; its 'response' event carries the float
// duration (hrtime), so percentiles are computed here from every 2xx response. Over HTTPS it
// never verifies the server (rejectUnauthorized: false is built in).
function autocannonLoad(s: Scenario, port: number, durationS: number, clientCert: ClientCert | undefined): Promise<Load> {
  const t0 = performance.now();
  const latencies: number[] = [];
  if (s.client === 'mtls' && !clientCert) throw new Error(`${s.id} needs the suite's client certificate`);
  const tls = s.client ? { servername: SERVER_NAME, ...(s.client === 'mtls' ? { tlsOptions: { ...clientCert } } : {}) } : {};
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: `${s.client ? 'https' : 'http'}://127.0.0.1:${port}${s.path}`, connections: s.connections, duration: durationS, ...(s.rate ? { overallRate: s.rate } : {}), ...(s.headers ? { headers: { ...s.headers } } : {}), ...tls },
      (err, r) => {
        if (err) return reject(err);
        latencies.sort((a, b) => a - b);
        resolve({ requests: r.requests.total, seconds: (performance.now() - t0) / 1000, p50Ms: percentile(latencies, 0.5), p90Ms: percentile(latencies, 0.9), p99Ms: percentile(latencies, 0.99), errors: r.errors + r.non2xx });
      },
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });
}

function h2Load(s: Scenario, port: number, durationS: number, loadCpu: number): Promise<Load> {
  return h2ScriptRun(`http://127.0.0.1:${port}`, s.path, s.connections, s.h2Streams ?? 10, durationS, loadCpu);
}

/**
 * One load run of `s` against `port`. h2c load comes from bench/h2-load.ts, or from h2load when
 * `useH2load` (and it is installed): the paired runs load two proxies at once, which two
 * h2-load.ts children cannot do from one CPU.
 */
export async function runLoad(s: Scenario, port: number, durationS: number, loadCpu: number, clientCert?: ClientCert, useH2load = false): Promise<Load> {
  if (s.h2Streams === undefined) return autocannonLoad(s, port, durationS, clientCert);
  if (!useH2load || !H2LOAD) return h2Load(s, port, durationS, loadCpu);
  const r = await h2loadRun(`http://127.0.0.1:${port}${s.path}`, s.connections, s.h2Streams, durationS, loadCpu);
  return { ...r, p50Ms: Number.NaN, p90Ms: Number.NaN, p99Ms: Number.NaN };
}

/** One measured run of `s` against `port`, charging CPU and RSS to `pids`. */
export async function measure(s: Scenario, port: number, pids: readonly number[], durationS: number, loadCpu: number, clientCert?: ClientCert): Promise<Figures> {
  const cpu0 = treeCpuSeconds(pids);
  const peak = rssSampler(pids);
  let load: Load;
  let peakRss = 0;
  try {
    load = await runLoad(s, port, durationS, loadCpu, clientCert);
  } finally {
    peakRss = peak();
  }
  const cpu = pids.length ? treeCpuSeconds(pids) - cpu0 : Number.NaN;
  return {
    requests: load.requests,
    seconds: load.seconds,
    requestsPerSecond: load.requests / load.seconds,
    p50Ms: load.p50Ms,
    p90Ms: load.p90Ms,
    p99Ms: load.p99Ms,
    cpuSeconds: cpu,
    cpuPer1k: load.requests > 0 ? (cpu / load.requests) * 1000 : Number.NaN,
    vcpu: cpu / load.seconds,
    peakRssMB: pids.length ? peakRss / 1048576 : Number.NaN,
    errors: load.errors,
  };
}
