// legate's HTTP/2 connection (RFC 9113) on a socket, the part both sides share: frames parsed from
// the socket's reads, header blocks (HEADERS, CONTINUATION, HPACK in hpack.ts), flow control both
// ways, SETTINGS, PING, RST_STREAM, GOAWAY, Envoy's flood guards on what the peer sends, and every
// frame written in one batch per turn of the event loop (frame-writer.ts). The server
// (server-session.ts) and the client (client-session.ts) say what a header block means and who
// opens streams. Per stream it costs no Duplex, no headers object and no nextTick chain: under h2c
// load node:http2 and its streams were about half of a worker's busy time.

import type { Socket } from 'node:net';
import { FrameWriter } from './frame-writer.ts';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.ts';
import { DEFAULT_MAX_FRAME, DEFAULT_WINDOW, ErrorCode, FRAME_HEADER, Flag, FrameType, MAX_WINDOW, Setting, frame, goawayFrame, u32Frame, writeFrameHeader } from './frames.ts';
import type { H2Stream, H2StreamSink } from './stream.ts';
import { checkTrailers } from './validate.ts';
import { Keepalive, type KeepaliveOptions } from './keepalive.ts';
import { IdTable } from '../../id-table.ts';

export interface H2ConnectionOptions {
  /** SETTINGS_INITIAL_WINDOW_SIZE this side announces (each stream's receive window). */
  readonly initialWindowSize: number;
  /** The connection's receive window (raised from 65,535 by a WINDOW_UPDATE at start). */
  readonly connectionWindowSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a longer header list from the peer resets the stream. */
  readonly maxHeaderListSize: number;
  /** connection_keepalive: PINGs, and the connection aborted when one goes unanswered. */
  readonly keepalive?: KeepaliveOptions | undefined;
}

export type H2CodecEvent =
  | 'rx_messaging_error'
  | 'rx_reset'
  | 'tx_reset'
  | 'header_overflow'
  | 'outbound_control_flood'
  | 'inbound_empty_frames_flood'
  | 'too_many_premature_resets'
  | 'protocol_error'
  | 'keepalive_timeout';

/** A header block from the peer, decoded. */
export interface HeaderBlock {
  readonly raw: string[];
  /** Over maxHeaderListSize (the fields were decoded for the table's sake, then dropped). */
  readonly tooLarge: boolean;
  readonly end: boolean;
  /** HEADERS with a priority that names its own stream (a stream error, RFC 9113 §5.3.1). */
  readonly selfDependent: boolean;
}

/** Body bytes a stream may queue (waiting for send window) before sendData says stop. */
const STREAM_HIGH_WATER = 64 * 1024;
/** Output not yet taken by the kernel past which a peer that only reads control frames is cut off. */
const FLOOD_BYTES = 8 * 1024 * 1024;
/** Header block fragments (HEADERS + CONTINUATION) past this close the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** CONTINUATION frames one header block may take (a flood of empty ones adds no bytes). */
const MAX_CONTINUATIONS = 128;
/** A DATA frame with no payload and no END_STREAM in a row past this is a flood (Envoy's max_consecutive_inbound_frames_with_empty_payload: 1). */
const MAX_EMPTY_DATA = 1;
/** Seconds after this side ended the connection before the socket is destroyed if the peer keeps it open. */
const CLOSE_GRACE_MS = 1000;
/** Payloads up to this size are copied into their frame's buffer; larger ones are written as they are. */
const COPY_PAYLOAD = 1024;
const EMPTY = Buffer.alloc(0);

export class ConnectionError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export abstract class H2Session<S extends H2Stream<H2StreamSink>> {
  readonly socket: Socket;
  protected readonly w: FrameWriter;
  /** Open streams by id: an IdTable, not a Map, so closed streams die young (id-table.ts). */
  protected readonly streams = new IdTable<S>();
  protected readonly encoder = new HpackEncoder();
  readonly #opts: H2ConnectionOptions;
  readonly #onCodecEvent: (e: H2CodecEvent) => void;
  readonly #decoder = new HpackDecoder();
  /** The highest stream id opened (by the peer on a server, by this side on a client). */
  protected lastStreamId = 0;
  #rest: Buffer | undefined;
  /** Bytes of the client's connection preface still expected (a server's first read). */
  #prefaceLeft: Buffer | undefined;
  #settingsSeen = false;
  /** A header block in CONTINUATION frames: its stream, the HEADERS flags and the fragments. */
  #contId = 0;
  #contFlags = 0;
  #contSelfDependent = false;
  #contParts: Buffer[] = [];
  #contBytes = 0;
  protected peerInitialWindow = DEFAULT_WINDOW;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says). */
  peerMaxConcurrentStreams = Infinity;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #peerTableSize = 4096;
  #connSendWindow = DEFAULT_WINDOW;
  #connRecvAvail = DEFAULT_WINDOW;
  #connUnacked = 0;
  #emptyData = 0;
  /** Streams with bytes waiting for send window, by id (lowest first; an IdTable, as `streams`). */
  readonly #blocked = new IdTable<S>();
  /** connection_keepalive's PINGs, when configured. */
  protected readonly keepalive: Keepalive | undefined;
  /** GOAWAY sent or received, or the peer's end read: no new streams. */
  protected goaway = false;
  protected ended = false;
  active = 0;

  /**
   * `preface`: what this side writes first (a client's connection preface), or what it expects
   * first from the peer (`expectPreface`, a server); `settings`: its SETTINGS frame.
   */
  constructor(socket: Socket, opts: H2ConnectionOptions, onCodecEvent: (e: H2CodecEvent) => void, settings: Buffer, expectPreface: Buffer | undefined, preface?: Buffer) {
    this.socket = socket;
    this.#opts = opts;
    this.#onCodecEvent = onCodecEvent;
    this.#prefaceLeft = expectPreface;
    this.w = new FrameWriter(socket, () => this.#onDrain());
    if (preface) this.w.queue(preface);
    this.w.queue(settings);
    if (opts.connectionWindowSize > DEFAULT_WINDOW) {
      this.w.queue(u32Frame(FrameType.WINDOW_UPDATE, 0, opts.connectionWindowSize - DEFAULT_WINDOW));
      this.#connRecvAvail = opts.connectionWindowSize;
    }
    if (opts.keepalive) {
      this.keepalive = new Keepalive(opts.keepalive, {
        sendPing: (payload) => this.w.queue(frame(FrameType.PING, 0, 0, payload)),
        timedOut: () => this.#keepaliveTimeout(),
      });
    }
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onClose());
    socket.resume();
  }

  /** GOAWAY was sent or received, or the socket is gone: no new streams. */
  get closed(): boolean {
    return this.goaway || this.ended;
  }

  protected codecEvent(e: H2CodecEvent): void {
    this.#onCodecEvent(e);
  }

  // ---- what the two sides do differently ----

  /** A header block from the peer on stream `id` (HEADERS, with any CONTINUATION). */
  protected abstract onHeaderBlock(id: number, block: HeaderBlock): void;
  /** GOAWAY from the peer: the last stream it processes, and why. */
  protected abstract onGoaway(lastStreamId: number, code: number): void;
  /** Stream `id` was never opened (a frame on it other than HEADERS is a connection error, RFC 9113 §5.1). */
  protected abstract isIdle(id: number): boolean;
  /** The peer reset `s` (already closed here; its sink told). */
  protected onPeerReset(_s: S): void {}
  /** The socket closed: the streams still open, just closed, before their sinks are told. */
  protected onClosed(): void {}

  // ---- reading ----

  #onData(chunk: Buffer): void {
    if (this.ended) return;
    this.keepalive?.received();
    let data = chunk;
    if (this.#rest) {
      data = Buffer.concat([this.#rest, chunk]);
      this.#rest = undefined;
    }
    let pos = 0;
    try {
      const preface = this.#prefaceLeft;
      if (preface) {
        const n = Math.min(data.length, preface.length);
        if (!data.subarray(0, n).equals(preface.subarray(0, n))) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface');
        if (n < preface.length) {
          this.#rest = data;
          return;
        }
        this.#prefaceLeft = undefined;
        pos = preface.length;
      }
      while (data.length - pos >= FRAME_HEADER) {
        const len = (data[pos]! << 16) | (data[pos + 1]! << 8) | data[pos + 2]!;
        if (len > DEFAULT_MAX_FRAME) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes`);
        const end = pos + FRAME_HEADER + len;
        if (end > data.length) break;
        const type = data[pos + 3]!;
        const flags = data[pos + 4]!;
        const id = data.readUInt32BE(pos + 5) & 0x7fffffff;
        this.#frame(type, flags, id, data.subarray(pos + FRAME_HEADER, end));
        pos = end;
        if (this.ended) return;
      }
    } catch (e) {
      if (e instanceof ConnectionError) return this.connectionError(e.code, e.message);
      throw e;
    }
    if (pos < data.length) this.#rest = data.subarray(pos);
  }

  #frame(type: number, flags: number, id: number, p: Buffer): void {
    if (!this.#settingsSeen) {
      if (type !== FrameType.SETTINGS || flags & Flag.ACK) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'first frame is not SETTINGS');
      this.#settingsSeen = true;
    }
    if (this.#contId !== 0 && (type !== FrameType.CONTINUATION || id !== this.#contId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    switch (type) {
      case FrameType.DATA:
        return this.#onDataFrame(flags, id, p);
      case FrameType.HEADERS:
        return this.#onHeadersFrame(flags, id, p);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, id, p);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (p.length !== 5) this.resetId(id, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#onRstStream(id, p);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, p);
      case FrameType.PUSH_PROMISE: // neither side accepts one (a client announces ENABLE_PUSH 0)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE');
      case FrameType.PING:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (p.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length');
        if (!(flags & Flag.ACK)) this.#control(frame(FrameType.PING, Flag.ACK, 0, p));
        else this.keepalive?.acked();
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (p.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY length');
        return this.onGoaway(p.readUInt32BE(0) & 0x7fffffff, p.readUInt32BE(4));
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(id, p);
      default:
      // Unknown frame types are ignored (RFC 9113 §4.1).
    }
  }

  #onDataFrame(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    const len = p.length;
    if (len > this.#connRecvAvail) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window exceeded');
    this.#connRecvAvail -= len;
    this.#connUnacked += len;
    if (this.#connUnacked >= this.#opts.connectionWindowSize / 2) {
      this.w.queue(u32Frame(FrameType.WINDOW_UPDATE, 0, this.#connUnacked));
      this.#connRecvAvail += this.#connUnacked;
      this.#connUnacked = 0;
    }
    if (len === 0 && !(flags & Flag.END_STREAM)) {
      if (++this.#emptyData > MAX_EMPTY_DATA) {
        this.codecEvent('inbound_empty_frames_flood');
        throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'empty DATA frames');
      }
    } else this.#emptyData = 0;
    const s = this.streams.get(id);
    if (!s) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // a stream this side closed or reset
    }
    if (s.remoteEnded || !this.acceptsData(s)) return this.reset(s, ErrorCode.STREAM_CLOSED);
    if (len > s.recvAvail) return this.reset(s, ErrorCode.FLOW_CONTROL_ERROR);
    s.recvAvail -= len;
    let data = p;
    if (flags & Flag.PADDED) {
      const pad = len > 0 ? p[0]! : 0;
      if (len === 0 || pad >= len) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA padding');
      data = p.subarray(1, len - pad);
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    s.received += data.length;
    if (s.contentLength >= 0 && (s.received > s.contentLength || (end && s.received !== s.contentLength))) {
      this.codecEvent('rx_messaging_error');
      return this.reset(s, ErrorCode.PROTOCOL_ERROR);
    }
    s.recvUnacked += len;
    if (end) s.remoteEnded = true;
    else this.#maybeWindowUpdate(s);
    if (data.length > 0 || end) this.deliver(s, data, end);
    if (end) this.#maybeClose(s);
  }

  /** DATA may arrive on `s` now (a client's stream before its response headers may not). */
  protected acceptsData(_s: S): boolean {
    return true;
  }

  #maybeWindowUpdate(s: S): void {
    if (s.paused || s.remoteEnded || s.recvUnacked < this.#opts.initialWindowSize / 2) return;
    this.w.queue(u32Frame(FrameType.WINDOW_UPDATE, s.id, s.recvUnacked));
    s.recvAvail += s.recvUnacked;
    s.recvUnacked = 0;
  }

  /** Body bytes or trailers to the sink, or held while the stream is paused. */
  protected deliver(s: S, item: Buffer | string[], end: boolean): void {
    if (s.paused || s.held) (s.held ??= []).push(item);
    else if (Array.isArray(item)) s.sink?.trailers(item);
    else s.sink?.data(item, end);
  }

  #onHeadersFrame(flags: number, id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let start = 0;
    let end = p.length;
    if (flags & Flag.PADDED) {
      if (p.length < 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding');
      end -= p[0]!;
      start = 1;
    }
    let selfDependent = false;
    if (flags & Flag.PRIORITY) {
      selfDependent = start + 5 <= p.length && (p.readUInt32BE(start) & 0x7fffffff) === id;
      start += 5;
    }
    if (end < start) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS padding');
    const block = p.subarray(start, end);
    if (flags & Flag.END_HEADERS) return this.#headerBlock(id, flags, block, selfDependent);
    this.#contId = id;
    this.#contSelfDependent = selfDependent;
    this.#contFlags = flags;
    this.#contParts = [block];
    this.#contBytes = block.length;
  }

  #onContinuation(flags: number, id: number, p: Buffer): void {
    if (this.#contId === 0 || id !== this.#contId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    this.#contParts.push(p);
    this.#contBytes += p.length;
    if (this.#contBytes > MAX_HEADER_BLOCK || this.#contParts.length > MAX_CONTINUATIONS) {
      this.codecEvent('header_overflow');
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if (!(flags & Flag.END_HEADERS)) return;
    const block = Buffer.concat(this.#contParts, this.#contBytes);
    const f = this.#contFlags;
    this.#contId = 0;
    this.#contParts = [];
    this.#contBytes = 0;
    this.#headerBlock(id, f, block, this.#contSelfDependent);
  }

  #headerBlock(id: number, flags: number, block: Buffer, selfDependent: boolean): void {
    let decoded;
    try {
      decoded = this.#decoder.decode(block, { maxListSize: this.#opts.maxHeaderListSize });
    } catch (e) {
      if (e instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, e.message);
      throw e;
    }
    this.onHeaderBlock(id, { raw: decoded.raw, tooLarge: decoded.tooLarge, end: (flags & Flag.END_STREAM) !== 0, selfDependent });
  }

  /** A header block on a stream whose head was received: trailers, which must end it and be well-formed. */
  protected receiveTrailers(s: S, raw: string[], end: boolean): void {
    if (s.remoteEnded) return this.reset(s, ErrorCode.STREAM_CLOSED);
    if (!end || checkTrailers(raw) !== undefined || (s.contentLength >= 0 && s.received !== s.contentLength)) {
      this.codecEvent('rx_messaging_error');
      return this.reset(s, ErrorCode.PROTOCOL_ERROR);
    }
    s.remoteEnded = true;
    this.deliver(s, raw, true);
    if (s.localEnded) this.closeStream(s);
  }

  #onRstStream(id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length');
    const s = this.streams.get(id);
    if (!s) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    this.codecEvent('rx_reset');
    s.held = undefined;
    this.closeStream(s);
    const code = p.readUInt32BE(0);
    s.sink?.streamReset(`stream reset by the peer (code ${code})`, code);
    this.onPeerReset(s);
  }

  #onSettings(flags: number, id: number, p: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (p.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (p.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length');
    for (let i = 0; i < p.length; i += 6) {
      const key = p.readUInt16BE(i);
      const v = p.readUInt32BE(i + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          if (v !== this.#peerTableSize) {
            this.#peerTableSize = v;
            this.encoder.tableSizeChanged();
          }
          break;
        case Setting.ENABLE_PUSH:
        case Setting.ENABLE_CONNECT_PROTOCOL:
          if (v > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS ${key} = ${v}`);
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxConcurrentStreams = v;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE');
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
          }
          if (delta > 0) this.#unblock();
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (v < DEFAULT_MAX_FRAME || v > 16777215) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE');
          this.#peerMaxFrame = v;
          break;
        default:
        // MAX_HEADER_LIST_SIZE (advisory), unknown: ignored.
      }
    }
    this.#control(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.onSettings();
  }

  /** The peer's SETTINGS were applied. */
  protected onSettings(): void {}

  #onWindowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const inc = p.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#connSendWindow += inc;
      if (this.#connSendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      return this.#unblock();
    }
    const s = this.streams.get(id);
    if (!s) {
      if (this.isIdle(id)) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) return this.reset(s, ErrorCode.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.reset(s, ErrorCode.FLOW_CONTROL_ERROR);
    this.#drain(s);
  }

  #onEnd(): void {
    // The peer sends nothing more: what is queued still goes out, then the connection ends.
    this.goaway = true;
    if (this.active === 0) this.finish();
  }

  #onClose(): void {
    this.keepalive?.stop();
    this.ended = true;
    this.#closeAll('connection closed');
  }

  /** A keepalive PING went unanswered: the connection is aborted, as Envoy closes it without flushing. */
  #keepaliveTimeout(): void {
    if (this.ended) return;
    this.codecEvent('keepalive_timeout');
    this.ended = true;
    this.goaway = true;
    this.#closeAll('keepalive timeout');
    this.socket.destroy();
  }

  /** The connection is over: every open stream closed, what it held dropped, and its sink told `reason`. */
  #closeAll(reason: string): void {
    const open = this.streams.values();
    this.streams.clear();
    this.#blocked.clear();
    this.active = 0;
    for (const s of open) {
      s.closed = true;
      s.held = undefined;
    }
    this.onClosed();
    for (const s of open) s.sink?.streamReset(reason);
  }

  // ---- sending (the response or request side of a stream) ----

  /** Queues `s`'s HEADERS (encoded from `raw`); `end`: they are all this side sends on it. */
  protected sendHeaders(s: S, raw: readonly string[], end: boolean): void {
    s.headersSent = true;
    const f = this.#headers(s.id, this.encoder.encode(raw), end);
    if (end) return this.#localEnd(s);
    s.headFrame = f;
    s.headEpoch = this.w.epoch;
  }

  /** Body bytes; false when the stream or the socket is above its high-water mark (the sink's writable() follows). */
  sendData(s: S, data: Buffer, end: boolean): boolean {
    if (s.closed || s.localEnded || s.queueEnd) return true;
    if (data.length === 0 && end && s.queue.length === 0) {
      // The end of the body in the turn of the frame before it: END_STREAM on that frame (HEADERS
      // when there was no body) rather than an empty DATA frame of its own.
      const last = s.lastData !== undefined && s.dataEpoch === this.w.epoch ? s.lastData : s.headFrame !== undefined && s.headEpoch === this.w.epoch ? s.headFrame : undefined;
      if (last !== undefined) {
        last[4]! |= Flag.END_STREAM;
        s.headFrame = s.lastData = undefined;
        s.queueEnd = true;
        this.#localEnd(s);
        return true;
      }
    }
    s.headFrame = undefined;
    if (data.length > 0) {
      s.queue.push(data);
      s.queuedBytes += data.length;
    }
    if (end) s.queueEnd = true;
    this.#drain(s);
    if (s.queuedBytes < STREAM_HIGH_WATER && !this.w.full) return true;
    s.wantWritable = true;
    return false;
  }

  /** Trailers (they end this side of the stream), after any body bytes still queued. */
  sendTrailers(s: S, raw: readonly string[]): void {
    if (s.closed || s.localEnded || s.queueEnd) return;
    s.trailers = this.encoder.encode(raw);
    s.queueEnd = true;
    this.#drain(s);
  }

  /** RST_STREAM from this side. */
  resetStream(s: S, code: number = ErrorCode.INTERNAL_ERROR): void {
    this.reset(s, code);
  }

  /**
   * readDisable: no WINDOW_UPDATE for the stream and the peer's events held, until resumed (also
   * after the stream closed: what the peer sent before its end is still delivered).
   */
  setPaused(s: S, paused: boolean): void {
    if (s.paused === paused || (s.closed && s.held === undefined)) return;
    s.paused = paused;
    if (paused) return;
    const held = s.held;
    s.held = undefined;
    if (held) {
      for (let i = 0; i < held.length; i++) {
        const item = held[i]!;
        const last = i === held.length - 1 && s.remoteEnded;
        if (Array.isArray(item)) s.sink?.trailers(item);
        else s.sink?.data(item, last);
        if (s.paused) {
          // Paused again by what it just delivered: the rest waits.
          s.held = held.slice(i + 1);
          if (s.held.length === 0) s.held = undefined;
          return;
        }
      }
    }
    this.#maybeWindowUpdate(s);
  }

  /** GOAWAY (NO_ERROR): streams open finish, no new ones, then the connection closes. */
  close(): void {
    if (this.ended) return;
    if (!this.goaway) {
      this.goaway = true;
      this.w.queue(goawayFrame(this.goawayLastStreamId(), ErrorCode.NO_ERROR));
    }
    if (this.active === 0) this.finish();
  }

  /** The last stream id a GOAWAY from this side names (the last the peer opened; 0 on a client). */
  protected goawayLastStreamId(): number {
    return this.lastStreamId;
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- writing ----

  /** Queues a header block (HEADERS, then CONTINUATION past the peer's frame size); returns the HEADERS frame. */
  #headers(id: number, block: Buffer, end: boolean): Buffer {
    const max = this.#peerMaxFrame;
    const endFlag = end ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      const out = Buffer.allocUnsafe(FRAME_HEADER + block.length);
      writeFrameHeader(out, 0, block.length, FrameType.HEADERS, endFlag | Flag.END_HEADERS, id);
      block.copy(out, FRAME_HEADER);
      this.w.queue(out);
      return out;
    }
    let first: Buffer | undefined;
    for (let off = 0; off < block.length; off += max) {
      const part = block.subarray(off, Math.min(off + max, block.length));
      const last = off + max >= block.length;
      const type = off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (off === 0 ? endFlag : 0) | (last ? Flag.END_HEADERS : 0);
      const f = frame(type, flags, id, part);
      first ??= f;
      this.w.queue(f);
    }
    return first!;
  }

  /** Sends what `s` has queued (a client's stream that has just been opened). */
  protected flush(s: S): void {
    this.#drain(s);
  }

  /** Sends what the windows allow of the stream's queue, then its END_STREAM or trailers (nothing before the stream has an id). */
  #drain(s: S): void {
    if (s.id === 0) return;
    while (s.queue.length > 0) {
      const allowed = Math.min(this.#connSendWindow, s.sendWindow, this.#peerMaxFrame);
      if (allowed <= 0) {
        this.#blocked.set(s.id, s);
        return;
      }
      const head = s.queue[0]!;
      let chunk = head;
      if (head.length > allowed) {
        chunk = head.subarray(0, allowed);
        s.queue[0] = head.subarray(allowed);
      } else s.queue.shift();
      s.queuedBytes -= chunk.length;
      this.#connSendWindow -= chunk.length;
      s.sendWindow -= chunk.length;
      const last = s.queue.length === 0 && s.queueEnd && s.trailers === undefined;
      s.lastData = this.#dataFrame(s.id, chunk, last);
      s.dataEpoch = this.w.epoch;
      if (last) return this.#localEnd(s);
    }
    this.#blocked.delete(s.id);
    if (s.queueEnd && !s.localEnded) {
      if (s.trailers !== undefined) {
        this.#headers(s.id, s.trailers, true);
        s.trailers = undefined;
      } else this.#dataFrame(s.id, EMPTY, true);
      this.#localEnd(s);
      return;
    }
    if (s.wantWritable && s.queuedBytes < STREAM_HIGH_WATER && !this.w.full) {
      s.wantWritable = false;
      s.sink?.writable();
    }
  }

  /** Queues a DATA frame; returns the buffer its header is in (flags at index 4). */
  #dataFrame(id: number, data: Buffer, end: boolean): Buffer {
    const flags = end ? Flag.END_STREAM : 0;
    if (data.length <= COPY_PAYLOAD) {
      const out = Buffer.allocUnsafe(FRAME_HEADER + data.length);
      writeFrameHeader(out, 0, data.length, FrameType.DATA, flags, id);
      data.copy(out, FRAME_HEADER);
      this.w.queue(out);
      return out;
    }
    const h = Buffer.allocUnsafe(FRAME_HEADER);
    writeFrameHeader(h, 0, data.length, FrameType.DATA, flags, id);
    this.w.queue(h);
    this.w.queue(data);
    return h;
  }

  /** Send window grew: the blocked streams, lowest id first, send what they can. */
  #unblock(): void {
    for (const s of this.#blocked.values()) {
      if (this.#connSendWindow <= 0) return;
      this.#blocked.delete(s.id);
      this.#drain(s);
    }
  }

  #localEnd(s: S): void {
    s.localEnded = true;
    this.onLocalEnd(s);
  }

  /** END_STREAM from this side is queued on `s`. */
  protected onLocalEnd(s: S): void {
    this.#maybeClose(s);
  }

  #maybeClose(s: S): void {
    if (s.remoteEnded && s.localEnded) this.closeStream(s);
  }

  /** `s` is over here (both sides ended, or reset). */
  protected closeStream(s: S): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.#blocked.delete(s.id);
    this.active--;
    if (this.goaway && this.active === 0) this.finish();
  }

  /** RST_STREAM `code` from this side; the sink is told. */
  protected reset(s: S, code: number): void {
    if (s.closed) return;
    this.codecEvent('tx_reset');
    this.w.queue(u32Frame(FrameType.RST_STREAM, s.id, code));
    s.held = undefined;
    this.closeStream(s);
    s.sink?.streamReset(`stream reset (code ${code})`, code, true);
  }

  /** RST_STREAM for a stream that is not open here. */
  protected resetId(id: number, code: number): void {
    const s = this.streams.get(id);
    if (s) return this.reset(s, code);
    this.codecEvent('tx_reset');
    this.w.queue(u32Frame(FrameType.RST_STREAM, id, code));
  }

  /** A control frame answered to the peer (PING, SETTINGS ACK): a peer that never reads is cut off. */
  #control(buf: Buffer): void {
    if (this.w.pendingBytes > FLOOD_BYTES) {
      this.codecEvent('outbound_control_flood');
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'outbound control frame flood');
    }
    this.w.queue(buf);
  }

  /** GOAWAY `code`, every open stream reset, and the connection ended. */
  protected connectionError(code: number, message: string): void {
    if (this.ended) return;
    this.codecEvent('protocol_error');
    this.goaway = true;
    this.w.queue(goawayFrame(this.goawayLastStreamId(), code, message));
    this.w.flush();
    this.ended = true;
    this.#closeAll(`connection error: ${message}`);
    this.#endSocket();
  }

  #endSocket(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** GOAWAY sent or received (or the peer's end read) and no stream open: flush, then end the connection. */
  protected finish(): void {
    this.w.flush();
    this.#endSocket();
  }

  /** The socket took what it had refused: streams waiting for it send on. */
  #onDrain(): void {
    for (const s of this.streams.values()) if (s.wantWritable && !this.#blocked.has(s.id)) this.#drain(s);
  }
}
