// One host's HTTP/1.1 connection pool (this worker) under the cluster's circuit breakers: connections
// (Http1Connection, one request at a time, no pipelining) opened only while the process-wide
// max_connections breaker admits them (a host with no connection always gets one, as in Envoy). A
// request that finds no free connection is pending (max_pending_requests) until a connection takes
// it; when pending is full it fails at once with a UO ProxyError (upstream_rq_pending_overflow), and
// when connections are full it waits in FIFO order for one to free up (each wait that finds the
// breaker full counts upstream_cx_overflow). A request that opened a connection gets that one.

import type { Socket } from 'node:net';
import { ErrorCode, ProxyError, ResponseFlag } from '../errors.ts';
import { overflowError, type BreakerLimit } from './circuit-breakers.ts';
import { Http1Connection, type Http1ConnectionOwner } from './http1-connection.ts';

export interface Http1PoolOptions {
  readonly cluster: string;
  /** The cluster's DEFAULT-priority breakers: the pool is shared by every routing priority. */
  readonly connections: BreakerLimit;
  readonly pending: BreakerLimit;
  /** A connected socket (TLS handshaken when the host's transport socket says so), or a ProxyError (UF). */
  readonly connect: () => Promise<Socket>;
  /** Closes a connection idle this long; 0 = never. */
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** Response head limit, bytes. */
  readonly maxHeaderSize: number;
}

/** A request waiting for a connection of the pool. Exactly one of the two is called, unless it is cancelled. */
export interface Http1PoolRequest {
  /** The request has this connection now: its head goes out next. */
  onConnection(conn: Http1Connection): void;
  /** No connection for it: connect failure, pending overflow, the pool closed. */
  onPoolFailure(err: ProxyError): void;
}

interface Waiter {
  readonly req: Http1PoolRequest;
  /** Holds a max_pending_requests slot until it gets a connection (or leaves). */
  pending: boolean;
  cancelled: boolean;
}

export class Http1Pool implements Http1ConnectionOwner {
  readonly #o: Http1PoolOptions;
  readonly #all = new Set<Http1Connection>();
  /** Free connections, most recently freed last (reused first). */
  readonly #free: Http1Connection[] = [];
  #connecting = 0;
  readonly #queue: Waiter[] = [];
  /** Waiters whose connection is being opened for them. */
  readonly #opening = new Map<Http1PoolRequest, Waiter>();
  #closed = false;
  #destroyed = false;
  #closeWaiters: Array<() => void> = [];

  constructor(opts: Http1PoolOptions) {
    this.#o = opts;
  }

  /** Gives `req` a connection now, or queues it; failures arrive on a microtask. */
  request(req: Http1PoolRequest): void {
    if (this.#closed) {
      const err = poolGone(this.#o.cluster, this.#destroyed ? 'destroyed' : 'closed');
      queueMicrotask(() => req.onPoolFailure(err));
      return;
    }
    if (this.#queue.length === 0) {
      const conn = this.#takeFree();
      if (conn) return req.onConnection(conn);
    }
    if (!this.#o.pending.tryAcquire()) {
      const err = overflowError(this.#o.cluster, 'pending requests');
      queueMicrotask(() => req.onPoolFailure(err));
      return;
    }
    this.#queue.push({ req, pending: true, cancelled: false });
    this.#pump();
  }

  /** The request no longer wants a connection (aborted while it waited). */
  cancel(req: Http1PoolRequest): void {
    const i = this.#queue.findIndex((w) => w.req === req);
    if (i >= 0) {
      const [w] = this.#queue.splice(i, 1);
      this.#unpend(w!);
      return;
    }
    const w = this.#opening.get(req);
    if (w) w.cancelled = true;
  }

  // ---- Http1ConnectionOwner ----

  free(conn: Http1Connection): void {
    const w = this.#queue.shift();
    if (w) {
      this.#unpend(w);
      return w.req.onConnection(conn);
    }
    if (this.#closed) conn.close();
    else this.#free.push(conn);
  }

  gone(conn: Http1Connection): void {
    if (!this.#all.delete(conn)) return;
    const i = this.#free.indexOf(conn);
    if (i >= 0) this.#free.splice(i, 1);
    this.#o.connections.release();
    this.#pump();
    this.#checkClosed();
  }

  // ---- connections ----

  /** Hands waiting requests to free connections, opening new ones while the breaker admits. */
  #pump(): void {
    while (this.#queue.length > 0 && !this.#destroyed) {
      const conn = this.#takeFree();
      if (conn) {
        const w = this.#queue.shift()!;
        this.#unpend(w);
        w.req.onConnection(conn);
        continue;
      }
      const cx = this.#o.connections;
      if (this.#all.size + this.#connecting === 0) cx.forceAcquire();
      else if (!cx.tryAcquire()) break;
      this.#open(this.#queue.shift()!);
    }
  }

  /** The most recently freed connection the server has not (by its keep-alive hint) closed meanwhile. */
  #takeFree(): Http1Connection | undefined {
    let conn: Http1Connection | undefined;
    while ((conn = this.#free.pop()) && conn.expired) conn.close();
    return conn;
  }

  /** Opens a connection for `w`, which keeps its pending slot until the connection is up. */
  #open(w: Waiter): void {
    this.#connecting++;
    this.#opening.set(w.req, w);
    const o = this.#o;
    o.connect().then(
      (socket) => {
        this.#connecting--;
        this.#opening.delete(w.req);
        this.#unpend(w);
        if (this.#destroyed) {
          socket.destroy();
          o.connections.release();
          if (!w.cancelled) w.req.onPoolFailure(poolGone(o.cluster, 'destroyed'));
          this.#checkClosed();
          return;
        }
        const conn = new Http1Connection(socket, this, o.maxHeaderSize, o.maxRequestsPerConnection);
        if (o.idleTimeoutMs > 0) conn.setIdleTimeout(o.idleTimeoutMs);
        this.#all.add(conn);
        if (w.cancelled) this.free(conn);
        else w.req.onConnection(conn);
      },
      (err: unknown) => {
        this.#connecting--;
        this.#opening.delete(w.req);
        this.#unpend(w);
        o.connections.release();
        if (!w.cancelled) w.req.onPoolFailure(err instanceof ProxyError ? err : poolGone(o.cluster, String(err)));
        this.#pump();
        this.#checkClosed();
      },
    );
  }

  #unpend(w: Waiter): void {
    if (!w.pending) return;
    w.pending = false;
    this.#o.pending.release();
  }

  // ---- closing ----

  /** No new requests; waiting ones are still served; resolves once every connection has closed. */
  close(): Promise<void> {
    this.#closed = true;
    const p = new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    for (const c of this.#free.splice(0)) c.close();
    this.#checkClosed();
    return p;
  }

  /** Fails waiting requests and destroys every connection (requests on them fail with a reset). */
  destroy(): Promise<void> {
    this.#destroyed = true;
    this.#closed = true;
    const err = poolGone(this.#o.cluster, 'destroyed');
    for (const w of this.#queue.splice(0)) {
      this.#unpend(w);
      w.req.onPoolFailure(err);
    }
    const p = new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    for (const c of [...this.#all]) c.destroy();
    this.#checkClosed();
    return p;
  }

  #checkClosed(): void {
    if (!this.#closed || this.#all.size > 0 || this.#connecting > 0 || this.#queue.length > 0) return;
    for (const w of this.#closeWaiters.splice(0)) w();
  }
}

/** A request the pool could not take because it closed (cluster removed, host left): retryable, flag UF. */
function poolGone(cluster: string, why: string): ProxyError {
  return new ProxyError(ErrorCode.UPSTREAM_CONNECT_FAILURE, `upstream connect error: cluster ${cluster} pool ${why}`, {
    source: 'upstream',
    retryable: true,
    flag: ResponseFlag.UpstreamConnectionFailure,
  });
}
