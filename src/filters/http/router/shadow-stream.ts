// One mirrored (shadow) request: an upstream request to the shadow cluster whose response is read
// and thrown away. It only counts what happens (the shadow cluster's upstream_rq_* stats) and never
// reports back: errors, the route timeout and a shadow that cannot keep up end it quietly.

import type { Duplex } from 'node:stream';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { ErrorCode, type ProxyError } from '../../../proxy/errors.ts';
import type { Cluster, Host, ResourceLimit } from '../../../proxy/upstream/types.ts';
import type { ClusterRouterStats } from './stats.ts';
import { startHttp1Request } from './upstream-request-http1.ts';
import { startHttp2Request } from './upstream-request-http2.ts';
import type { UpstreamRequest, UpstreamSink } from './upstream-request.ts';
import { type LongTimer, setLongTimeout } from '../../../proxy/long-timers.ts';

export interface ShadowStreamOptions {
  readonly cluster: Cluster;
  readonly host: Host;
  readonly stats: ClusterRouterStats;
  /** The request slot taken from the cluster's circuit breaker; released exactly once. */
  readonly slot: ResourceLimit;
  readonly http2: boolean;
  /** Route timeout, ms, armed once the whole request was sent; 0 disables. */
  readonly timeoutMs: number;
  /** Bytes the shadow may hold beyond its upstream's own buffer before it is dropped. */
  readonly bufferLimitBytes: number;
  readonly dynamicStats: boolean;
  /** Called when the shadow is dropped for falling behind the main request's body. */
  readonly onAbandoned: () => void;
}

export class ShadowStream implements UpstreamSink {
  readonly #o: ShadowStreamOptions;
  readonly #req: UpstreamRequest;
  readonly #startMono = performance.now();
  #requestComplete = false;
  /** Response complete, failed, timed out or dropped: nothing more happens. */
  #done = false;
  #blocked = false;
  #blockedBytes = 0;
  #timer: LongTimer | undefined;

  constructor(headers: HeaderMap, endStream: boolean, o: ShadowStreamOptions) {
    this.#o = o;
    o.host.activeRequests++;
    o.stats.rqTotal.inc();
    o.stats.rqActive.inc();
    this.#req = o.http2 ? startHttp2Request(() => o.cluster.http2Session(o.host), headers, endStream, this) : startHttp1Request(o.cluster.http1Pool(o.host), headers, endStream, this);
    if (endStream) this.#onRequestComplete();
  }

  /** The request (body) has been sent in full. */
  get requestComplete(): boolean {
    return this.#requestComplete;
  }

  get done(): boolean {
    return this.#done;
  }

  sendData(data: Buffer, endStream: boolean): void {
    if (this.#done || this.#requestComplete) return;
    if (this.#blocked) {
      // The shadow upstream is slower than the main one: buffer up to the limit, then give up.
      this.#blockedBytes += data.length;
      if (this.#blockedBytes > this.#o.bufferLimitBytes) {
        this.#o.onAbandoned();
        this.#reset();
        return;
      }
    }
    this.#req.sendData(data, endStream);
    if (endStream) this.#onRequestComplete();
  }

  sendTrailers(trailers: HeaderMap): void {
    if (this.#done || this.#requestComplete) return;
    this.#req.sendTrailers(trailers);
    this.#onRequestComplete();
  }

  /** Resets the shadow (the downstream went away before the request was complete). */
  abort(): void {
    if (!this.#done) this.#reset();
  }

  // ---- UpstreamSink: the response is consumed and dropped ----

  onUpstreamHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#done) return;
    const status = Number(headers.get(':status'));
    if (this.#o.dynamicStats) this.#o.stats.chargeCode(status);
    this.#o.cluster.reportResult(this.#o.host, { kind: 'http', status });
    if (endStream) this.#complete();
  }

  onUpstreamData(_data: Buffer, endStream: boolean): void {
    if (endStream && !this.#done) this.#complete();
  }

  onUpstreamTrailers(_trailers: HeaderMap): void {
    if (!this.#done) this.#complete();
  }

  onUpstreamError(err: ProxyError): void {
    if (this.#done) return;
    const s = this.#o.stats;
    if (err.code === ErrorCode.UPSTREAM_RESET) s.rqRxReset.inc();
    const connect = err.code === ErrorCode.UPSTREAM_CONNECT_FAILURE || err.code === ErrorCode.UPSTREAM_CONNECT_TIMEOUT;
    this.#o.cluster.reportResult(this.#o.host, { kind: 'local', failure: connect ? 'connect_failure' : 'reset' });
    if (this.#o.dynamicStats) s.chargeCode(err.code === ErrorCode.UPSTREAM_PROTOCOL_ERROR ? 502 : 503);
    this.#finish(false);
  }

  onUpstreamWritable(writable: boolean): void {
    this.#blocked = !writable;
    if (writable) this.#blockedBytes = 0;
  }

  onUpstreamUpgrade(_headers: HeaderMap, socket: Duplex, _head: Buffer): void {
    socket.destroy(); // upgrade requests are never shadowed; a 101 here is not ours to keep
    if (!this.#done) this.#finish(false);
  }

  // ---- internals ----

  /** Envoy's async client arms the route timeout once the request is complete. */
  #onRequestComplete(): void {
    this.#requestComplete = true;
    if (this.#o.timeoutMs > 0 && !this.#done) {
      this.#timer = setLongTimeout(() => this.#onTimeout(), this.#o.timeoutMs);
      // A shadow never keeps the process alive on its own.
      this.#timer.unref();
    }
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#done) return;
    const s = this.#o.stats;
    s.rqTimeout.inc();
    this.#o.cluster.reportResult(this.#o.host, { kind: 'local', failure: 'timeout' });
    if (this.#o.dynamicStats) s.chargeCode(504);
    this.#reset();
  }

  /** Tx reset: abort the upstream request and end the accounting. */
  #reset(): void {
    this.#req.abort();
    this.#o.stats.rqTxReset.inc();
    this.#finish(false);
  }

  #complete(): void {
    this.#finish(true);
  }

  #finish(completed: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) {
      this.#timer?.clear();
      this.#timer = undefined;
    }
    const o = this.#o;
    o.stats.rqActive.dec();
    o.host.activeRequests--;
    o.slot.release();
    if (completed && o.dynamicStats) o.stats.rqTime.record(performance.now() - this.#startMono);
  }
}
