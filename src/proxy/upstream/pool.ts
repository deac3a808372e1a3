// This worker's upstream connections for one cluster: bounded HTTP/1.1 pools (undici Clients), node:http2
// sessions, raw TCP, with Envoy's cx stats. Connect failures and timeouts become retryable ProxyErrors
// (flag UF). Connections and pending requests count against the cluster's DEFAULT-priority circuit
// breakers (process-wide): over max_connections an HTTP/1.1 request waits for a connection, an HTTP/2
// request shares an existing session, a TCP connect fails with a UO ProxyError.

import * as http2 from 'node:http2';
import * as net from 'node:net';
import { buildConnector, type Dispatcher } from 'undici';
import { ErrorCode, ProxyError, ResponseFlag } from '../errors.ts';
import { Limits } from '../limits.ts';
import { logger } from '../log.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import type { ClusterConfig, Host } from './types.ts';
import { overflowError, type PriorityBreakers } from './circuit-breakers.ts';
import { BoundedHttp1Pool } from './circuit-breakers-http1-pool.ts';

const log = logger('upstream');
const CLOSE_GRACE_MS = 5 * 1000; // 5 s for in-flight requests at close(), then destroyed
const NO_IDLE_TIMEOUT_MS = 2 ** 31 - 1; // idle_timeout 0 disables it: the largest timer Node allows

interface CxStats {
  total: Counter;
  active: Gauge;
  connectFail: Counter;
  connectTimeout: Counter;
  destroy: Counter;
  http1Total: Counter;
  http2Total: Counter;
}

function cxStats(stats: StatsStore, prefix: string): CxStats {
  return {
    total: stats.counter(`${prefix}upstream_cx_total`),
    active: stats.gauge(`${prefix}upstream_cx_active`),
    connectFail: stats.counter(`${prefix}upstream_cx_connect_fail`),
    connectTimeout: stats.counter(`${prefix}upstream_cx_connect_timeout`),
    destroy: stats.counter(`${prefix}upstream_cx_destroy`),
    http1Total: stats.counter(`${prefix}upstream_cx_http1_total`),
    http2Total: stats.counter(`${prefix}upstream_cx_http2_total`),
  };
}

function isPipe(host: Host): boolean {
  return host.port === 0 && (host.address.startsWith('/') || host.address.startsWith('@'));
}

function connectError(host: Host, cluster: string, timeout: boolean, cause: unknown): ProxyError {
  const what = timeout ? 'connect timeout' : `connection failure${cause instanceof Error ? ` (${cause.message})` : ''}`;
  return new ProxyError(timeout ? ErrorCode.UPSTREAM_CONNECT_TIMEOUT : ErrorCode.UPSTREAM_CONNECT_FAILURE, `upstream ${host.key} of cluster ${cluster}: ${what}`, {
    source: 'upstream',
    retryable: true,
    flag: ResponseFlag.UpstreamConnectionFailure,
    cause,
  });
}

/** Counts one connection attempt now; returns callbacks for its outcome (Envoy counts total/active at creation). */
function track(s: CxStats, kind: 'http1' | 'http2' | 'tcp'): { failed(timeout: boolean): void; closed(): void } {
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

interface H2Entry {
  session: http2.ClientHttp2Session;
  active: number;
  draining: boolean;
}

export class ClusterPools {
  readonly #config: ClusterConfig;
  readonly #stats: CxStats;
  readonly #breakers: PriorityBreakers;
  readonly #http1 = new Map<string, BoundedHttp1Pool>();
  readonly #http2 = new Map<string, H2Entry[]>();
  readonly #h2Pending = new Map<string, Promise<http2.ClientHttp2Session>>();
  #closed = false;

  /** `breakers`: the cluster's DEFAULT-priority breakers (pools are shared by both priorities). */
  constructor(config: ClusterConfig, stats: StatsStore, breakers: PriorityBreakers) {
    this.#config = config;
    this.#stats = cxStats(stats, config.statPrefix);
    this.#breakers = breakers;
  }

  http1Pool(host: Host): Dispatcher {
    let pool = this.#http1.get(host.key);
    if (pool) return pool;
    const c = this.#config;
    const pipe = isPipe(host);
    const base = buildConnector({ timeout: c.connectTimeoutMs, ...(pipe ? { socketPath: host.address } : {}) });
    const stats = this.#stats;
    const connect: buildConnector.connector = (opts, cb) => {
      const t = track(stats, 'http1');
      base(opts, (err, socket) => {
        if (err || !socket) {
          const timeout = (err as { code?: string } | null)?.code === 'UND_ERR_CONNECT_TIMEOUT';
          t.failed(timeout);
          cb(connectError(host, c.name, timeout, err), null);
          return;
        }
        socket.setNoDelay(true);
        socket.once('close', t.closed);
        cb(null, socket);
      });
    };
    const idle = c.idleTimeoutMs > 0 ? c.idleTimeoutMs : NO_IDLE_TIMEOUT_MS;
    pool = new BoundedHttp1Pool({
      origin: pipe ? 'http://localhost' : `http://${host.key}`,
      cluster: c.name,
      connections: this.#breakers.connections,
      pending: this.#breakers.pendingRequests,
      client: {
        connect,
        keepAliveTimeout: idle,
        keepAliveMaxTimeout: idle,
        // The router owns request timeouts (route timeout, per-try timeout); undici's would cut across them.
        headersTimeout: 0,
        bodyTimeout: 0,
        maxHeaderSize: Limits.maxRequestHeadersKb * 1024,
        ...(c.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: c.maxRequestsPerConnection } : {}),
      },
    });
    this.#http1.set(host.key, pool);
    return pool;
  }

  http2Session(host: Host): Promise<http2.ClientHttp2Session> {
    if (this.#closed) return Promise.reject(connectError(host, this.#config.name, false, new Error('cluster closed')));
    const entries = this.#http2.get(host.key) ?? [];
    for (const e of entries) {
      const s = e.session;
      if (e.draining || s.closed || s.destroyed) continue;
      const max = s.remoteSettings.maxConcurrentStreams ?? Limits.http2MaxConcurrentStreams;
      if (e.active < max) return Promise.resolve(s);
    }
    // No session with a free stream: the request is pending until one connects (Envoy's pending request).
    const b = this.#breakers;
    if (!b.pendingRequests.tryAcquire()) return Promise.reject(overflowError(this.#config.name, 'pending requests'));
    let p = this.#h2Pending.get(host.key);
    if (!p) {
      // Over max_connections a host that has a session shares it (nghttp2 queues streams past the peer's limit).
      const usable = entries.filter((e) => !e.draining && !e.session.closed && !e.session.destroyed);
      if (usable.length > 0 && !b.connections.tryAcquire()) {
        b.pendingRequests.release();
        return Promise.resolve(usable.reduce((a, e) => (e.active < a.active ? e : a)).session);
      }
      if (usable.length === 0) b.connections.forceAcquire();
      const opening = this.#openH2(host).finally(() => this.#h2Pending.delete(host.key));
      this.#h2Pending.set(host.key, opening);
      p = opening;
    }
    const release = (): void => b.pendingRequests.release();
    p.then(release, release);
    return p;
  }

  #openH2(host: Host): Promise<http2.ClientHttp2Session> {
    const c = this.#config;
    const t = track(this.#stats, 'http2');
    return new Promise((resolve, reject) => {
      const pipe = isPipe(host);
      const session = http2.connect(pipe ? 'http://localhost' : `http://${host.key}`, {
        settings: { enablePush: false, initialWindowSize: Limits.http2InitialStreamWindowSize },
        ...(pipe ? { createConnection: () => net.connect({ path: host.address }) } : {}),
      });
      let connected = false;
      let failed = false;
      let cxHeld = true;
      const releaseCx = (): void => {
        if (cxHeld) this.#breakers.connections.release();
        cxHeld = false;
      };
      const timer = setTimeout(() => {
        failed = true;
        t.failed(true);
        releaseCx();
        session.destroy();
        reject(connectError(host, c.name, true, undefined));
      }, c.connectTimeoutMs);
      const entry: H2Entry = { session, active: 0, draining: false };
      session.on('error', (err) => {
        if (!connected) {
          if (failed) return;
          failed = true;
          clearTimeout(timer);
          t.failed(false);
          releaseCx();
          reject(connectError(host, c.name, false, err));
        } else log.debug(`http2 session to ${host.key} (cluster ${c.name}): ${err.message}`);
      });
      session.once('connect', () => {
        connected = true;
        clearTimeout(timer);
        session.setLocalWindowSize(Limits.http2InitialConnectionWindowSize);
        // Count streams: the pool reuses a session only below the peer's max concurrent streams.
        const request = session.request.bind(session);
        session.request = (...args: Parameters<typeof session.request>) => {
          const stream = request(...args);
          entry.active++;
          stream.once('close', () => entry.active--);
          return stream;
        };
        const list = this.#http2.get(host.key) ?? [];
        list.push(entry);
        this.#http2.set(host.key, list);
        if (c.idleTimeoutMs > 0) session.setTimeout(c.idleTimeoutMs, () => entry.active === 0 && session.close());
        resolve(session);
      });
      session.once('goaway', () => (entry.draining = true));
      session.once('close', () => {
        clearTimeout(timer);
        releaseCx();
        if (connected) t.closed();
        const list = this.#http2.get(host.key);
        if (list) {
          const i = list.indexOf(entry);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.#http2.delete(host.key);
        }
      });
    });
  }

  connect(host: Host): Promise<net.Socket> {
    const c = this.#config;
    const cx = this.#breakers.connections;
    if (!cx.tryAcquire()) return Promise.reject(overflowError(c.name, 'connections'));
    const t = track(this.#stats, 'tcp');
    let cxHeld = true;
    const releaseCx = (): void => {
      if (cxHeld) cx.release();
      cxHeld = false;
    };
    return new Promise((resolve, reject) => {
      const socket = isPipe(host) ? net.connect({ path: host.address }) : net.connect({ host: host.address, port: host.port, noDelay: true });
      let failed = false;
      const timer = setTimeout(() => {
        failed = true;
        t.failed(true);
        releaseCx();
        socket.destroy();
        reject(connectError(host, c.name, true, undefined));
      }, c.connectTimeoutMs);
      const onError = (err: Error): void => {
        if (failed) return;
        failed = true;
        clearTimeout(timer);
        t.failed(false);
        releaseCx();
        reject(connectError(host, c.name, false, err));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.once('close', () => {
          t.closed();
          releaseCx();
        });
        resolve(socket);
      });
    });
  }

  /** Closes one host's pools (host left the cluster): in-flight requests finish first. */
  async removeHost(key: string): Promise<void> {
    const pool = this.#http1.get(key);
    this.#http1.delete(key);
    const sessions = this.#http2.get(key) ?? [];
    this.#http2.delete(key);
    await Promise.all([pool ? closePool(pool) : undefined, ...sessions.map((e) => closeSession(e.session))]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const keys = new Set([...this.#http1.keys(), ...this.#http2.keys()]);
    await Promise.all([...keys].map((k) => this.removeHost(k)));
  }
}

async function closePool(pool: BoundedHttp1Pool): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), CLOSE_GRACE_MS)));
  const r = await Promise.race([pool.close().then(() => 'closed' as const, () => 'closed' as const), grace]);
  clearTimeout(timer);
  if (r === 'timeout') await pool.destroy().catch(() => {});
}

function closeSession(s: http2.ClientHttp2Session): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => s.destroy(), CLOSE_GRACE_MS);
    s.close(() => {
      clearTimeout(timer);
      resolve();
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
