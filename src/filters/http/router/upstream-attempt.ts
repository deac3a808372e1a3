// One try of a request against one host (Envoy's UpstreamRequest as the router holds it): the
// UpstreamRequest, its accounting, its per-try and per-try idle timers, and the single
// outlier-detection result it reports. As in Envoy's connection pools, the accounting starts when
// the request gets its connection (onPoolReady): the max_requests breaker is taken then (a request
// waiting for a connection counts against max_pending_requests only), and upstream_rq_total/active
// and the host's active requests count from there. Events go to the router tagged with the
// attempt, so retries and hedged attempts never mix. Never throws.

import type { Duplex } from 'node:stream';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ProxyError } from '../../../proxy/errors.ts';
import { overflowError } from '../../../proxy/upstream/circuit-breakers.ts';
import type { Cluster, Host, ResourceLimit, UpstreamResult } from '../../../proxy/upstream/types.ts';
import type { TlsConnectionInfo } from '../../../proxy/tls/types.ts';
import type { ClusterRouterStats } from './stats.ts';
import type { UpstreamRequest, UpstreamSink } from './upstream-request.ts';
import { startTimeout, type Timeout } from '../../../proxy/timeouts.ts';

/** What an attempt tells the router (UpstreamSink, with the attempt that saw it). */
export interface AttemptOwner {
  onAttemptHeaders(a: UpstreamAttempt, headers: HeaderMap, endStream: boolean): void;
  onAttemptData(a: UpstreamAttempt, data: Buffer, endStream: boolean): void;
  onAttemptTrailers(a: UpstreamAttempt, trailers: HeaderMap): void;
  onAttemptError(a: UpstreamAttempt, err: ProxyError): void;
  onAttemptWritable(a: UpstreamAttempt, writable: boolean): void;
  onAttemptUpgrade(a: UpstreamAttempt, headers: HeaderMap, socket: Duplex, head: Buffer): void;
  /** per_try_timeout (idle false) or per_try_idle_timeout (idle true) expired. */
  onAttemptTimeout(a: UpstreamAttempt, idle: boolean): void;
  /** The cluster's max_stream_duration expired (counted already). */
  onAttemptMaxDuration(a: UpstreamAttempt): void;
}

export class UpstreamAttempt implements UpstreamSink {
  readonly host: Host;
  /** 1 for the first try. */
  readonly number: number;
  readonly startMono = performance.now();
  request: UpstreamRequest | undefined;
  /** Response headers arrived. */
  headersReceived = false;
  /** A hedged attempt was started off this one's per-try timeout (Envoy's retried()). */
  hedged = false;
  /** The upstream cannot take more request body right now. */
  blocked = false;
  /** The TLS session of the connection this attempt got (StreamInfo.upstreamTls); undefined = plaintext. */
  tls: TlsConnectionInfo | undefined;
  readonly #owner: AttemptOwner;
  readonly #cluster: Cluster;
  readonly #stats: ClusterRouterStats;
  #active = true;
  #reported = false;
  #perTryTimer: Timeout | undefined;
  /** The cluster's common_http_protocol_options.max_stream_duration, from the connection on. */
  #durationTimer: Timeout | undefined;
  #idleTimer: Timeout | undefined;
  #idleMs = 0;
  /** The request has its connection: the per-try timeouts run from here (Envoy's onPoolReady). */
  #ready = false;
  /** per_try_timeout asked for before the connection was ready, ms. */
  #perTryMs = 0;
  /** The max_requests breaker, taken when the request gets its connection. */
  readonly #requests: ResourceLimit;
  /** Holding a max_requests slot and counted as an active request (from onUpstreamReady to release()). */
  #attached = false;
  /** The max_requests slot was given back when the stream ended (before release()). */
  #slotReleased = false;

  constructor(owner: AttemptOwner, cluster: Cluster, host: Host, number: number, stats: ClusterRouterStats, requests: ResourceLimit) {
    this.#owner = owner;
    this.#cluster = cluster;
    this.host = host;
    this.number = number;
    this.#stats = stats;
    this.#requests = requests;
  }

  get active(): boolean {
    return this.#active;
  }

  /**
   * Starts per_try_timeout once the whole downstream request is in (the router calls this then) and
   * the request has its connection, as Envoy does: connecting is bounded by connect_timeout instead.
   */
  armPerTry(ms: number): void {
    if (ms <= 0 || !this.#active || this.#perTryTimer !== undefined || this.headersReceived) return;
    if (!this.#ready) {
      this.#perTryMs = ms;
      return;
    }
    this.#perTryTimer = startTimeout(ms, () => {
      this.#perTryTimer = undefined;
      if (this.#active) this.#owner.onAttemptTimeout(this, false);
    });
  }

  /** Starts per_try_idle_timeout (once the request has its connection), reset by every response event. */
  armIdle(ms: number): void {
    if (ms <= 0) return;
    this.#idleMs = ms;
    if (this.#ready) this.#touch();
  }

  clearPerTry(): void {
    if (this.#perTryTimer !== undefined) {
      this.#perTryTimer.stop();
      this.#perTryTimer = undefined;
    }
  }

  #touch(): void {
    if (this.#idleMs <= 0 || !this.#active || !this.#ready) return;
    if (this.#idleTimer !== undefined) this.#idleTimer.refresh();
    else
      this.#idleTimer = startTimeout(this.#idleMs, () => {
        this.#idleTimer = undefined;
        if (this.#active) this.#owner.onAttemptTimeout(this, true);
      });
  }

  /** The outcome for outlier detection, once per attempt. */
  report(result: UpstreamResult): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#cluster.reportResult(this.host, result);
  }

  /** Resets the upstream request (tx reset) and ends the accounting. */
  abort(): void {
    if (!this.#active) return;
    this.request?.abort();
    this.#stats.rqTxReset.inc();
    this.release(false);
  }

  /** Ends the accounting and the timers exactly once; `completed` records upstream_rq_time. */
  release(completed: boolean, dynamicStats = true): void {
    if (!this.#active) return;
    this.#active = false;
    this.clearPerTry();
    this.#idleTimer?.stop();
    this.#idleTimer = undefined;
    this.#durationTimer?.stop();
    this.#durationTimer = undefined;
    if (!this.#attached) return;
    this.#attached = false;
    if (!this.#slotReleased) this.#requests.release();
    this.#stats.rqActive.dec();
    this.host.activeRequests--;
    if (completed && dynamicStats) this.#stats.rqTime.record(performance.now() - this.startMono);
  }

  // ---- UpstreamSink ----

  onUpstreamHeaders(headers: HeaderMap, endStream: boolean): void {
    if (!this.#active) return;
    this.headersReceived = true;
    this.clearPerTry();
    this.#touch();
    this.#owner.onAttemptHeaders(this, headers, endStream);
  }

  onUpstreamData(data: Buffer, endStream: boolean): void {
    if (!this.#active) return;
    this.#touch();
    this.#owner.onAttemptData(this, data, endStream);
  }

  onUpstreamTrailers(trailers: HeaderMap): void {
    if (this.#active) this.#owner.onAttemptTrailers(this, trailers);
  }

  onUpstreamError(err: ProxyError): void {
    if (this.#active) this.#owner.onAttemptError(this, err);
  }

  onUpstreamWritable(writable: boolean): void {
    this.blocked = !writable;
    if (this.#active) this.#owner.onAttemptWritable(this, writable);
  }

  onUpstreamTls(info: TlsConnectionInfo): void {
    this.tls = info;
  }

  /** The stream ended (HTTP/1.1 response complete): the max_requests slot goes back before the connection takes the next request, as in Envoy's pools. */
  onUpstreamStreamDone(): void {
    if (!this.#attached || this.#slotReleased) return;
    this.#slotReleased = true;
    this.#requests.release();
  }

  /**
   * The request has its connection: false when max_requests is full, and the request must give the
   * connection back unused; the router then answers 503 UO (Envoy's overflow at attach, not retried).
   */
  onUpstreamReady(): boolean {
    if (!this.#active) return false;
    if (!this.#requests.tryAcquire()) {
      const err = overflowError(this.#cluster.info.name, 'max requests');
      queueMicrotask(() => {
        if (this.#active) this.#owner.onAttemptError(this, err);
      });
      return false;
    }
    this.#attached = true;
    this.#stats.rqTotal.inc();
    this.#stats.rqActive.inc();
    this.host.activeRequests++;
    this.#ready = true;
    const maxMs = this.#cluster.info.maxStreamDurationMs ?? 0;
    if (maxMs > 0) {
      this.#durationTimer = startTimeout(maxMs, () => {
        this.#durationTimer = undefined;
        if (!this.#active) return;
        this.#stats.rqMaxDurationReached.inc();
        this.#owner.onAttemptMaxDuration(this);
      });
    }
    if (this.#perTryMs > 0) this.armPerTry(this.#perTryMs);
    this.#touch();
    return true;
  }

  onUpstreamUpgrade(headers: HeaderMap, socket: Duplex, head: Buffer): void {
    if (!this.#active) {
      socket.destroy();
      return;
    }
    this.headersReceived = true;
    this.#owner.onAttemptUpgrade(this, headers, socket, head);
  }
}
