// One downstream request/response (Envoy's ActiveStream): request header handling, the filter chain,
// route cache, local replies, timeouts, upgrade tunnels, stats and the access log at the end.
// Every failure ends as a local reply or a stream reset; nothing here throws into the codec.

import type { Duplex } from 'node:stream';
import type { LocalReplyOptions } from '../../filters/http/filter.ts';
import { ResponseFlag } from '../errors.ts';
import { logger } from '../log.ts';
import type { ResponseEncoder } from './codec.ts';
import { FilterManager, type FilterChainSink } from './filter-manager.ts';
import { StreamSink, type ConnectionInfo, type StreamOwner } from './connection-manager-types.ts';
import type { HeaderMap } from './headers.ts';
import { buildLocalReply } from './local-reply.ts';
import { mutateRequestHeaders, mutateResponseHeaders, removeHopByHop } from './request-headers.ts';
import type { RouteEntry, RouteStreamDuration } from './route-types.ts';
import { formatGrpcTimeout, parseGrpcTimeout } from './grpc-timeout.ts';
import { isGrpcContentType } from './grpc-content-type.ts';
import { newStreamInfo, type StreamInfo } from './stream-info.ts';
import { createFilters } from './filter-manager-callbacks.ts';
import { openTunnel, upgradeFilterChain } from './connection-manager-tunnel.ts';
import { startTimeout, type Timeout } from '../timeouts.ts';

const log = logger('http');

const NO_ROUTE = Symbol('no route');

export class ActiveStream {
  readonly info: StreamInfo;
  readonly #owner: StreamOwner;
  readonly #conn: ConnectionInfo;
  readonly #encoder: ResponseEncoder;
  /** Made when the filters are (an empty one for replies sent before that). */
  #fm: FilterManager | undefined;
  readonly #sink: FilterChainSink;
  #requestHeaders: HeaderMap | undefined;
  #route: RouteEntry | undefined | typeof NO_ROUTE = NO_ROUTE;
  #upgrade: string | undefined;
  #isGrpc = false;
  #isHead = false;
  #requestComplete = false;
  #done = false;
  #decodeAborted = false;
  #idleTimer: Timeout | undefined;
  #idleMs: number;
  #requestTimer: Timeout | undefined;
  /** The stream's max duration (HCM max_stream_duration, or the route's max_stream_duration / grpc-timeout). */
  #durationTimer: Timeout | undefined;
  #writableHandlers: ((writable: boolean) => void)[] | undefined;
  #aboveWatermark = false;
  #readDisables = 0;
  #tunnel: { upstream: Duplex; upstreamHead: Buffer } | undefined;
  /** Closes the open upgrade tunnel (its stream idle and max duration timeouts still run). */
  #tunnelClose: (() => void) | undefined;

  constructor(owner: StreamOwner, conn: ConnectionInfo, encoder: ResponseEncoder) {
    this.#owner = owner;
    this.#conn = conn;
    this.#encoder = encoder;
    const { remote, directRemote, local, connectionId, requestedServerName, downstreamTls } = conn;
    this.info = newStreamInfo({ downstreamRemote: remote, downstreamDirectRemote: directRemote, downstreamLocal: local, connectionId, protocol: encoder.protocol, requestedServerName, downstreamTls });
    this.#sink = new StreamSink(this);
    const s = owner.stats;
    s.rqTotal.inc();
    s.rqActive.inc();
    if (encoder.protocol === 'HTTP/2') s.rqHttp2Total.inc();
    else s.rqHttp1Total.inc();
    encoder.onWritable = (w) => this.#onCodecWritable(w);
    this.#idleMs = owner.cfg.streamIdleTimeoutMs;
    if (this.#idleMs > 0) this.#idleTimer = startTimeout(this.#idleMs, () => this.#onIdleTimeout());
    const rt = owner.cfg.requestTimeoutMs;
    if (rt > 0) this.#requestTimer = startTimeout(rt, () => this.#onRequestTimeout());
    const msd = owner.cfg.maxStreamDurationMs;
    if (msd > 0) this.#durationTimer = startTimeout(msd, () => this.#onMaxDuration());
  }

  get statPrefix(): string {
    return this.#owner.cfg.statPrefix;
  }
  get upgrade(): string | undefined {
    return this.#upgrade;
  }
  /** per_connection_buffer_limit_bytes of this stream's connection. */
  get bufferLimitBytes(): number {
    return this.#conn.bufferLimitBytes;
  }
  get done(): boolean {
    return this.#done;
  }

  // ---- from the codec ----

  /**
   * Request headers from the codec, pseudo-headers included. `upgrade` is set for an HTTP/1.1
   * upgrade request (the `upgrade` header's value). `reject` answers without running filters.
   */
  decodeHeaders(headers: HeaderMap, endStream: boolean, opts?: { upgrade?: string; reject?: { status: number; details: string; body: string } }): void {
    if (this.#done) return;
    this.#requestHeaders = headers;
    this.info.requestHeaders = headers;
    this.#isHead = headers.get(':method') === 'HEAD';
    this.#isGrpc = isGrpcContentType(headers.get('content-type'));
    if (endStream) this.#onRequestComplete();
    this.#touch();
    if (opts?.reject) {
      this.#decodeAborted = true;
      return this.sendLocalReply(opts.reject.status, opts.reject.body, { details: opts.reject.details });
    }
    const cfg = this.#owner.cfg;
    const upgradeType = opts?.upgrade?.toLowerCase();
    removeHopByHop(headers, upgradeType !== undefined);
    const rej = mutateRequestHeaders(headers, { cfg, info: this.info, remote: this.#conn.remote, tls: this.#conn.tls, localPort: this.#conn.local.port, localAddress: this.#conn.local.address, runtime: this.#owner.runtime });
    if (rej) {
      if (rej.details === 'absolute_path_rejected') this.#owner.stats.rqNonRelativePath.inc();
      this.#decodeAborted = true;
      return this.sendLocalReply(rej.status, rej.body, { details: rej.details, ...(rej.location ? { headers: { location: rej.location } } : {}) });
    }
    let chain = this.#owner.filters;
    if (upgradeType !== undefined) {
      const allowed = upgradeFilterChain(this.#owner, this.route(), upgradeType);
      if (!allowed) {
        this.#owner.stats.rqWsOnNonWsRoute.inc();
        this.#decodeAborted = true;
        return this.sendLocalReply(403, '', { details: 'upgrade_failed' });
      }
      this.#upgrade = upgradeType;
      chain = allowed;
    }
    this.#fm = new FilterManager(createFilters(this, chain), this.#sink, this.#conn.bufferLimitBytes);
    this.#fm.decodeHeaders(headers, endStream);
  }

  decodeData(data: Buffer, endStream: boolean): void {
    if (this.#done) return;
    this.info.bytesReceived += data.length;
    if (endStream) this.#onRequestComplete();
    this.#touch();
    if (!this.#decodeAborted) this.#mgr().decodeData(data, endStream);
  }

  decodeTrailers(trailers: HeaderMap): void {
    if (this.#done) return;
    this.#onRequestComplete();
    this.#touch();
    if (!this.#decodeAborted) this.#mgr().decodeTrailers(trailers);
  }

  /** The downstream went away (h1 connection closed, h2 RST_STREAM) before the response completed. */
  onDownstreamReset(reason: string): void {
    if (this.#done) return;
    this.#owner.stats.rqRxReset.inc();
    this.info.responseFlags.add(ResponseFlag.DownstreamConnectionTermination);
    this.info.terminationDetails ??= reason;
    this.#finish();
  }

  // ---- filter chain ----

  #mgr(): FilterManager {
    return (this.#fm ??= new FilterManager([], this.#sink, this.#conn.bufferLimitBytes));
  }

  route(): RouteEntry | undefined {
    if (this.#route !== NO_ROUTE) return this.#route;
    const h = this.#requestHeaders;
    const r = h ? this.#owner.cfg.routes.table?.match(h, this.info) : undefined;
    this.#route = r;
    this.info.routeName = r?.name;
    this.info.virtualHostName = r?.virtualHost.name;
    if (r?.action.kind === 'route') {
      if (r.action.idleTimeoutMs !== undefined) this.#setIdleTimeout(r.action.idleTimeoutMs);
      if (r.action.streamDuration !== undefined || this.#durationTimer !== undefined) this.#refreshDuration(r.action.streamDuration, h!);
    }
    return r;
  }

  clearRouteCache(): void {
    this.#route = NO_ROUTE;
  }

  continueDecoding(index: number): void {
    if (!this.#done && !this.#decodeAborted) this.#mgr().continueDecoding(index);
  }
  continueEncoding(index: number): void {
    if (!this.#done) this.#mgr().continueEncoding(index);
  }
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (!this.#done) this.#mgr().encodeHeaders(headers, endStream);
  }
  encodeData(data: Buffer, endStream: boolean): void {
    if (!this.#done) this.#mgr().encodeData(data, endStream);
  }
  encodeTrailers(trailers: HeaderMap): void {
    if (!this.#done) this.#mgr().encodeTrailers(trailers);
  }
  injectEncodedData(index: number, data: Buffer, endStream: boolean): void {
    this.#mgr().injectEncodedData(index, data, endStream);
  }

  setDecoderBufferLimit(bytes: number): void {
    this.#mgr().setDecoderBufferLimit(bytes);
  }

  bufferedRequestBody(): Buffer | undefined {
    return this.#mgr().bufferedRequestBody();
  }
  replaceBody(data: Buffer): boolean {
    return !this.#done && this.#mgr().replaceBody(data);
  }

  setDecoderReadable(readable: boolean): void {
    this.#readDisable(!readable);
  }

  #readDisable(disable: boolean): void {
    const before = this.#readDisables;
    this.#readDisables = Math.max(0, before + (disable ? 1 : -1));
    if (before === 0 && this.#readDisables === 1) this.#encoder.readDisable(true);
    else if (before === 1 && this.#readDisables === 0) this.#encoder.readDisable(false);
  }

  onDownstreamWritable(handler: (writable: boolean) => void): void {
    (this.#writableHandlers ??= []).push(handler);
  }

  #notifyWritable(writable: boolean): void {
    if (this.#aboveWatermark === !writable) return;
    this.#aboveWatermark = !writable;
    const hs = this.#writableHandlers;
    if (hs) for (const h of hs) h(writable);
  }

  #onCodecWritable(w: boolean): void {
    this.#touch();
    this.#notifyWritable(w);
  }

  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    if (this.#done) return;
    const info = this.info;
    if (opts?.flag) info.responseFlags.add(opts.flag);
    if (opts?.details !== undefined) info.responseCodeDetails = opts.details;
    if (this.#encoder.headersSent) {
      this.resetStream('local reply after the response started');
      return;
    }
    this.#decodeAborted = true;
    this.#mgr().abortDecoding();
    if (!this.#requestComplete) this.#encoder.closeConnectionAfter();
    const r = buildLocalReply(
      this.#owner.cfg.localReply,
      info,
      // As Envoy, from the request headers as filters left them (grpc_web makes a request gRPC).
      { isGrpc: this.#requestHeaders ? isGrpcContentType(this.#requestHeaders.get('content-type')) : this.#isGrpc, isHead: this.#isHead },
      status,
      body,
      opts ?? {},
    );
    const end = r.body === undefined;
    if (!this.#mgr().encodeStarted) {
      this.#mgr().encodeHeaders(r.headers, end);
      if (!end && !this.#done) this.#mgr().encodeData(r.body!, true);
    } else {
      // Encoder filters already saw a response: bypass them, as Envoy's sendDirectLocalReply does.
      this.#mgr().resetEncoding();
      this.encodeHeadersToCodec(r.headers, end);
      if (!end && !this.#done) this.encodeDataToCodec(r.body!, true);
    }
  }

  resetStream(reason: string): void {
    if (this.#done) return;
    this.#owner.stats.rqTxReset.inc();
    this.info.terminationDetails ??= reason;
    this.#encoder.reset(reason);
    this.#finish();
  }

  upgradeToTunnel(responseHeaders: HeaderMap, upstream: Duplex, upstreamHead: Buffer): void {
    if (this.#done || !this.#upgrade) {
      upstream.destroy();
      if (!this.#done) this.resetStream('upgrade without an upgrade request');
      return;
    }
    this.#tunnel = { upstream, upstreamHead };
    this.#mgr().encodeHeaders(responseHeaders, false);
  }

  // ---- the end of the encoder chain (StreamSink) ----

  bufferOverflow(decode: boolean): void {
    if (decode) {
      this.#owner.stats.rqTooLarge.inc();
      this.sendLocalReply(413, 'Payload Too Large', { details: 'request_payload_too_large' });
    } else {
      this.#owner.stats.rsTooLarge.inc();
      this.sendLocalReply(500, 'Internal Server Error', { details: 'response_payload_too_large' });
    }
  }

  watermark(decode: boolean, above: boolean): void {
    if (decode) this.#readDisable(above);
    else this.#notifyWritable(!above);
  }

  encodeHeadersToCodec(headers: HeaderMap, endStream: boolean): void {
    if (this.#done) return;
    const status = Number(headers.get(':status') ?? 0);
    const tunnel = this.#tunnel !== undefined && status === 101;
    mutateResponseHeaders(headers, this.#owner.cfg, this.#requestHeaders, tunnel);
    if (!tunnel && this.#owner.shouldCloseAfterResponse()) this.#encoder.closeConnectionAfter();
    if (endStream && !tunnel) this.#closeIfRequestIncomplete();
    this.info.responseHeaders = headers;
    this.info.responseCode = status;
    this.#owner.stats.chargeStatus(status);
    this.#encoder.encodeHeaders(headers, endStream && !tunnel);
    this.#touch();
    if (tunnel) return this.#startTunnel();
    if (this.#tunnel) {
      this.#tunnel.upstream.destroy();
      this.#tunnel = undefined;
    }
    if (endStream) this.#finish();
  }

  encodeDataToCodec(data: Buffer, endStream: boolean): void {
    if (this.#done) return;
    this.info.bytesSent += data.length;
    if (endStream) this.#closeIfRequestIncomplete();
    const writable = this.#encoder.encodeData(data, endStream);
    this.#touch();
    if (!writable) this.#notifyWritable(false);
    if (endStream) this.#finish();
  }

  encodeTrailersToCodec(trailers: HeaderMap): void {
    if (this.#done) return;
    this.info.responseTrailers = trailers;
    this.#closeIfRequestIncomplete();
    this.#encoder.encodeTrailers(trailers);
    this.#finish();
  }

  /**
   * The response ends before the request did: as Envoy's doEndStream, the stream is reset once the
   * response is out -- on HTTP/1.1 the connection closes after it (what the client still sends is
   * dropped: the codec's delayed close), on HTTP/2 the codec resets the stream with NO_ERROR.
   */
  #closeIfRequestIncomplete(): void {
    if (!this.#requestComplete && this.#tunnel === undefined) this.#encoder.closeConnectionAfter();
  }

  #startTunnel(): void {
    const t = this.#tunnel!;
    const down = this.#encoder.takeTunnel?.();
    if (!down) {
      t.upstream.destroy();
      return this.resetStream('no downstream connection to tunnel');
    }
    // The stream idle timeout (refreshed by tunnel traffic both ways) and the max stream duration
    // still bound an upgraded stream, as in Envoy; the request timeout is over.
    this.#onRequestComplete();
    this.#tunnelClose = openTunnel(down.socket, down.head, t.upstream, t.upstreamHead, this.info, () => this.#finish(), () => this.#touch());
  }

  // ---- timers and completion ----

  #touch(): void {
    this.#idleTimer?.refresh();
  }

  #setIdleTimeout(ms: number): void {
    this.#idleMs = ms;
    this.#idleTimer?.stop();
    this.#idleTimer = ms > 0 && !this.#done ? startTimeout(ms, () => this.#onIdleTimeout()) : undefined;
  }

  #onIdleTimeout(): void {
    if (this.#done) return;
    this.#owner.stats.rqIdleTimeout.inc();
    if (this.#tunnelClose) {
      this.info.responseFlags.add(ResponseFlag.StreamIdleTimeout);
      this.info.terminationDetails ??= 'stream idle timeout';
      return this.#tunnelClose();
    }
    if (this.#encoder.headersSent) {
      this.info.responseFlags.add(ResponseFlag.StreamIdleTimeout);
      this.resetStream('stream idle timeout');
    } else this.sendLocalReply(408, 'stream timeout', { details: 'stream_idle_timeout', flag: ResponseFlag.StreamIdleTimeout });
  }

  #onRequestTimeout(): void {
    if (this.#done || this.#requestComplete) return;
    this.#owner.stats.rqTimeout.inc();
    if (this.#encoder.headersSent) this.resetStream('request overall timeout');
    else this.sendLocalReply(408, 'request timeout', { details: 'request_overall_timeout' });
  }

  /**
   * Envoy's refreshDurationTimeout, once the route is known: a grpc-timeout header (capped by
   * grpc_timeout_header_max, less grpc_timeout_header_offset) when the route honours it, else the
   * route's max_stream_duration, else the HCM's; 0 disables. A gRPC request on such a route is told
   * its duration in grpc-timeout. The time the stream has already lived counts.
   */
  #refreshDuration(sd: RouteStreamDuration | undefined, headers: HeaderMap): void {
    const grpcMs = sd?.grpcHeaderMaxMs !== undefined ? parseGrpcTimeout(headers.get('grpc-timeout')) : undefined;
    let ms: number;
    if (grpcMs === undefined || sd?.grpcHeaderMaxMs === undefined) {
      ms = sd?.maxMs ?? this.#owner.cfg.maxStreamDurationMs;
      if (ms === 0) {
        if (this.#durationTimer !== undefined) {
          this.#durationTimer.stop();
          this.#durationTimer = undefined;
          if (sd !== undefined && this.#isGrpc) headers.remove('grpc-timeout');
        }
        return;
      }
    } else {
      ms = sd.grpcHeaderMaxMs > 0 && grpcMs > sd.grpcHeaderMaxMs ? sd.grpcHeaderMaxMs : grpcMs;
      if (ms !== 0 && sd.grpcHeaderOffsetMs > 0) ms = sd.grpcHeaderOffsetMs < ms ? ms - sd.grpcHeaderOffsetMs : 0;
    }
    if (sd !== undefined && this.#isGrpc) headers.set('grpc-timeout', formatGrpcTimeout(ms));
    const left = Math.max(0, Math.ceil(ms - (performance.now() - this.info.startMono)));
    this.#durationTimer?.stop();
    this.#durationTimer = startTimeout(left, () => this.#onMaxDuration());
  }

  /** 408 while the request is still arriving, 504 after (Envoy's maybeRequestTimeoutCode); gRPC: DEADLINE_EXCEEDED. */
  #onMaxDuration(): void {
    if (this.#done) return;
    this.#owner.stats.rqMaxDurationReached.inc();
    if (this.#tunnelClose) {
      this.info.terminationDetails ??= 'max stream duration reached';
      return this.#tunnelClose();
    }
    this.sendLocalReply(this.#requestComplete ? 504 : 408, 'downstream duration timeout', { details: 'max_duration_timeout', grpcStatus: 4 });
  }

  #onRequestComplete(): void {
    this.#requestComplete = true;
    if (this.#requestTimer) {
      this.#requestTimer.stop();
      this.#requestTimer = undefined;
    }
  }

  #clearTimers(): void {
    this.#idleTimer?.stop();
    this.#requestTimer?.stop();
    this.#durationTimer?.stop();
    this.#idleTimer = this.#requestTimer = this.#durationTimer = undefined;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimers();
    const info = this.info;
    const now = performance.now();
    info.lastDownstreamTxMono = now;
    info.durationMs = Math.round(now - info.startMono);
    const s = this.#owner.stats;
    s.rqActive.dec();
    s.rqCompleted.inc();
    s.rqTime.record(now - info.startMono);
    // Filters are destroyed once the current call stack (often a filter's own call) unwinds.
    const fm = this.#fm;
    if (fm) queueMicrotask(() => fm.destroy());
    const loggers = this.#owner.accessLoggers;
    for (let i = 0; i < loggers.length; i++) {
      try {
        loggers[i]!.log(info);
      } catch (e) {
        if (log.enabled('error')) log.error(`access log: ${(e as Error).message}`);
      }
    }
    this.#owner.streamDone(this);
    this.#encoder.onWritable = undefined;
    this.#encoder.release?.();
  }
}
