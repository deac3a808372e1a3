// Downstream HTTP/1.x on one socket without node:http: Node's llhttp binding parses (same
// strictness: smuggling attempts, oversized or invalid headers are parse errors), each request goes
// to the connection manager as a head plus body events, and Http1ResponseEncoder writes the
// response on the socket. Requests are served one at a time, as Envoy's HTTP/1 codec does:
// a pipelined request waits (its events queued, reading paused) until the response before it is
// complete. Upgrades (and CONNECT) hand the raw socket over with the bytes read past the head.

import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { lowerName, type HeaderMap } from './headers.ts';
import { Http1ResponseEncoder, httpDate, type Http1ResponseOwner } from './codec-http1-encoder.ts';
import { startTimeout, type Timeout } from '../timeouts.ts';
import { HTTPParser, METHODS, isParseError, releaseParser, type HttpParser, type ParseError } from './http-parser.ts';
import { fastRequestHead } from './fast-head.ts';
import type { ResponseEncoder } from './codec.ts';
import { readIntoUserBuffer, type UserBufferReader } from '../tcp/user-buffer-read.ts';
import { directWriter, type DirectWriter } from '../tcp/direct-write.ts';

/** A parsed request line and header block (the shape h1RequestHeaders reads). */
export interface Http1RequestHead {
  readonly method: string;
  readonly url: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** [name, value, name, value, ...] as received. */
  readonly rawHeaders: string[];
  /** Upgrade requested (an `upgrade` header with `connection: upgrade`, or CONNECT). */
  readonly upgrade: boolean;
  readonly keepAlive: boolean;
}

/** Where the codec delivers requests: the stream behind each one. */
export interface Http1RequestSink {
  decodeData(data: Buffer, endStream: boolean): void;
  decodeTrailers(trailers: HeaderMap): void;
  onDownstreamReset(reason: string): void;
  readonly done: boolean;
}

export interface Http1CodecCallbacks {
  /** A request head: returns the stream that takes its body (or undefined when it was answered at once). */
  onRequest(head: Http1RequestHead, encoder: ResponseEncoder, endsWithHeaders: boolean): Http1RequestSink | undefined;
  /** An upgrade or CONNECT request: the socket is no longer the codec's; `rest` was read past the head. */
  onUpgrade(head: Http1RequestHead, socket: Socket, rest: Buffer): void;
  /** Trailers of a chunked request as a HeaderMap (or undefined when trailers are not enabled). */
  trailers(raw: string[]): HeaderMap | undefined;
  /** A malformed request: answered with `status` and the connection closed. */
  onProtocolError(code: string, status: number): void;
  /** request_headers_timeout fired before the headers were complete. */
  onHeadersTimeout(): void;
}

export interface Http1CodecOptions {
  readonly maxHeaderSize: number;
  readonly headersTimeoutMs: number;
  /** Envoy's delayed_close_timeout: how long a connection closed mid-request still reads and drops input; 0: destroyed at once. */
  readonly delayedCloseMs: number;
  readonly trailers: boolean;
  readonly serverName: string;
}

const EMPTY = Buffer.alloc(0);

export class Http1ServerCodec implements Http1ResponseOwner {
  readonly #socket: Socket;
  readonly #cb: Http1CodecCallbacks;
  readonly #opts: Http1CodecOptions;
  /** llhttp, made when a read first needs it: heads the fast path reads never do (no parser per connection). */
  #parser: HttpParser | undefined;
  /** The client's last request was read (it did not keep the connection alive): later bytes are ignored, as llhttp ignores them. */
  #lastRequestRead = false;
  /** Header fields and URL delivered in pieces (kOnHeaders) before kOnHeadersComplete, or trailers. */
  #pendingHeaders: string[] = [];
  #pendingUrl = '';
  /** The stream being served; #requestOpen while its body is still being parsed. */
  #stream: Http1RequestSink | undefined;
  #requestOpen = false;
  /** The last body chunk parsed: sent with endStream when the message completes in the same read. */
  #heldChunk: Buffer | undefined;
  /** The response in progress: until it completes, later requests wait in #deferred. */
  #responding = false;
  #deferred: Array<{ start: boolean; run: () => void }> | undefined;
  #upgrade: Http1RequestHead | undefined;
  #headersTimer: Timeout | undefined;
  #inHeaders = false;
  #readDisabled = false;
  #closed = false;
  /** Plain sockets read into one reused buffer (no Buffer, Readable push or 'data' event per read). */
  readonly #reader: UserBufferReader | undefined;
  /** Responses' writes (direct-write.ts): to the socket's handle when nothing is buffered in Node. */
  readonly #writer: DirectWriter;
  /** The parser let go of the socket: reads are ignored, or (an upgrade) copied into its Readable. */
  #detached = false;
  #handedOver = false;
  /** The bytes being parsed are the reused buffer's (anything kept past this read must be copied). */
  #borrowed = false;
  /** llhttp is inside a message (kOnMessageBegin seen, kOnMessageComplete not yet): no fast path. */
  #parserBusy = false;

  constructor(socket: Socket, cb: Http1CodecCallbacks, opts: Http1CodecOptions) {
    this.#socket = socket;
    this.#writer = directWriter(socket);
    this.#cb = cb;
    this.#opts = opts;
    socket.on('end', this.#onEnd);
    socket.once('close', () => this.#onClose());
    this.#reader = readIntoUserBuffer(socket, this.#onUserRead);
    if (this.#reader) {
      // Bytes read before (AUTO's sniffing unshifts what it read): parsed first, as 'data' would have.
      for (let chunk = socket.read() as Buffer | null; chunk !== null && !this.#detached; chunk = socket.read() as Buffer | null) this.#onData(chunk);
    } else socket.on('data', this.#onData);
    this.#updateReading();
  }

  /** llhttp for this connection, made on first use. */
  #llhttp(): HttpParser {
    if (this.#parser) return this.#parser;
    const p = (this.#parser = new HTTPParser());
    p.initialize(HTTPParser.REQUEST, {}, this.#opts.maxHeaderSize, HTTPParser.kLenientNone);
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      for (let i = 0; i < headers.length; i++) this.#pendingHeaders.push(headers[i]!);
      this.#pendingUrl += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _s: unknown, _m: unknown, upgrade: boolean, keepAlive: boolean) =>
      this.#onHeadersComplete(major, minor, headers, method, url, upgrade, keepAlive);
    p[HTTPParser.kOnBody] = (chunk: Buffer) => this.#onBody(chunk);
    p[HTTPParser.kOnMessageBegin] = () => {
      this.#parserBusy = true;
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      this.#parserBusy = false;
      this.#onMessageComplete();
    };
    return p;
  }

  #onUserRead = (nread: number, buffer: Buffer): boolean => {
    const data = nread === buffer.length ? buffer : buffer.subarray(0, nread);
    if (this.#handedOver) return this.#socket.push(Buffer.from(data));
    if (this.#detached) return true;
    this.#borrowed = true;
    this.#onData(data);
    this.#borrowed = false;
    return true;
  };

  #onData = (data: Buffer): void => {
    // Closing (the response said `connection: close`): what the client sends now is dropped, as
    // Envoy stops reading; llhttp would call it an error (HPE_CLOSED_CONNECTION) per connection.
    if (this.#closed || this.#lastRequestRead) return;
    if (!this.#inHeaders && !this.#requestOpen && this.#opts.headersTimeoutMs > 0) {
      this.#inHeaders = true;
      this.#headersTimer = startTimeout(this.#opts.headersTimeoutMs, () => this.#onHeadersTimeout());
    }
    const from = this.#parserBusy ? 0 : this.#fastHeads(data);
    if (from === data.length || this.#lastRequestRead) return;
    const r = this.#llhttp().execute(from === 0 ? data : data.subarray(from));
    if (isParseError(r)) return this.#onParseError(r);
    this.#flushHeld(false);
    const up = this.#upgrade;
    if (up) {
      this.#upgrade = undefined;
      this.#detach();
      this.#handedOver = true; // later reads wait in the socket's Readable for the upgrade
      const end = from + r;
      let rest = end < data.length ? data.subarray(end) : EMPTY;
      if (this.#borrowed && rest.length > 0) rest = Buffer.from(rest);
      this.#defer(true, () => {
        this.#closed = true; // the socket is the upgrade's now: never resumed or parsed here again
        this.#cb.onUpgrade(up, this.#socket, rest);
      });
    }
  };

  /**
   * Plain bodyless requests at the start of `data`, read without llhttp (fast-head.ts) and delivered
   * as llhttp's callbacks would deliver them: the offset where llhttp takes over. After a request
   * that does not keep the connection alive (`connection: close`, HTTP/1.0 without keep-alive),
   * llhttp reads nothing more (HPE_CLOSED_CONNECTION, which #onParseError drops): nor does this.
   */
  #fastHeads(data: Buffer): number {
    let from = 0;
    while (from < data.length && !this.#closed) {
      const h = fastRequestHead(data, from, this.#opts.maxHeaderSize);
      if (!h) break;
      this.#onHeadersComplete(1, h.versionMinor, h.rawHeaders, h.method, h.url, false, h.keepAlive);
      this.#onMessageComplete();
      from = h.end;
      if (!h.keepAlive) {
        this.#lastRequestRead = true;
        break;
      }
    }
    return from;
  }

  #onHeadersComplete(major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, upgrade: boolean, keepAlive: boolean): number {
    this.#inHeaders = false;
    this.#headersTimer?.stop();
    let raw = headers ?? [];
    if (this.#pendingHeaders.length > 0) {
      raw = this.#pendingHeaders.concat(raw);
      this.#pendingHeaders = [];
    }
    const head: Http1RequestHead = {
      method: METHODS[method] ?? 'GET',
      url: url ?? this.#pendingUrl,
      httpVersionMajor: major,
      httpVersionMinor: minor,
      rawHeaders: raw,
      upgrade,
      keepAlive,
    };
    this.#pendingUrl = '';
    if (upgrade) {
      this.#upgrade = head;
      return 0;
    }
    this.#defer(true, () => this.#startRequest(head));
    return 0;
  }

  #startRequest(head: Http1RequestHead): void {
    this.#responding = true;
    const expect = continueExpected(head);
    if (expect && head.httpVersionMinor === 1) this.#socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    const isHead = head.method === 'HEAD';
    // A socket read through a user buffer is a plain libuv stream: its writes can be checked for completion.
    const directWrites = this.#reader !== undefined;
    const enc = new Http1ResponseEncoder(this.#socket, this.#writer, this, { http10: head.httpVersionMinor === 0, keepAlive: head.keepAlive, isHead, trailers: this.#opts.trailers, directWrites });
    const ends = endsWithHeaders(head.rawHeaders);
    this.#stream = this.#cb.onRequest(head, enc, ends);
    this.#requestOpen = !ends;
  }

  #onBody(chunk: Buffer): void {
    this.#defer(false, () => {
      const held = this.#heldChunk;
      this.#heldChunk = chunk;
      if (held) this.#stream?.decodeData(held, false);
    });
  }

  #onMessageComplete(): void {
    const trailerRaw = this.#pendingHeaders;
    this.#pendingHeaders = [];
    this.#pendingUrl = '';
    if (this.#upgrade) return;
    this.#defer(false, () => {
      const req = this.#stream;
      if (!req || !this.#requestOpen) return; // ended with its headers
      this.#requestOpen = false;
      const trailers = trailerRaw.length > 0 ? this.#cb.trailers(trailerRaw) : undefined;
      if (trailers) {
        this.#flushHeld(false, req);
        req.decodeTrailers(trailers);
      } else if (this.#heldChunk) this.#flushHeld(true, req);
      else if (!req.done) req.decodeData(EMPTY, true);
    });
  }

  /** Sends the held body chunk (at the end of a read, or as the last one). */
  #flushHeld(end: boolean, req = this.#stream): void {
    const held = this.#heldChunk;
    if (!held) return;
    this.#heldChunk = undefined;
    req?.decodeData(held, end);
  }

  /**
   * Runs a request event now, or queues it behind the response in progress. `start`: the event
   * starts a request (only one request is served at a time).
   */
  #defer(start: boolean, run: () => void): void {
    if (!this.#deferred && !(start && this.#responding)) return run();
    if (!this.#deferred) {
      this.#deferred = [];
      this.#updateReading();
    }
    this.#deferred.push({ start, run });
  }

  // ---- Http1ResponseOwner ----

  responseComplete(close: boolean): void {
    this.#responding = false;
    if (close) {
      this.#closed = true;
      this.#socket.end();
      if (this.#requestOpen) this.#delayedClose();
      return;
    }
    const queue = this.#deferred;
    if (!queue) return;
    this.#deferred = undefined;
    while (queue.length > 0) {
      if (queue[0]!.start && this.#responding) {
        this.#deferred = queue;
        return;
      }
      queue.shift()!.run();
      if (this.#closed) return;
    }
    this.#flushHeld(false);
    this.#updateReading();
  }

  readDisable(disabled: boolean): void {
    this.#readDisabled = disabled;
    this.#updateReading();
  }

  #updateReading(): void {
    if (this.#closed || this.#socket.destroyed) return;
    if (this.#readDisabled || this.#deferred) this.#socket.pause();
    else this.#socket.resume();
  }

  /**
   * The response closed the connection while its request was still coming in (a reply that did not
   * wait for the body): as Envoy's delayed close, what the client still sends is read and dropped,
   * so that it is not stuck writing into a full window and reads the response and the FIN; the
   * socket is closed when the client closes it or after delayed_close_timeout (Envoy's default 1 s;
   * 0: once the response is written).
   */
  #delayedClose(): void {
    this.#detach();
    const socket = this.#socket;
    const ms = this.#opts.delayedCloseMs;
    if (ms <= 0) {
      socket.destroySoon();
      return;
    }
    if (!this.#reader) socket.on('data', () => {});
    socket.resume();
    setTimeout(() => socket.destroy(), ms).unref();
  }

  // ---- errors and the end ----

  #onParseError(err: ParseError): void {
    this.#detach();
    // Bytes after a `connection: close` request, in the same read: dropped, not an error (Envoy
    // stops reading there); the request before them is answered and the connection closed.
    if (err.code === 'HPE_CLOSED_CONNECTION') return;
    this.#closed = true;
    const req = this.#stream;
    if (req && this.#requestOpen && !req.done) {
      // Mid-body (bad chunk framing): the request cannot be completed.
      req.onDownstreamReset('http1.codec_error');
      this.#socket.destroy();
      return;
    }
    if (this.#responding) return void this.#socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    this.#cb.onProtocolError(err.code, status);
    this.#errorReply(status);
  }

  #onHeadersTimeout(): void {
    if (!this.#inHeaders || this.#closed) return;
    this.#detach();
    this.#closed = true;
    this.#cb.onHeadersTimeout();
    this.#errorReply(408);
  }

  #errorReply(status: number): void {
    if (this.#socket.writableEnded || this.#socket.destroyed) return;
    const body = STATUS_CODES[status] ?? '';
    this.#socket.end(
      `HTTP/1.1 ${status} ${body}\r\ncontent-length: ${body.length}\r\ncontent-type: text/plain\r\n` +
        `date: ${httpDate()}\r\nserver: ${this.#opts.serverName}\r\nconnection: close\r\n\r\n${body}`,
      'latin1',
    );
  }

  #finishParsing(): void {
    if (this.#closed || !this.#parser) return;
    const r = this.#parser.finish();
    if (isParseError(r)) this.#onParseError(r);
  }

  /** The parser lets go of the socket (upgrade, error, close). */
  #detach(): void {
    this.#detached = true;
    this.#socket.off('data', this.#onData);
    this.#headersTimer?.stop();
    this.#inHeaders = false;
  }

  #onEnd = (): void => this.#finishParsing();

  #onClose(): void {
    // A closed net.Socket can outlive a few scavenges (its handle's wrapper holds it): what its
    // listeners and read callback reach would be promoted with it, so they let go of this codec.
    this.#socket.off('end', this.#onEnd);
    this.#reader?.release();
    this.#detach();
    this.#closed = true;
    this.#deferred = undefined;
    const req = this.#stream;
    this.#stream = undefined;
    if (req && !req.done) req.onDownstreamReset(this.#responding ? 'downstream connection closed' : 'connection closed');
    if (this.#parser) releaseParser(this.#parser);
  }
}

/** The first value of `name` (lowercase) in a flat raw header list. */
export function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && lowerName(k) === name) return raw[i + 1];
  }
  return undefined;
}

/** Does the request end with its headers (no transfer-encoding, no content-length above 0)? */
function endsWithHeaders(raw: readonly string[]): boolean {
  if (headerValue(raw, 'transfer-encoding') !== undefined) return false;
  const cl = headerValue(raw, 'content-length');
  return cl === undefined || Number(cl) === 0;
}

function continueExpected(head: Http1RequestHead): boolean {
  return headerValue(head.rawHeaders, 'expect')?.toLowerCase() === '100-continue';
}
