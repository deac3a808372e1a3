// What every upstream pool of a cluster shares: Envoy's upstream_cx_* counters for one connection
// attempt, connect failures as retryable ProxyErrors (flag UF), and a map of pools by host and
// transport options (auto_sni), so a host's pools leave together. No I/O here.

import { ErrorCode, ProxyError, ResponseFlag } from '../errors.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import type { Host } from './types.ts';

export interface CxStats {
  total: Counter;
  active: Gauge;
  connectFail: Counter;
  connectTimeout: Counter;
  destroy: Counter;
  http1Total: Counter;
  http2Total: Counter;
  /** cluster.<name>.http2.<event>: the upstream HTTP/2 codec's stats (Envoy's names). */
  http2Codec(event: string): Counter;
}

export function cxStats(stats: StatsStore, prefix: string): CxStats {
  return {
    total: stats.counter(`${prefix}upstream_cx_total`),
    active: stats.gauge(`${prefix}upstream_cx_active`),
    connectFail: stats.counter(`${prefix}upstream_cx_connect_fail`),
    connectTimeout: stats.counter(`${prefix}upstream_cx_connect_timeout`),
    destroy: stats.counter(`${prefix}upstream_cx_destroy`),
    http1Total: stats.counter(`${prefix}upstream_cx_http1_total`),
    http2Total: stats.counter(`${prefix}upstream_cx_http2_total`),
    http2Codec: (event) => stats.counter(`${prefix}http2.${event}`),
  };
}

export function isPipe(host: Host): boolean {
  return host.port === 0 && (host.address.startsWith('/') || host.address.startsWith('@'));
}

/** A TLS connect that failed because connect_timeout expired (during TCP connect or the handshake). */
export class ConnectTimeout extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : 'connect timeout', { cause });
  }
}

export function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || (err instanceof ProxyError && err.code === ErrorCode.UPSTREAM_CONNECT_TIMEOUT);
}

export function connectError(host: Host, cluster: string, timeout: boolean, cause: unknown): ProxyError {
  if (cause instanceof ProxyError && cause.flag === ResponseFlag.UpstreamConnectionFailure) return cause;
  const what = timeout ? 'connect timeout' : `connection failure${cause instanceof Error ? ` (${cause.message})` : ''}`;
  return new ProxyError(timeout ? ErrorCode.UPSTREAM_CONNECT_TIMEOUT : ErrorCode.UPSTREAM_CONNECT_FAILURE, `upstream ${host.key} of cluster ${cluster}: ${what}`, {
    source: 'upstream',
    retryable: true,
    flag: ResponseFlag.UpstreamConnectionFailure,
    cause,
  });
}

export type CxTracker = ReturnType<typeof track>;

/** Counts one connection attempt now; returns callbacks for its outcome (Envoy counts total/active at creation). */
export function track(s: CxStats, kind: 'http1' | 'http2' | 'tcp'): { failed(timeout: boolean): void; closed(): void } {
  s.total.inc();
  if (kind === 'http1') s.http1Total.inc();
  else if (kind === 'http2') s.http2Total.inc();
  s.active.inc();
  let done = false;
  const closed = (): void => {
    if (done) return;
    done = true;
    s.active.dec();
    s.destroy.inc();
  };
  return {
    failed(timeout: boolean): void {
      s.connectFail.inc();
      if (timeout) s.connectTimeout.inc();
      closed();
    },
    closed,
  };
}

/** A map per host key of values per transport key (auto_sni options), so a host's pools leave together. */
export class ByHost<V> {
  readonly #m = new Map<string, Map<string, V>>();
  get(host: string, t: string): V | undefined {
    return this.#m.get(host)?.get(t);
  }
  set(host: string, t: string, v: V): void {
    let m = this.#m.get(host);
    if (!m) this.#m.set(host, (m = new Map()));
    m.set(t, v);
  }
  delete(host: string, t: string): void {
    const m = this.#m.get(host);
    if (!m) return;
    m.delete(t);
    if (m.size === 0) this.#m.delete(host);
  }
  /** Removes and returns every value of a host. */
  take(host: string): V[] {
    const m = this.#m.get(host);
    this.#m.delete(host);
    return m ? [...m.values()] : [];
  }
  hosts(): string[] {
    return [...this.#m.keys()];
  }
}
