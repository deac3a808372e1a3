// legate's HTTP/2 client connection, for upstream HTTP/2 (gRPC clusters, http2_protocol_options):
// this side opens streams (odd ids) with its request's HEADERS, reads the response's head (1xx
// skipped, checked as nghttp2's client checks it), body and trailers through the stream's sink,
// and stops opening streams at the server's GOAWAY, whose unprocessed streams are reset with
// REFUSED_STREAM (safe to retry: the server never saw them). The frames, windows and batching are
// the shared session's (session.ts).

import type { Socket } from 'node:net';
import { ErrorCode, PREFACE, Setting, settingsFrame } from './frames.ts';
import { ConnectionError, H2Session, type H2CodecEvent, type H2ConnectionOptions, type HeaderBlock } from './session.ts';
import { H2Stream, type H2StreamSink } from './stream.ts';
import { checkResponseHead } from './validate.ts';

/** Where a client stream's response goes. */
export interface H2ResponseSink extends H2StreamSink {
  /** The final response head ([name, value, ...], `:status` first); `end`: no body follows. */
  headers(raw: string[], end: boolean): void;
  /**
   * The stream waited for the stream limit and never left this side: the connection got GOAWAY or
   * closed first. What was sent on it is still in its `queue`; it may go again on another
   * connection. Without this method the sink gets streamReset (REFUSED_STREAM, or no code).
   */
  unsent?(): void;
}

/** The value of `name` in a header list as a sink gets it ([name, value, ...]), or undefined. */
export function fieldOf(raw: readonly string[] | undefined, name: string): string | undefined {
  if (raw) for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
}

export class H2ClientStream extends H2Stream<H2ResponseSink> {
  /** The final response head arrived (DATA before it is a stream error). */
  responded = false;
  /** A HEAD request: the response's content-length describes no body. */
  head = false;
  /** While the stream waits for the connection's stream limit (id 0): its request head, and trailers given meanwhile. */
  waiting: { readonly raw: readonly string[]; readonly end: boolean; trailers?: readonly string[] } | undefined;
}

export interface H2ClientOptions extends H2ConnectionOptions {
  /** Streams this side opens at most at once (the server's SETTINGS_MAX_CONCURRENT_STREAMS applies too). */
  readonly maxConcurrentStreams?: number;
  /** Streams opened on the connection in all (max_requests_per_connection); then it closes once idle. 0: no limit. */
  readonly maxRequests?: number;
  /**
   * The cluster's max_pending_requests count: a stream that waits here for the stream limit holds
   * one, as Envoy's pending requests do (the pool checked the limit before it chose the session).
   */
  readonly pendingRequests?: { forceAcquire(): void; release(): void };
}

export interface H2ClientEvents {
  onCodecEvent(event: H2CodecEvent): void;
  /** The server sent GOAWAY: no new streams here. */
  onGoaway(): void;
}

export class H2ClientSession extends H2Session<H2ClientStream> {
  readonly #opts: H2ClientOptions;
  readonly #onGoaway: () => void;
  #nextId = 1;
  /** Streams past the limit, waiting to be opened in order. */
  readonly #waiting: H2ClientStream[] = [];

  constructor(socket: Socket, opts: H2ClientOptions, events: H2ClientEvents) {
    const settings = settingsFrame([
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, opts.initialWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderListSize],
    ]);
    super(socket, opts, (e) => events.onCodecEvent(e), settings, undefined, PREFACE);
    this.#opts = opts;
    this.#onGoaway = events.onGoaway;
  }

  /** Streams open at once at most: this side's limit and the server's. */
  get #limit(): number {
    return Math.min(this.#opts.maxConcurrentStreams ?? Infinity, this.peerMaxConcurrentStreams);
  }

  /** Streams this side may still open on the connection without waiting (its limit, the server's, max_requests_per_connection, and stream ids left). */
  get capacity(): number {
    if (this.closed || this.#nextId > 0x7fffffff) return 0;
    const max = this.#opts.maxRequests ?? 0;
    const left = Math.min((0x7fffffff - this.#nextId) / 2 + 1, max > 0 ? max - (this.#nextId - 1) / 2 - this.#waiting.length : Infinity);
    return Math.max(0, Math.min(this.#limit - this.active - this.#waiting.length, left));
  }

  /**
   * A stream with the request head `raw` ([name, value, ...], pseudo-headers first); `end`: no body
   * follows. Past the stream limit it waits (id 0, what is sent on it queued) until a stream closes,
   * as nghttp2 queues streams past the server's limit. Undefined once the session is closed or has
   * had its max_requests_per_connection.
   */
  request(raw: readonly string[], end: boolean, sink: H2ResponseSink): H2ClientStream | undefined {
    const max = this.#opts.maxRequests ?? 0;
    if (this.closed || this.#nextId > 0x7fffffff || (max > 0 && (this.#nextId - 1) / 2 + this.#waiting.length >= max)) return undefined;
    this.keepalive?.beforeStream();
    const s = new H2ClientStream(0, this.peerInitialWindow, this.#opts.initialWindowSize, -1);
    s.sink = sink;
    s.head = raw[1] === 'HEAD';
    if (this.active < this.#limit && this.#waiting.length === 0) this.#open(s, raw, end);
    else {
      s.waiting = { raw, end };
      this.#waiting.push(s);
      this.#opts.pendingRequests?.forceAcquire();
    }
    return s;
  }

  #open(s: H2ClientStream, raw: readonly string[], end: boolean): void {
    s.id = this.#nextId;
    this.#nextId += 2;
    this.lastStreamId = s.id;
    s.sendWindow = this.peerInitialWindow;
    this.streams.set(s.id, s);
    this.active++;
    this.sendHeaders(s, raw, end);
  }

  /** Opens the streams that waited, as far as the limit allows. */
  #openWaiting(): void {
    while (this.#waiting.length > 0 && this.active < this.#limit && !this.closed && this.#nextId <= 0x7fffffff) {
      const s = this.#waiting.shift()!;
      const w = s.waiting!;
      s.waiting = undefined;
      this.#opts.pendingRequests?.release();
      // What was sent meanwhile is queued on the stream: HEADERS end it only when nothing was.
      this.#open(s, w.raw, w.end);
      if (w.trailers) {
        s.queueEnd = false;
        this.sendTrailers(s, w.trailers);
      } else this.flush(s);
    }
  }

  /** The streams still waiting will not be opened here: unsent(), or a reset with `code` (REFUSED_STREAM, or undefined: the connection is gone). */
  #failWaiting(reason: string, code: number | undefined): void {
    for (const s of this.#waiting.splice(0)) {
      s.waiting = undefined;
      s.closed = true;
      this.#opts.pendingRequests?.release();
      if (s.sink?.unsent) s.sink.unsent();
      else s.sink?.streamReset(reason, code);
    }
  }

  override sendTrailers(s: H2ClientStream, raw: readonly string[]): void {
    if (s.waiting && !s.queueEnd && !s.closed) {
      s.waiting.trailers = raw;
      s.queueEnd = true;
      return;
    }
    super.sendTrailers(s, raw);
  }

  protected override reset(s: H2ClientStream, code: number): void {
    if (!s.waiting) return super.reset(s, code);
    // Never sent: no RST_STREAM, the stream just leaves the queue.
    this.#waiting.splice(this.#waiting.indexOf(s), 1);
    s.waiting = undefined;
    s.closed = true;
    this.#opts.pendingRequests?.release();
    s.sink?.streamReset(`stream reset (code ${code})`, code, true);
  }

  protected override closeStream(s: H2ClientStream): void {
    super.closeStream(s);
    this.#openWaiting();
    // Its max_requests_per_connection used and idle: the connection closes (GOAWAY).
    const max = this.#opts.maxRequests ?? 0;
    if (max > 0 && this.active === 0 && this.#waiting.length === 0 && (this.#nextId - 1) / 2 >= max) this.close();
  }

  protected override onSettings(): void {
    this.#openWaiting();
  }

  protected override onClosed(): void {
    this.#failWaiting('connection closed', undefined);
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id >= this.#nextId; // the server opens no streams
  }

  protected override acceptsData(s: H2ClientStream): boolean {
    return s.responded;
  }

  protected onHeaderBlock(id: number, b: HeaderBlock): void {
    const s = this.streams.get(id);
    if (!s) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS on stream ${id}, never opened`);
      return; // a stream this side reset: the block only updated the table
    }
    if (b.tooLarge) {
      this.codecEvent('header_overflow');
      return this.reset(s, ErrorCode.INTERNAL_ERROR);
    }
    if (s.responded) return this.receiveTrailers(s, b.raw, b.end);
    const check = checkResponseHead(b.raw);
    if (check.error !== undefined || check.status === 101 || (check.status < 200 && b.end)) {
      this.codecEvent('rx_messaging_error');
      return this.reset(s, ErrorCode.PROTOCOL_ERROR);
    }
    if (check.status < 200) return; // 1xx: the final head follows
    s.responded = true;
    if (!s.head && check.status !== 204 && check.status !== 304) s.contentLength = check.contentLength;
    if (b.end) {
      if (s.contentLength > 0) {
        this.codecEvent('rx_messaging_error');
        return this.reset(s, ErrorCode.PROTOCOL_ERROR);
      }
      s.remoteEnded = true;
    }
    s.sink?.headers(b.raw, b.end);
    if (b.end && s.localEnded) this.closeStream(s);
  }

  protected onGoaway(lastStreamId: number): void {
    this.goaway = true;
    this.#failWaiting('not sent before the server sent GOAWAY', ErrorCode.REFUSED_STREAM);
    for (const s of this.streams.values()) {
      if (s.id <= lastStreamId) continue;
      s.held = undefined;
      this.closeStream(s);
      s.sink?.streamReset('not processed before the server sent GOAWAY', ErrorCode.REFUSED_STREAM);
    }
    this.#onGoaway();
    if (this.active === 0) this.finish();
  }

  /** A client's GOAWAY names the last stream the server opened: none. */
  protected override goawayLastStreamId(): number {
    return 0;
  }
}
