// legate's HTTP/2 server connection (RFC 9113) on a socket, in place of node:http2 for downstream
// connections: frames parsed from the socket's reads, HPACK (hpack.ts), flow control both ways,
// request validation as nghttp2 does it (validate.ts), and every frame written in one batch per turn
// of the event loop (frame-writer.ts). Per request it costs no Duplex stream, no
// headers object and no nextTick chain: under h2c load node:http2 and its streams were about half
// of a worker's busy time.
//
// Scope: a server (streams opened by the client); no server push; PRIORITY frames are read and
// ignored; extended CONNECT (RFC 8441) when allow_connect is set, its streams tunnelled as Duplex
// streams (tunnel.ts).

import type { Socket } from 'node:net';
import { FrameWriter } from './frame-writer.ts';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack.ts';
import { DEFAULT_MAX_FRAME, DEFAULT_WINDOW, ErrorCode, FRAME_HEADER, Flag, FrameType, MAX_WINDOW, PREFACE, Setting, frame, goawayFrame, settingsFrame, u32Frame, writeFrameHeader } from './frames.ts';
import { H2ServerStream } from './server-stream.ts';
import { checkRequest, checkTrailers } from './validate.ts';

export interface H2SessionOptions {
  readonly maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE this side announces (each stream's receive window). */
  readonly initialWindowSize: number;
  /** The connection's receive window (raised from 65,535 by a WINDOW_UPDATE at start). */
  readonly connectionWindowSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a longer request header list resets the stream. */
  readonly maxHeaderListSize: number;
  /** More header fields than this reset the stream. */
  readonly maxHeaderPairs: number;
  /** SETTINGS_ENABLE_CONNECT_PROTOCOL: extended CONNECT (`:protocol`) requests are accepted. */
  readonly enableConnectProtocol: boolean;
}

/** What the session tells its owner. */
export interface H2SessionEvents {
  /** A well-formed request: its headers as [name, value, …]. */
  onStream(stream: H2ServerStream, raw: string[], endStream: boolean): void;
  /** Envoy's codec stats: a malformed request, a reset each way, an oversized header list, a flood. */
  onCodecEvent(event: H2CodecEvent): void;
}

export type H2CodecEvent =
  | 'rx_messaging_error'
  | 'rx_reset'
  | 'tx_reset'
  | 'header_overflow'
  | 'outbound_control_flood'
  | 'inbound_empty_frames_flood'
  | 'too_many_premature_resets'
  | 'protocol_error';

/** Response bytes a stream may queue (waiting for send window) before encodeData says stop. */
const STREAM_HIGH_WATER = 64 * 1024;
/** Output not yet taken by the kernel past which a peer that only reads control frames is cut off. */
const FLOOD_BYTES = 8 * 1024 * 1024;
/** Header block fragments (HEADERS + CONTINUATION) past this close the connection. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** CONTINUATION frames one header block may take (a flood of empty ones adds no bytes). */
const MAX_CONTINUATIONS = 128;
/**
 * Envoy's premature-reset guard (overload.premature_reset_total_stream_count): once a connection
 * has opened this many streams, it is closed when the client reset at least half of them before
 * their response ended (the "rapid reset" attack: streams opened and cancelled at once).
 */
const PREMATURE_RESET_MIN_STREAMS = 500;
/** A DATA frame with no payload and no END_STREAM in a row past this is a flood (Envoy's max_consecutive_inbound_frames_with_empty_payload: 1). */
const MAX_EMPTY_DATA = 1;
/** Seconds after this side ended the connection before the socket is destroyed if the client keeps it open. */
const CLOSE_GRACE_MS = 1000;
/** Payloads up to this size are copied into their frame's buffer; larger ones are written as they are. */
const COPY_PAYLOAD = 1024;

class ConnectionError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export class H2ServerSession {
  readonly socket: Socket;
  readonly #opts: H2SessionOptions;
  readonly #events: H2SessionEvents;
  readonly #w: FrameWriter;
  readonly #streams = new Map<number, H2ServerStream>();
  readonly #decoder = new HpackDecoder();
  readonly #encoder = new HpackEncoder();
  #lastStreamId = 0;
  #rest: Buffer | undefined;
  #preface = false;
  #settingsSeen = false;
  /** A header block in CONTINUATION frames: its stream, the HEADERS flags and the fragments. */
  #contId = 0;
  #contFlags = 0;
  #contSelfDependent = false;
  #contParts: Buffer[] = [];
  #contBytes = 0;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = DEFAULT_MAX_FRAME;
  #peerTableSize = 4096;
  #connSendWindow = DEFAULT_WINDOW;
  #connRecvAvail = DEFAULT_WINDOW;
  #connUnacked = 0;
  /** Streams opened, and of them reset by the client before this side ended them. */
  #opened = 0;
  #prematureResets = 0;
  #emptyData = 0;
  /** Streams with response bytes waiting for send window. */
  readonly #blocked = new Set<H2ServerStream>();
  #goaway = false;
  #closed = false;
  active = 0;

  constructor(socket: Socket, opts: H2SessionOptions, events: H2SessionEvents) {
    this.socket = socket;
    this.#opts = opts;
    this.#events = events;
    this.#w = new FrameWriter(socket, () => this.#onDrain());
    this.#w.queue(
      settingsFrame([
        [Setting.MAX_CONCURRENT_STREAMS, opts.maxConcurrentStreams],
        [Setting.INITIAL_WINDOW_SIZE, opts.initialWindowSize],
        [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderListSize],
        ...(opts.enableConnectProtocol ? [[Setting.ENABLE_CONNECT_PROTOCOL, 1] as const] : []),
      ]),
    );
    if (opts.connectionWindowSize > DEFAULT_WINDOW) {
      this.#w.queue(u32Frame(FrameType.WINDOW_UPDATE, 0, opts.connectionWindowSize - DEFAULT_WINDOW));
      this.#connRecvAvail = opts.connectionWindowSize;
    }
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onClose());
    socket.resume();
  }

  /** GOAWAY was sent or the socket is gone: no new streams. */
  get closed(): boolean {
    return this.#goaway || this.#closed;
  }

  // ---- reading ----

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let data = chunk;
    if (this.#rest) {
      data = Buffer.concat([this.#rest, chunk]);
      this.#rest = undefined;
    }
    let pos = 0;
    try {
      if (!this.#preface) {
        const n = Math.min(data.length, PREFACE.length);
        if (!data.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'invalid connection preface');
        if (n < PREFACE.length) {
          this.#rest = data;
          return;
        }
        this.#preface = true;
        pos = PREFACE.length;
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
        if (this.#closed) return;
      }
    } catch (e) {
      if (e instanceof ConnectionError) return this.#connectionError(e.code, e.message);
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
        if (p.length !== 5) this.#resetId(id, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#onRstStream(id, p);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, id, p);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (p.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING length');
        if (!(flags & Flag.ACK)) this.#control(frame(FrameType.PING, Flag.ACK, 0, p));
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client will open no more streams; those open finish.
        if (this.active === 0) this.#finish();
        return;
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
      this.#w.queue(u32Frame(FrameType.WINDOW_UPDATE, 0, this.#connUnacked));
      this.#connRecvAvail += this.#connUnacked;
      this.#connUnacked = 0;
    }
    if (len === 0 && !(flags & Flag.END_STREAM)) {
      if (++this.#emptyData > MAX_EMPTY_DATA) {
        this.#events.onCodecEvent('inbound_empty_frames_flood');
        throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'empty DATA frames');
      }
    } else this.#emptyData = 0;
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // a stream this side closed or reset
    }
    if (s.remoteEnded) return this.#reset(s, ErrorCode.STREAM_CLOSED);
    if (len > s.recvAvail) return this.#reset(s, ErrorCode.FLOW_CONTROL_ERROR);
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
      this.#events.onCodecEvent('rx_messaging_error');
      return this.#reset(s, ErrorCode.PROTOCOL_ERROR);
    }
    s.recvUnacked += len;
    if (end) s.remoteEnded = true;
    else this.#maybeWindowUpdate(s);
    if (data.length > 0 || end) this.#deliver(s, data, end);
    if (end) this.#maybeClose(s);
  }

  #maybeWindowUpdate(s: H2ServerStream): void {
    if (s.paused || s.remoteEnded || s.recvUnacked < this.#opts.initialWindowSize / 2) return;
    this.#w.queue(u32Frame(FrameType.WINDOW_UPDATE, s.id, s.recvUnacked));
    s.recvAvail += s.recvUnacked;
    s.recvUnacked = 0;
  }

  /** Request body bytes or trailers to the sink, or held while the stream is paused. */
  #deliver(s: H2ServerStream, item: Buffer | string[], end: boolean): void {
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
    // A stream that depends on itself is a stream error (RFC 9113 §5.3.1); its block still updates the table.
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
      this.#events.onCodecEvent('header_overflow');
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

  #headerBlock(id: number, flags: number, block: Buffer, selfDependent = false): void {
    let decoded;
    try {
      decoded = this.#decoder.decode(block, { maxListSize: this.#opts.maxHeaderListSize });
    } catch (e) {
      if (e instanceof HpackError) throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, e.message);
      throw e;
    }
    const end = (flags & Flag.END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing) return this.#onTrailers(existing, decoded.raw, end);
    if (id <= this.#lastStreamId || (id & 1) === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `HEADERS opening stream ${id}`);
    this.#lastStreamId = id;
    if (this.#goaway) return; // after GOAWAY new streams are ignored (RFC 9113 §6.8)
    if (decoded.tooLarge || decoded.raw.length / 2 > this.#opts.maxHeaderPairs) {
      this.#events.onCodecEvent('header_overflow');
      return this.#resetId(id, ErrorCode.ENHANCE_YOUR_CALM);
    }
    if (selfDependent) return this.#resetId(id, ErrorCode.PROTOCOL_ERROR);
    if (this.active >= this.#opts.maxConcurrentStreams) return this.#resetId(id, ErrorCode.REFUSED_STREAM);
    const check = checkRequest(decoded.raw, this.#opts.enableConnectProtocol);
    if (check.error !== undefined) {
      this.#events.onCodecEvent('rx_messaging_error');
      return this.#resetId(id, ErrorCode.PROTOCOL_ERROR);
    }
    if (end && check.contentLength > 0) {
      this.#events.onCodecEvent('rx_messaging_error');
      return this.#resetId(id, ErrorCode.PROTOCOL_ERROR);
    }
    const s = new H2ServerStream(id, this.#peerInitialWindow, this.#opts.initialWindowSize, check.contentLength);
    s.remoteEnded = end;
    this.#streams.set(id, s);
    this.active++;
    this.#opened++;
    this.#events.onStream(s, decoded.raw, end);
  }

  #onTrailers(s: H2ServerStream, raw: string[], end: boolean): void {
    if (s.remoteEnded) return this.#reset(s, ErrorCode.STREAM_CLOSED);
    if (!end || checkTrailers(raw) !== undefined || (s.contentLength >= 0 && s.received !== s.contentLength)) {
      this.#events.onCodecEvent('rx_messaging_error');
      return this.#reset(s, ErrorCode.PROTOCOL_ERROR);
    }
    s.remoteEnded = true;
    this.#deliver(s, raw, true);
    this.#maybeClose(s);
  }

  #onRstStream(id: number, p: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length');
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    this.#events.onCodecEvent('rx_reset');
    this.#close(s);
    s.sink?.streamReset(`stream reset by the peer (code ${p.readUInt32BE(0)})`);
    if (!s.localEnded && ++this.#prematureResets * 2 >= this.#opened && this.#opened >= PREMATURE_RESET_MIN_STREAMS) {
      this.#events.onCodecEvent('too_many_premature_resets');
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams reset by the client');
    }
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
            this.#encoder.tableSizeChanged();
          }
          break;
        case Setting.ENABLE_PUSH:
        case Setting.ENABLE_CONNECT_PROTOCOL:
          if (v > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS ${key} = ${v}`);
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE');
          const delta = v - this.#peerInitialWindow;
          this.#peerInitialWindow = v;
          for (const s of this.#streams.values()) {
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
        // MAX_CONCURRENT_STREAMS (a server opens none), MAX_HEADER_LIST_SIZE (advisory), unknown: ignored.
      }
    }
    this.#control(frame(FrameType.SETTINGS, Flag.ACK, 0));
  }

  #onWindowUpdate(id: number, p: Buffer): void {
    if (p.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const inc = p.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#connSendWindow += inc;
      if (this.#connSendWindow > MAX_WINDOW) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      return this.#unblock();
    }
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) return this.#reset(s, ErrorCode.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.#reset(s, ErrorCode.FLOW_CONTROL_ERROR);
    this.#drain(s);
  }

  #onEnd(): void {
    // The client sends nothing more: what is queued still goes out, then the connection ends.
    this.#goaway = true;
    if (this.active === 0) this.#finish();
  }

  #onClose(): void {
    this.#closed = true;
    const open = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    this.active = 0;
    for (const s of open) {
      s.closed = true;
      s.sink?.streamReset('connection closed');
    }
  }

  // ---- the response side (response-encoder.ts) ----

  /** Response headers; `end`: they are the whole response. */
  respond(s: H2ServerStream, raw: readonly string[], end: boolean): void {
    if (s.closed) return;
    s.headersSent = true;
    const f = this.#headers(s.id, this.#encoder.encode(raw), end);
    if (end) return this.#localEnd(s);
    s.headFrame = f;
    s.headEpoch = this.#w.epoch;
  }

  /** Response body bytes; false when the stream or the socket is above its high-water mark (writable() follows). */
  sendData(s: H2ServerStream, data: Buffer, end: boolean): boolean {
    if (s.closed || s.localEnded || s.queueEnd) return true;
    if (data.length === 0 && end && s.queue.length === 0) {
      // The end of the body in the turn of the frame before it: END_STREAM on that frame (HEADERS
      // when there was no body) rather than an empty DATA frame of its own.
      const last = s.lastData !== undefined && s.dataEpoch === this.#w.epoch ? s.lastData : s.headFrame !== undefined && s.headEpoch === this.#w.epoch ? s.headFrame : undefined;
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
    if (s.queuedBytes < STREAM_HIGH_WATER && !this.#w.full) return true;
    s.wantWritable = true;
    return false;
  }

  /** Response trailers (they end the stream), after any body bytes still queued. */
  sendTrailers(s: H2ServerStream, raw: readonly string[]): void {
    if (s.closed || s.localEnded || s.queueEnd) return;
    s.trailers = this.#encoder.encode(raw);
    s.queueEnd = true;
    this.#drain(s);
  }

  /** RST_STREAM from this side. */
  resetStream(s: H2ServerStream, code: number = ErrorCode.INTERNAL_ERROR): void {
    this.#reset(s, code);
  }

  /** readDisable: no WINDOW_UPDATE for the stream and its request events held, until resumed. */
  setPaused(s: H2ServerStream, paused: boolean): void {
    if (s.paused === paused || s.closed) return;
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

  /** GOAWAY (NO_ERROR): streams open finish, new ones are refused, then the connection closes. */
  close(): void {
    if (this.#closed) return;
    if (!this.#goaway) {
      this.#goaway = true;
      this.#w.queue(goawayFrame(this.#lastStreamId, ErrorCode.NO_ERROR));
    }
    if (this.active === 0) this.#finish();
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
      this.#w.queue(out);
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
      this.#w.queue(f);
    }
    return first!;
  }

  /** Sends what the windows allow of the stream's queue, then its END_STREAM or trailers. */
  #drain(s: H2ServerStream): void {
    while (s.queue.length > 0) {
      const allowed = Math.min(this.#connSendWindow, s.sendWindow, this.#peerMaxFrame);
      if (allowed <= 0) {
        this.#blocked.add(s);
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
      s.dataEpoch = this.#w.epoch;
      if (last) return this.#localEnd(s);
    }
    this.#blocked.delete(s);
    if (s.queueEnd && !s.localEnded) {
      if (s.trailers !== undefined) {
        this.#headers(s.id, s.trailers, true);
        s.trailers = undefined;
      } else this.#dataFrame(s.id, EMPTY, true);
      this.#localEnd(s);
      return;
    }
    if (s.wantWritable && s.queuedBytes < STREAM_HIGH_WATER && !this.#w.full) {
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
      this.#w.queue(out);
      return out;
    }
    const h = Buffer.allocUnsafe(FRAME_HEADER);
    writeFrameHeader(h, 0, data.length, FrameType.DATA, flags, id);
    this.#w.queue(h);
    this.#w.queue(data);
    return h;
  }

  /** Send window grew: the blocked streams, oldest first, send what they can. */
  #unblock(): void {
    for (const s of [...this.#blocked]) {
      if (this.#connSendWindow <= 0) return;
      this.#blocked.delete(s);
      this.#drain(s);
    }
  }

  /** END_STREAM is queued: a request still open is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
  #localEnd(s: H2ServerStream): void {
    s.localEnded = true;
    if (!s.remoteEnded) {
      this.#w.queue(u32Frame(FrameType.RST_STREAM, s.id, ErrorCode.NO_ERROR));
      this.#close(s);
      return;
    }
    this.#maybeClose(s);
  }

  #maybeClose(s: H2ServerStream): void {
    if (s.remoteEnded && s.localEnded) this.#close(s);
  }

  #close(s: H2ServerStream): void {
    if (s.closed) return;
    s.closed = true;
    this.#streams.delete(s.id);
    this.#blocked.delete(s);
    this.active--;
    if (this.#goaway && this.active === 0) this.#finish();
  }

  #reset(s: H2ServerStream, code: number): void {
    if (s.closed) return;
    this.#events.onCodecEvent('tx_reset');
    this.#w.queue(u32Frame(FrameType.RST_STREAM, s.id, code));
    this.#close(s);
    s.sink?.streamReset(`stream reset (code ${code})`);
  }

  /** RST_STREAM for a stream that was never opened here. */
  #resetId(id: number, code: number): void {
    const s = this.#streams.get(id);
    if (s) return this.#reset(s, code);
    this.#events.onCodecEvent('tx_reset');
    this.#w.queue(u32Frame(FrameType.RST_STREAM, id, code));
  }

  /** A control frame answered to the peer (PING, SETTINGS ACK): a peer that never reads is cut off. */
  #control(buf: Buffer): void {
    if (this.#w.pendingBytes > FLOOD_BYTES) {
      this.#events.onCodecEvent('outbound_control_flood');
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'outbound control frame flood');
    }
    this.#w.queue(buf);
  }

  #connectionError(code: number, message: string): void {
    if (this.#closed) return;
    this.#events.onCodecEvent('protocol_error');
    this.#goaway = true;
    this.#w.queue(goawayFrame(this.#lastStreamId, code, message));
    this.#w.flush();
    this.#closed = true;
    const open = [...this.#streams.values()];
    this.#streams.clear();
    this.active = 0;
    for (const s of open) {
      s.closed = true;
      s.sink?.streamReset(`connection error: ${message}`);
    }
    this.#endSocket();
  }

  #endSocket(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** GOAWAY sent (or the client's end read) and no stream open: flush, then end the connection. */
  #finish(): void {
    this.#w.flush();
    this.#endSocket();
  }

  /** The socket took what it had refused: streams waiting for it send on. */
  #onDrain(): void {
    for (const s of this.#streams.values()) if (s.wantWritable && !this.#blocked.has(s)) this.#drain(s);
  }
}

const EMPTY = Buffer.alloc(0);
