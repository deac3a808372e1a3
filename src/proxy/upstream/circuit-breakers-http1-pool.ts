// One host's HTTP/1.1 connection pool under the cluster's circuit breakers: undici Clients (one socket
// each, no pipelining) opened only while the process-wide max_connections breaker admits them (a host
// with no connection always gets one, as in Envoy). A request that finds no idle connection is pending
// (max_pending_requests) until a connection takes it; when pending is full it fails at once with a UO
// ProxyError (upstream_rq_pending_overflow), and when connections are full it waits in FIFO order for
// one to free up (upstream_cx_overflow). A request aborted while it waits leaves the queue only when it
// reaches the head (undici then fails or aborts it immediately), so it holds its pending slot until then.
// A handler implementing UpstreamTlsObserver learns the TLS session of the connection its request got.

import { Client, Dispatcher, errors, type buildConnector } from 'undici';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { UpstreamTlsObserver } from './types.ts';
import { upstreamTlsInfo } from './upstream-tls.ts';
import type { BreakerLimit } from './circuit-breakers.ts';
import { overflowError } from './circuit-breakers.ts';

interface Conn {
  readonly client: Client;
  /** Requests given to this client and not finished (0 or 1 without pipelining). */
  active: number;
  /** The client's socket went away (idle timeout, peer close, connect failure); retire once idle. */
  down: boolean;
  /** The client's current socket (from its connector), for the TLS session it negotiated. */
  socket: Socket | undefined;
}

interface Waiting {
  readonly opts: Dispatcher.DispatchOptions;
  readonly handler: TrackedHandler;
}

export interface BoundedHttp1PoolOptions {
  readonly origin: string;
  /** Options for each undici Client (connector, keep-alive, limits). */
  readonly client: Client.Options;
  readonly cluster: string;
  /** The cluster's DEFAULT-priority breakers: the pool is shared by every routing priority. */
  readonly connections: BreakerLimit;
  readonly pending: BreakerLimit;
}

/** Forwards every callback, and tells the pool when the request got its connection and when it ended. */
class TrackedHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #pool: BoundedHttp1Pool;
  #pending: BreakerLimit | undefined;
  conn: Conn | undefined;
  #done = false;

  constructor(inner: Dispatcher.DispatchHandler, pool: BoundedHttp1Pool, pending: BreakerLimit | undefined) {
    this.#inner = inner;
    this.#pool = pool;
    this.#pending = pending;
  }

  /** Leaves the pending state (on its connection, or ended while waiting): exactly once. */
  #unpend(): void {
    const p = this.#pending;
    this.#pending = undefined;
    p?.release();
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#unpend();
    this.#pool.finished(this);
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#unpend();
    const tls = upstreamTlsInfo(this.conn?.socket);
    if (tls) (this.#inner as UpstreamTlsObserver).onUpstreamTls?.(tls);
    this.#inner.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: Duplex): void {
    this.#end();
    this.#inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.#inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#inner.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#end();
    this.#inner.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.#end();
    this.#inner.onResponseError?.(controller, err);
  }
  onBodySent(chunk: Buffer): void {
    this.#inner.onBodySent?.(chunk);
  }
  onRequestSent(): void {
    this.#inner.onRequestSent?.();
  }
}

export class BoundedHttp1Pool extends Dispatcher {
  readonly #o: BoundedHttp1PoolOptions;
  readonly #conns: Conn[] = [];
  readonly #queue: Waiting[] = [];
  #closed = false;
  #destroyed = false;
  #closeWaiters: Array<() => void> = [];

  constructor(opts: BoundedHttp1PoolOptions) {
    super();
    this.#o = opts;
  }

  /** Open connections (and ones connecting) of this pool, this worker. */
  get connections(): number {
    return this.#conns.length;
  }

  /** Requests waiting for a connection in this pool, this worker. */
  get queued(): number {
    return this.#queue.length;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closed || this.#destroyed) {
      const err = this.#destroyed ? new errors.ClientDestroyedError() : new errors.ClientClosedError();
      queueMicrotask(() => handler.onResponseError?.(undefined as unknown as Dispatcher.DispatchController, err));
      return false;
    }
    const idle = this.#queue.length === 0 ? this.#idle() : undefined;
    if (idle) {
      this.#send(idle, opts, new TrackedHandler(handler, this, undefined));
      return true;
    }
    // No idle connection: the request is pending until one takes it (Envoy's pending request).
    const pending = this.#o.pending;
    if (!pending.tryAcquire()) {
      const err = overflowError(this.#o.cluster, 'pending requests');
      queueMicrotask(() => handler.onResponseError?.(undefined as unknown as Dispatcher.DispatchController, err));
      return true;
    }
    // FIFO behind earlier waiters; each wait that finds max_connections full counts upstream_cx_overflow.
    this.#queue.push({ opts, handler: new TrackedHandler(handler, this, pending) });
    this.#pump();
    return true;
  }

  #idle(): Conn | undefined {
    for (const c of this.#conns) if (c.active === 0 && !c.down) return c;
    return undefined;
  }

  /** A new connection if the breaker admits one; a host with none always gets one. */
  #open(): Conn | undefined {
    const cx = this.#o.connections;
    if (this.#conns.length === 0) cx.forceAcquire();
    else if (!cx.tryAcquire()) return undefined;
    let holder: Conn | undefined;
    // Wrap a connector function to learn each socket it makes (TLS session info).
    const base = this.#o.client.connect;
    const connect: buildConnector.connector | undefined =
      typeof base === 'function'
        ? (opts, cb) =>
            base(opts, (err, socket) => {
              if (holder) holder.socket = socket ?? undefined;
              if (err || !socket) cb(err ?? new Error('no socket'), null);
              else cb(null, socket);
            })
        : undefined;
    const client = new Client(this.#o.origin, { ...this.#o.client, ...(connect ? { connect } : {}), pipelining: 1 });
    const conn: Conn = { client, active: 0, down: false, socket: undefined };
    holder = conn;
    const down = (): void => {
      conn.down = true;
      if (conn.active === 0) this.#retire(conn);
    };
    // A client reconnects by itself for a request it already holds: the slot stays taken meanwhile.
    client.on('connect', () => (conn.down = false));
    client.on('disconnect', down);
    client.on('connectionError', down);
    this.#conns.push(conn);
    return conn;
  }

  #send(conn: Conn, opts: Dispatcher.DispatchOptions, handler: TrackedHandler): void {
    conn.active++;
    handler.conn = conn;
    conn.client.dispatch(opts, handler);
  }

  /** A request ended (response, error, upgrade): its connection may serve the next waiting one. */
  finished(handler: TrackedHandler): void {
    const conn = handler.conn;
    if (conn) {
      conn.active--;
      if (conn.down && conn.active === 0) this.#retire(conn);
    } else {
      // Ended while still waiting (destroy): drop it from the queue.
      const i = this.#queue.findIndex((w) => w.handler === handler);
      if (i >= 0) this.#queue.splice(i, 1);
    }
    this.#pump();
  }

  #retire(conn: Conn): void {
    const i = this.#conns.indexOf(conn);
    if (i < 0) return;
    this.#conns.splice(i, 1);
    this.#o.connections.release();
    void conn.client.close().catch(() => {});
    this.#pump();
  }

  /** Hands waiting requests to idle connections, opening new ones while the breaker admits. */
  #pump(): void {
    while (this.#queue.length > 0 && !this.#destroyed) {
      const conn = this.#idle() ?? this.#open();
      if (!conn) break;
      const w = this.#queue.shift()!;
      this.#send(conn, w.opts, w.handler);
    }
    if (this.#closed && this.#queue.length === 0 && this.#closeWaiters.length > 0) void this.#closeAll();
  }

  async #closeAll(): Promise<void> {
    const waiters = this.#closeWaiters;
    this.#closeWaiters = [];
    await Promise.all(this.#conns.map((c) => c.client.close().catch(() => {})));
    for (const w of waiters) w();
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const p = new Promise<void>((resolve) => {
      this.#closeWaiters.push(resolve);
      if (this.#queue.length === 0) void this.#closeAll();
    });
    if (callback) void p.then(callback);
    else return p;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    this.#destroyed = true;
    this.#closed = true;
    const failure = err ?? new errors.ClientDestroyedError();
    for (const w of this.#queue.splice(0)) w.handler.onResponseError(undefined as unknown as Dispatcher.DispatchController, failure);
    const p = Promise.all(this.#conns.map((c) => c.client.destroy(failure).catch(() => {}))).then(() => {
      for (const w of this.#closeWaiters.splice(0)) w();
    });
    if (callback) void p.then(callback);
    else return p;
  }
}
