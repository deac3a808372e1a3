// This worker's upstream connections for one cluster: bounded HTTP/1.1 pools (Http1Pool), HTTP/2
// sessions (legate's own client, h2/client-session.ts), raw TCP, each over TLS when the host's
// transport socket says so, with Envoy's cx stats and upstream HTTP/2 codec stats.
// Connect failures, timeouts and TLS handshake failures (connect_timeout covers the handshake) become
// retryable ProxyErrors (flag UF). Connections and pending requests count against the circuit breakers
// of the pools' routing priority (process-wide): over max_connections an HTTP/1.1 request waits for a
// connection, an HTTP/2 request shares an existing session, a TCP connect fails with a UO ProxyError.
// Pools are per host and, for TLS hosts, per auto_sni/auto_san_validation options (never mixed).

import { createRequire } from 'node:module';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { Limits } from '../limits.ts';
import { logger } from '../log.ts';
import type { StatsStore } from '../stats.ts';
import { ByHost, ConnectTimeout, connectError, cxStats, isPipe, isTimeout, track, type CxStats, type CxTracker } from './pool-common.ts';
import type { ClusterConfig, Host, SourceAddress, UpstreamHttp2Options, UpstreamTransportOptions } from './types.ts';
import type { ClientTransportSocket } from '../tls/types.ts';
import { recordUpstreamTls, transportKey } from './upstream-tls.ts';
import { overflowError, type PriorityBreakers } from './circuit-breakers.ts';
import { Http1Pool } from './http1-pool.ts';
import type { H2ClientSession } from '../http/h2/client-session.ts';
import type { H2CodecEvent } from '../http/h2/session.ts';
import { setLongTimeout, TIMEOUT_MAX_MS } from '../long-timers.ts';

const log = logger('upstream');
/** legate's HTTP/2 client, required by the first HTTP/2 connection: a config without HTTP/2 clusters never loads it. */
const lazy = createRequire(import.meta.url);
const CLOSE_GRACE_MS = 5 * 1000; // 5 s for in-flight requests at close(), then destroyed
// ALPN offered when the TLS context has no alpn_protocols: the pool's protocol (Envoy's fallback).
const H2_ALPN: readonly string[] = ['h2'];
const HTTP1_ALPN: readonly string[] = ['http/1.1'];
/** Envoy's defaults for an upstream's http2_protocol_options. */
const DEFAULT_HTTP2: UpstreamHttp2Options = { maxConcurrentStreams: Limits.http2MaxConcurrentStreams, initialStreamWindowSize: Limits.http2InitialStreamWindowSize, initialConnectionWindowSize: Limits.http2InitialConnectionWindowSize };

/** An HTTP/2 connection being opened, and how many requests wait for it. */
interface H2Opening {
  readonly promise: Promise<H2ClientSession>;
  waiters: number;
}

export class ClusterPools {
  readonly #config: ClusterConfig;
  readonly #stats: CxStats;
  readonly #breakers: PriorityBreakers;
  readonly #http1 = new ByHost<Http1Pool>();
  readonly #http2 = new ByHost<H2ClientSession[]>();
  readonly #h2Pending = new ByHost<H2Opening>();
  #closed = false;
  /** Resolved when close() gives up on in-flight requests (pools still open are then destroyed). */
  readonly #forced: { readonly promise: Promise<void>; resolve(): void } = forcedSignal();
  #draining: Promise<void> | undefined;

  /** `breakers`: the cluster's breakers for the priority these pools serve (a cluster has one set per priority in use). */
  constructor(config: ClusterConfig, stats: StatsStore, breakers: PriorityBreakers) {
    this.#config = config;
    this.#stats = cxStats(stats, config.statPrefix);
    this.#breakers = breakers;
  }

  /**
   * Connects to a host through its TLS transport socket (connect_timeout covering TCP and handshake),
   * remembering the session for StreamInfo.upstreamTls. `alpnFallback`: offered when the context has none.
   */
  #tlsConnect(host: Host, ts: ClientTransportSocket, transport: UpstreamTransportOptions | undefined, alpnFallback: readonly string[] | undefined): Promise<TLSSocket> {
    const c = this.#config;
    const target = {
      host: host.address,
      port: host.port,
      ...(isPipe(host) ? { path: host.address } : {}),
      ...(transport?.sni !== undefined ? { sni: transport.sni } : {}),
      ...(transport?.verifySan !== undefined ? { verifySan: transport.verifySan } : {}),
      ...(transport?.alpn !== undefined ? { alpnOverride: transport.alpn } : {}),
      ...(alpnFallback ? { alpnFallback } : {}),
      ...(c.sourceAddress && !isPipe(host) ? { source: c.sourceAddress } : {}),
      timeoutMs: c.connectTimeoutMs,
    };
    const started = performance.now();
    return ts.connect(target, c.statPrefix).then(
      ({ socket, info }) => {
        recordUpstreamTls(socket, info);
        return socket;
      },
      (err: unknown) => {
        // The transport socket's connect_timeout timer (TCP or handshake) is what ended it once the time is up.
        throw performance.now() - started >= c.connectTimeoutMs ? new ConnectTimeout(err) : err;
      },
    );
  }

  http1Pool(host: Host, transport?: UpstreamTransportOptions): Http1Pool {
    const ts = host.transportSocket;
    const tkey = ts ? transportKey(transport) : '';
    let pool = this.#http1.get(host.key, tkey);
    if (pool) return pool;
    const c = this.#config;
    const stats = this.#stats;
    const connect = (): Promise<net.Socket> => {
      const t = track(stats, 'http1');
      const socket = ts ? this.#tlsConnect(host, ts, transport, HTTP1_ALPN) : tcpConnect(host, c.connectTimeoutMs, c.sourceAddress);
      return socket.then(
        (s) => {
          s.setNoDelay(true);
          s.once('close', t.closed);
          return s;
        },
        (err: unknown) => {
          const timeout = isTimeout(err);
          t.failed(timeout);
          throw connectError(host, c.name, timeout, err);
        },
      );
    };
    pool = new Http1Pool({
      cluster: c.name,
      connections: this.#breakers.connections,
      pending: this.#breakers.pendingRequests,
      connect,
      idleTimeoutMs: c.idleTimeoutMs,
      maxRequestsPerConnection: c.maxRequestsPerConnection,
      maxHeaderSize: Limits.maxRequestHeadersKb * 1024,
    });
    this.#http1.set(host.key, tkey, pool);
    return pool;
  }

  http2Session(host: Host, transport?: UpstreamTransportOptions): Promise<H2ClientSession> {
    if (this.#closed) return Promise.reject(connectError(host, this.#config.name, false, new Error('cluster closed')));
    const tkey = host.transportSocket ? transportKey(transport) : '';
    const sessions = this.#http2.get(host.key, tkey) ?? [];
    for (const s of sessions) if (s.capacity > 0) return Promise.resolve(s);
    // No session with a free stream: the request is pending until one connects (Envoy's pending request).
    const b = this.#breakers;
    if (!b.pendingRequests.tryAcquire()) return Promise.reject(overflowError(this.#config.name, 'pending requests'));
    // A connection being opened takes as many requests as it will have streams; past that another is opened.
    const pending = this.#h2Pending.get(host.key, tkey);
    let p: Promise<H2ClientSession>;
    const perConnection = Math.min((this.#config.http2 ?? DEFAULT_HTTP2).maxConcurrentStreams, this.#config.maxRequestsPerConnection || Infinity);
    if (pending && pending.waiters < perConnection) {
      pending.waiters++;
      p = pending.promise;
    } else {
      // Over max_connections a host that has a session (or one opening) shares it: the stream waits there for a free one.
      const usable = sessions.filter((s) => !s.closed);
      if ((usable.length > 0 || pending) && !b.connections.tryAcquire()) {
        b.pendingRequests.release();
        if (pending) return pending.promise;
        return Promise.resolve(usable.reduce((a, s) => (s.active < a.active ? s : a)));
      }
      if (usable.length === 0 && !pending) b.connections.forceAcquire();
      const opening: H2Opening = { promise: this.#openH2(host, transport, tkey), waiters: 1 };
      const forget = (): void => {
        if (this.#h2Pending.get(host.key, tkey) === opening) this.#h2Pending.delete(host.key, tkey);
      };
      opening.promise.then(forget, forget);
      this.#h2Pending.set(host.key, tkey, opening);
      p = opening.promise;
    }
    const release = (): void => b.pendingRequests.release();
    p.then(release, release);
    return p;
  }

  /** A new session (h2c, or HTTP/2 over the host's TLS transport socket, offering ALPN h2 by default). */
  #openH2(host: Host, transport: UpstreamTransportOptions | undefined, tkey: string): Promise<H2ClientSession> {
    const c = this.#config;
    const t = track(this.#stats, 'http2');
    const ts = host.transportSocket;
    const connecting = ts ? this.#tlsConnect(host, ts, transport, H2_ALPN) : tcpConnect(host, c.connectTimeoutMs, c.sourceAddress);
    return connecting.then(
      (socket) => this.#startH2(host, tkey, t, socket),
      (err: unknown) => {
        const timeout = isTimeout(err);
        t.failed(timeout);
        this.#breakers.connections.release();
        throw connectError(host, c.name, timeout, err);
      },
    );
  }

  /** Runs legate's HTTP/2 client (h2/client-session.ts) on a connected socket and adds it to the host's sessions. */
  #startH2(host: Host, tkey: string, t: CxTracker, socket: net.Socket): H2ClientSession {
    const c = this.#config;
    const h2 = c.http2 ?? DEFAULT_HTTP2;
    socket.setNoDelay(true);
    const session = new (lazy('../http/h2/client-session.ts') as typeof import('../http/h2/client-session.ts')).H2ClientSession(
      socket,
      {
        initialWindowSize: h2.initialStreamWindowSize,
        connectionWindowSize: h2.initialConnectionWindowSize,
        maxHeaderListSize: Math.max(65535, Limits.maxRequestHeadersKb * 1024 * 2),
        maxConcurrentStreams: h2.maxConcurrentStreams,
        maxRequests: c.maxRequestsPerConnection,
        keepalive: h2.keepalive,
        pendingRequests: this.#breakers.pendingRequests,
      },
      { onCodecEvent: (e) => this.#h2CodecEvent(e), onGoaway: () => log.debug(`http2 session to ${host.key} (cluster ${c.name}): GOAWAY`) },
    );
    const list = this.#http2.get(host.key, tkey) ?? [];
    list.push(session);
    this.#http2.set(host.key, tkey, list);
    // An idle session closes after idle_timeout (node:timers' limit of 24.8 days caps a longer one).
    if (c.idleTimeoutMs > 0) socket.setTimeout(Math.min(c.idleTimeoutMs, TIMEOUT_MAX_MS), () => session.active === 0 && session.close());
    socket.on('error', (err) => log.debug(`http2 session to ${host.key} (cluster ${c.name}): ${err.message}`));
    socket.once('close', () => {
      this.#breakers.connections.release();
      t.closed();
      const l = this.#http2.get(host.key, tkey);
      if (!l) return;
      const i = l.indexOf(session);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.#http2.delete(host.key, tkey);
    });
    return session;
  }

  /** Envoy's upstream codec stats: cluster.<name>.http2.<event>. */
  #h2CodecEvent(e: H2CodecEvent): void {
    this.#stats.http2Codec(e).inc();
  }

  connect(host: Host, transport?: UpstreamTransportOptions): Promise<net.Socket> {
    const c = this.#config;
    const cx = this.#breakers.connections;
    if (!cx.tryAcquire()) return Promise.reject(overflowError(c.name, 'connections'));
    const t = track(this.#stats, 'tcp');
    let cxHeld = true;
    const releaseCx = (): void => {
      if (cxHeld) cx.release();
      cxHeld = false;
    };
    const ts = host.transportSocket;
    // tcp_proxy offers only the context's own alpn_protocols (Envoy has no fallback for TCP pools).
    const connecting = ts ? this.#tlsConnect(host, ts, transport, undefined) : tcpConnect(host, c.connectTimeoutMs, c.sourceAddress);
    return connecting.then(
      (socket) => {
        socket.once('close', () => {
          t.closed();
          releaseCx();
        });
        return socket;
      },
      (err: unknown) => {
        const timeout = isTimeout(err);
        t.failed(timeout);
        releaseCx();
        throw connectError(host, c.name, timeout, err);
      },
    );
  }

  /** Closes one host's pools (host left the cluster): in-flight requests finish first, within `deadline` (5 s by default). */
  async removeHost(key: string, deadline: Promise<void> = graceDeadline()): Promise<void> {
    const pools = this.#http1.take(key);
    const sessions = this.#http2.take(key).flat();
    await Promise.all([...pools.map((p) => closePool(p, deadline)), ...sessions.map((s) => closeSession(s, deadline))]);
  }

  /**
   * The cluster was replaced or removed: no new HTTP/2 sessions or connections; requests in flight
   * finish on their connections however long they take (a later close() bounds them), then they close.
   */
  drain(): Promise<void> {
    this.#closed = true;
    const keys = new Set([...this.#http1.hosts(), ...this.#http2.hosts()]);
    this.#draining = Promise.all([...keys].map((k) => this.removeHost(k, this.#forced.promise))).then(() => undefined);
    return this.#draining;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const timer = setTimeout(() => this.#forced.resolve(), CLOSE_GRACE_MS); // a constant: no long timer needed
    const keys = new Set([...this.#http1.hosts(), ...this.#http2.hosts()]);
    await Promise.all([...[...keys].map((k) => this.removeHost(k, this.#forced.promise)), this.#draining]);
    clearTimeout(timer);
    this.#forced.resolve();
  }
}

/** A promise with its resolver (close() resolves it when the grace time is up). */
function forcedSignal(): { readonly promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves after the close grace time (an unref'd timer: it never holds the process open). */
function graceDeadline(): Promise<void> {
  return sleep(CLOSE_GRACE_MS, undefined, { ref: false });
}

/** net.connect's options for upstream_bind_config's source address (port 0: any). */
function bindOptions(source: SourceAddress): { localAddress: string; localPort?: number } {
  return source.port > 0 ? { localAddress: source.address, localPort: source.port } : { localAddress: source.address };
}

/** A plain TCP (or pipe) connection, from `source` when set, connected within `timeoutMs` (else a ConnectTimeout). */
function tcpConnect(host: Host, timeoutMs: number, source: SourceAddress | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = isPipe(host) ? net.connect({ path: host.address }) : net.connect({ host: host.address, port: host.port, noDelay: true, ...(source ? bindOptions(source) : {}) });
    const timer = setLongTimeout(() => {
      socket.destroy();
      reject(new ConnectTimeout(undefined));
    }, timeoutMs);
    const onError = (err: Error): void => {
      timer.clear();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      timer.clear();
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

async function closePool(pool: Http1Pool, deadline: Promise<void>): Promise<void> {
  const r = await Promise.race([pool.close().then(() => 'closed' as const, () => 'closed' as const), deadline.then(() => 'timeout' as const)]);
  if (r === 'timeout') await pool.destroy().catch(() => {});
}

/** GOAWAY: the session's streams finish, then it closes; at `deadline` it is destroyed. */
function closeSession(s: H2ClientSession, deadline: Promise<void>): Promise<void> {
  if (s.socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let done = false;
    s.socket.once('close', () => {
      done = true;
      resolve();
    });
    void deadline.then(() => {
      if (!done) s.destroy();
    });
    s.close();
  });
}
