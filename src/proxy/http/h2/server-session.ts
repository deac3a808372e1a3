// legate's HTTP/2 server connection, in place of node:http2 for downstream connections: streams
// opened by the client's HEADERS, requests checked as nghttp2 checks them (validate.ts), responses
// sent from response-encoder.ts. The frames, windows and batching are the shared session's
// (session.ts).
//
// Scope: no server push; PRIORITY frames are read and ignored; extended CONNECT (RFC 8441) when
// allow_connect is set, its streams tunnelled as Duplex streams (tunnel.ts).

import type { Socket } from 'node:net';
import { ErrorCode, FrameType, PREFACE, Setting, settingsFrame, u32Frame } from './frames.ts';
import { ConnectionError, H2Session, type H2CodecEvent, type H2ConnectionOptions, type HeaderBlock } from './session.ts';
import { H2Stream } from './stream.ts';
import { checkRequest } from './validate.ts';

export type { H2CodecEvent } from './session.ts';

export interface H2SessionOptions extends H2ConnectionOptions {
  readonly maxConcurrentStreams: number;
  /** More header fields than this reset the stream. */
  readonly maxHeaderPairs: number;
  /** SETTINGS_ENABLE_CONNECT_PROTOCOL: extended CONNECT (`:protocol`) requests are accepted. */
  readonly enableConnectProtocol: boolean;
}

/** What the session tells its owner. */
export interface H2SessionEvents {
  /** A well-formed request: its headers as [name, value, ...]. */
  onStream(stream: H2Stream, raw: string[], endStream: boolean): void;
  /** Envoy's codec stats: a malformed request, a reset each way, an oversized header list, a flood. */
  onCodecEvent(event: H2CodecEvent): void;
}

/**
 * Envoy's premature-reset guard (overload.premature_reset_total_stream_count): once a connection
 * has opened this many streams, it is closed when the client reset at least half of them before
 * their response ended (the "rapid reset" attack: streams opened and cancelled at once).
 */
const PREMATURE_RESET_MIN_STREAMS = 500;

export class H2ServerSession extends H2Session<H2Stream> {
  readonly #opts: H2SessionOptions;
  readonly #onStream: H2SessionEvents['onStream'];
  /** Streams opened, and of them reset by the client before this side ended them. */
  #opened = 0;
  #prematureResets = 0;

  constructor(socket: Socket, opts: H2SessionOptions, events: H2SessionEvents) {
    const settings = settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, opts.maxConcurrentStreams],
      [Setting.INITIAL_WINDOW_SIZE, opts.initialWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderListSize],
      ...(opts.enableConnectProtocol ? [[Setting.ENABLE_CONNECT_PROTOCOL, 1] as const] : []),
    ]);
    super(socket, opts, (e) => events.onCodecEvent(e), settings, PREFACE);
    this.#opts = opts;
    this.#onStream = events.onStream;
  }

  protected isIdle(id: number): boolean {
    return id > this.lastStreamId;
  }

  protected onHeaderBlock(id: number, b: HeaderBlock): void {
    const existing = this.streams.get(id);
    if (existing) return this.receiveTrailers(existing, b.raw, b.end);
    if (id <= this.lastStreamId || (id & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
    this.lastStreamId = id;
    if (this.goaway) return; // after GOAWAY new streams are ignored (RFC 9113 §6.8)
    if (b.tooLarge || b.raw.length / 2 > this.#opts.maxHeaderPairs) {
      this.codecEvent('header_overflow');
      return this.resetId(id, ErrorCode.ENHANCE_YOUR_CALM);
    }
    if (b.selfDependent) return this.resetId(id, ErrorCode.PROTOCOL_ERROR);
    if (this.active >= this.#opts.maxConcurrentStreams) return this.resetId(id, ErrorCode.REFUSED_STREAM);
    const check = checkRequest(b.raw, this.#opts.enableConnectProtocol);
    if (check.error !== undefined || (b.end && check.contentLength > 0)) {
      this.codecEvent('rx_messaging_error');
      return this.resetId(id, ErrorCode.PROTOCOL_ERROR);
    }
    const s = new H2Stream(id, this.peerInitialWindow, this.#opts.initialWindowSize, check.contentLength);
    s.remoteEnded = b.end;
    this.streams.set(id, s);
    this.active++;
    this.#opened++;
    this.#onStream(s, b.raw, b.end);
  }

  protected onGoaway(): void {
    // The client will open no more streams; those open finish.
    if (this.active === 0) this.finish();
  }

  protected override onPeerReset(s: H2Stream): void {
    if (!s.localEnded && ++this.#prematureResets * 2 >= this.#opened && this.#opened >= PREMATURE_RESET_MIN_STREAMS) {
      this.codecEvent('too_many_premature_resets');
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams reset by the client');
    }
  }

  /** After a complete response to a request still open, the client is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
  protected override onLocalEnd(s: H2Stream): void {
    if (s.remoteEnded) return this.closeStream(s);
    this.w.queue(u32Frame(FrameType.RST_STREAM, s.id, ErrorCode.NO_ERROR));
    this.closeStream(s);
  }

  /** Response headers; `end`: they are the whole response. */
  respond(s: H2Stream, raw: readonly string[], end: boolean): void {
    if (s.closed) return;
    this.sendHeaders(s, raw, end);
  }
}
