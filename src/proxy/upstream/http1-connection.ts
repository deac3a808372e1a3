// One upstream HTTP/1.1 connection (a connected TCP, pipe or TLS socket) carrying one request at a
// time, without undici: the request head goes out in one latin1 write, the body as it comes (chunk
// framed when the request has no content-length), and the response is parsed by Node's llhttp binding
// in RESPONSE mode (the parser node:http's client uses, same strictness). When a response completes
// on a keep-alive connection whose request was fully sent, the connection is free for the next
// request; otherwise it closes. Its pool learns both through Http1ConnectionOwner.

import type { Socket } from 'node:net';
import { HTTPParser, isParseError, releaseParser, type HttpParser, type ParseError } from '../http/http-parser.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';
import { upstreamTlsInfo } from './upstream-tls.ts';
import { readIntoUserBuffer, type UserBufferReader } from '../tcp/user-buffer-read.ts';
import { directWriter, type DirectWriter } from '../tcp/direct-write.ts';
import { lend, settle } from '../http/body-lease.ts';
import { fastResponseHead } from '../http/fast-head.ts';
import { contentLengthBody, keepAliveHintMs } from './http1-response-headers.ts';
import { startTimeout, type Timeout } from '../timeouts.ts';

/** A request as the connection writes it. */
export interface Http1RequestHead {
  /** Request line and header block, ending with the blank line. */
  readonly head: string;
  /** The body is sent with chunked framing (it has no content-length). */
  readonly chunked: boolean;
  /** The request ends with its head (no body follows). */
  readonly endsWithHead: boolean;
  /** HEAD: the response has no body whatever its headers say. */
  readonly bodylessResponse: boolean;
  /** An upgrade request: a 101 hands the socket over. */
  readonly upgrade: boolean;
}

/** What a connection tells the request it carries. Nothing follows a response end, an upgrade or a failure. */
export interface Http1Exchange {
  onResponseHead(status: number, rawHeaders: string[]): void;
  onResponseData(chunk: Buffer): void;
  onResponseEnd(rawTrailers: string[]): void;
  /**
   * The response is complete and the connection is about to take another request (or close):
   * called before onResponseEnd, so what the exchange holds per stream (a max_requests slot) is
   * given back before a waiting request is handed this connection.
   */
  onStreamDone?(): void;
  /** 101 to an upgrade request: the socket is the caller's now; `rest` was read past the head. */
  onUpgrade(status: number, rawHeaders: string[], socket: Socket, rest: Buffer): void;
  /** `protocol`: the response was malformed; `reset`: the connection failed or closed before the response completed. */
  onConnectionFailure(kind: 'reset' | 'protocol', detail: string): void;
  /** The socket drained after a write that returned false. */
  onWritable(): void;
}

export interface Http1ConnectionOwner {
  /** The request finished and the connection can take another. */
  free(conn: Http1Connection): void;
  /** The connection is gone (closed, failed, handed to an upgrade): it never carries a request again. */
  gone(conn: Http1Connection): void;
}

const EMPTY = Buffer.alloc(0);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/**
 * Reads grow to this size: a response head with a 64 KiB body arrives in one read, and so leaves
 * downstream in one write (a 64 KiB buffer took it in two reads and three downstream writes).
 */
const MAX_READ_BYTES = 128 * 1024; // 128 KiB
/** Raw body chunks up to this size are copied out of the read buffer rather than lent. */
const COPY_MAX_BYTES = 1024;
/** A read at least this large that starts a response is split: head to the parser, body passed on. */
const RAW_BODY_MIN_READ = 16 * 1024;
/** A connection is not reused this close to the server's keep-alive timeout (undici's idea, its default margin is 2 s). */
const KEEP_ALIVE_MARGIN_MS = 1000;
const ignoreError = (): void => {};
const LAST_CHUNK = '0\r\n\r\n';

export class Http1Connection {
  readonly #socket: Socket;
  /** Requests' writes (direct-write.ts): to the socket's handle when nothing is buffered in Node. */
  readonly #writer: DirectWriter;
  readonly #owner: Http1ConnectionOwner;
  readonly #parser: HttpParser;
  readonly #maxRequests: number;
  readonly #maxHeaderSize: number;
  /** What the connection's TLS session negotiated; undefined for plaintext. */
  readonly tls: TlsConnectionInfo | undefined;
  #ex: Http1Exchange | undefined;
  #req: Http1RequestHead | undefined;
  #requestEnded = false;
  #keepAlive = true;
  #informational = false;
  #upgradeHead: { status: number; raw: string[] } | undefined;
  #pendingHeaders: string[] = [];
  #served = 0;
  /** When the server's keep-alive hint says it closes this idle connection (Date.now() ms); 0 = no hint. */
  #expiresAt = 0;
  /** The parser is at the start of a response or inside its head. */
  #inHead = true;
  /** The parser was given only the bytes of a head: its content-length body can bypass it. */
  #headOnly = false;
  /** llhttp is inside a message (kOnMessageBegin seen, kOnMessageComplete not yet): no fast path. */
  #parserBusy = false;
  /** llhttp saw the head of the raw body in progress (and must be re-initialised after it). */
  #parserSawHead = false;
  /** Body bytes still due that the parser never sees (passed on as the socket delivered them, uncopied; see body-lease.ts). */
  #rawRemaining = 0;
  /** Plain sockets read into one reused buffer (no Buffer, Readable push or 'data' event per read). */
  readonly #reader: UserBufferReader | undefined;
  /** The bytes being handled are the reused buffer's: whatever is kept past this read must not be them. */
  #borrowed = false;
  /** The socket went to an upgrade: reads are copied and pushed to its Readable as Node itself would. */
  #handedOver = false;
  /** The parser no longer reads the socket (upgrade, parse error, close). */
  #detached = false;
  /** The owner was told the connection is gone. */
  #left = false;
  /** The pool's idle_timeout: runs while the connection carries no request. */
  #idle: Timeout | undefined;

  constructor(socket: Socket, owner: Http1ConnectionOwner, maxHeaderSize: number, maxRequests: number) {
    this.#socket = socket;
    this.#writer = directWriter(socket);
    this.#owner = owner;
    this.#maxRequests = maxRequests;
    this.#maxHeaderSize = maxHeaderSize;
    this.tls = upstreamTlsInfo(socket);
    const p = (this.#parser = new HTTPParser());
    p.initialize(HTTPParser.RESPONSE, {}, maxHeaderSize, HTTPParser.kLenientNone);
    p[HTTPParser.kOnHeaders] = (headers: string[]) => {
      for (let i = 0; i < headers.length; i++) this.#pendingHeaders.push(headers[i]!);
    };
    p[HTTPParser.kOnHeadersComplete] = (_ma: number, _mi: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, _sm: unknown, upgrade: boolean, keepAlive: boolean) =>
      this.#onHeadersComplete(headers, status, upgrade, keepAlive);
    p[HTTPParser.kOnBody] = (chunk: Buffer) => this.#ex?.onResponseData(chunk);
    p[HTTPParser.kOnMessageBegin] = () => {
      this.#parserBusy = true;
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      this.#parserBusy = false;
      this.#onMessageComplete();
    };
    this.#reader = readIntoUserBuffer(socket, this.#onUserRead, MAX_READ_BYTES);
    if (!this.#reader) socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('end', this.#onEnd);
    socket.on('error', ignoreError); // 'close' follows; the request learns of it there
    socket.on('close', this.#onClose);
    if (this.#reader) {
      for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) this.#onData(chunk);
      socket.resume(); // flowing, so that 'end' is emitted
    }
  }

  /** Past the server's `keep-alive: timeout=N` hint (less a margin): reusing it would race the server's close. */
  get expired(): boolean {
    return this.#expiresAt !== 0 && Date.now() >= this.#expiresAt;
  }

  /** Writes a request's head; its body follows through write(). The connection must be free. */
  start(req: Http1RequestHead, ex: Http1Exchange): void {
    this.#ex = ex;
    this.#req = req;
    this.#idle?.stop();
    this.#requestEnded = req.endsWithHead;
    this.#keepAlive = true;
    this.#served++;
    this.#writer.write(req.head);
  }

  /** Request body; `end` ends the request. Answers false when the socket buffers past its high-water mark. */
  write(data: Buffer, end: boolean): boolean {
    const req = this.#req;
    if (!req || this.#requestEnded || this.#detached) return true;
    const s = this.#socket;
    if (end) this.#requestEnded = true;
    if (!req.chunked) return data.length > 0 ? this.#writer.write(data) : true;
    if (data.length === 0) return end ? this.#writer.write(LAST_CHUNK) : true;
    s.cork();
    s.write(`${data.length.toString(16)}\r\n`, 'latin1');
    s.write(data);
    const ok = s.write(end ? `\r\n${LAST_CHUNK}` : '\r\n', 'latin1');
    s.uncork();
    return ok;
  }

  pause(): void {
    if (!this.#detached) this.#socket.pause();
  }

  resume(): void {
    if (!this.#detached) this.#socket.resume();
  }

  /** The request is abandoned: the connection cannot be reused and closes. */
  reset(): void {
    this.#ex = undefined;
    this.#socket.destroy();
  }

  /** Closes a free connection (idle timeout, pool closing). */
  close(): void {
    if (!this.#ex) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /**
   * Closes the connection once it has carried no request for `ms` (Envoy's idle_timeout: no
   * active requests). Not socket.setTimeout: that re-arms a node:timers timer on every read.
   */
  setIdleTimeout(ms: number): void {
    this.#idle = startTimeout(ms, () => {
      if (!this.#ex) this.#socket.destroy();
    });
    if (this.#ex) this.#idle.stop();
  }

  #onUserRead = (nread: number, buffer: Buffer): boolean => {
    const data = nread === buffer.length ? buffer : buffer.subarray(0, nread);
    if (this.#handedOver) return this.#socket.push(Buffer.from(data));
    if (this.#detached) return true; // failed: the socket is being destroyed
    this.#borrowed = true;
    this.#onData(data);
    this.#borrowed = false;
    return true;
  };

  #onData = (data: Buffer): void => {
    let from = 0;
    if (this.#rawRemaining > 0) {
      from = this.#rawBody(data, 0);
      if (from === data.length) return;
    }
    // A read that holds a whole head and nothing else, or a large read: the parser gets the head
    // alone, so a content-length body reaches the router as the socket's own buffers (llhttp's
    // kOnBody would copy every byte).
    if (this.#inHead && !this.#parserBusy) {
      from = this.#fastHead(data, from);
      if (from === data.length) return;
    }
    if (this.#inHead) {
      const end = data.indexOf(HEAD_END, from);
      const headEnd = end + 4;
      if (end >= 0 && (headEnd === data.length || data.length - from >= RAW_BODY_MIN_READ)) {
        this.#headOnly = true;
        this.#parserSawHead = true;
        const r = this.#parser.execute(from === 0 && headEnd === data.length ? data : data.subarray(from, headEnd));
        this.#headOnly = false;
        if (isParseError(r)) return this.#onParseError(r);
        if (this.#upgradeHead) return this.#handOver(data, from + r);
        from = headEnd;
        if (this.#rawRemaining > 0) from = this.#rawBody(data, from);
        if (from === data.length) return;
      }
    }
    const r = this.#parser.execute(from === 0 ? data : data.subarray(from));
    if (isParseError(r)) return this.#onParseError(r);
    if (this.#upgradeHead) this.#handOver(data, from + r);
  };

  /**
   * A plain keep-alive response head with a content-length body, read without llhttp
   * (fast-head.ts; anything else is left to llhttp): the offset past what it took, or `from`.
   */
  #fastHead(data: Buffer, from: number): number {
    const req = this.#req;
    if (!req || req.bodylessResponse || req.upgrade) return from;
    const h = fastResponseHead(data, from, this.#maxHeaderSize);
    if (!h || !h.keepAlive) return from;
    this.#headOnly = true;
    this.#onHeadersComplete(h.rawHeaders, h.status, false, true);
    this.#headOnly = false;
    if (this.#rawRemaining === 0) {
      this.#onMessageComplete(); // content-length: 0
      return h.end;
    }
    return this.#rawBody(data, h.end);
  }

  /** Body bytes from `from` (up to what the response still owes), passed on as they are; the new offset. */
  #rawBody(data: Buffer, from: number): number {
    const n = Math.min(this.#rawRemaining, data.length - from);
    this.#rawRemaining -= n;
    const chunk = from === 0 && n === data.length ? data : data.subarray(from, from + n);
    // A small body is copied (as llhttp's kOnBody did): cheaper than a fresh read buffer when the
    // downstream keeps it (an HTTP/2 stream holds it to the end of the tick).
    if (this.#borrowed && n <= COPY_MAX_BYTES) this.#ex?.onResponseData(Buffer.from(chunk));
    else if (this.#borrowed) {
      // The bytes are the read buffer's: lent for this call. Unless the downstream writer gives
      // them back (written through, nothing else saw them), the next read goes into a new buffer.
      lend(chunk);
      this.#ex?.onResponseData(chunk);
      if (!settle(chunk)) this.#reader?.renew();
    } else this.#ex?.onResponseData(chunk);
    if (this.#rawRemaining === 0 && !this.#detached) {
      // The parser still expects the body it never saw: a fresh one for the next response.
      if (this.#parserSawHead) {
        this.#parserSawHead = false;
        this.#parserBusy = false;
        this.#parser.initialize(HTTPParser.RESPONSE, {}, this.#maxHeaderSize, HTTPParser.kLenientNone);
      }
      this.#onMessageComplete();
    }
    return from + n;
  }

  /** A 101 to an upgrade request: the socket goes to the request, with the bytes read past the head. */
  #handOver(data: Buffer, parsedTo: number): void {
    const up = this.#upgradeHead!;
    this.#upgradeHead = undefined;
    const ex = this.#ex;
    this.#ex = undefined;
    // The socket leaves with none of this connection's listeners on it.
    const s = this.#socket;
    s.off('drain', this.#onDrain);
    s.off('end', this.#onEnd);
    s.off('error', ignoreError);
    s.off('close', this.#onClose);
    this.#detach();
    this.#leave();
    this.#handedOver = true;
    const rest = parsedTo < data.length ? data.subarray(parsedTo) : EMPTY;
    if (ex) ex.onUpgrade(up.status, up.raw, s, this.#borrowed && rest.length > 0 ? Buffer.from(rest) : rest);
    else s.destroy();
  }

  #onDrain = (): void => this.#ex?.onWritable();

  #onHeadersComplete(headers: string[] | undefined, status: number, upgrade: boolean, keepAlive: boolean): number {
    this.#inHead = false;
    let raw = headers ?? [];
    if (this.#pendingHeaders.length > 0) {
      raw = this.#pendingHeaders.concat(raw);
      this.#pendingHeaders = [];
    }
    const ex = this.#ex;
    if (!ex) return 1;
    if (status < 200 && status !== 101) {
      this.#informational = true; // 100 Continue and other 1xx: the final response follows
      return 1;
    }
    if (upgrade && status === 101 && this.#req?.upgrade) {
      this.#upgradeHead = { status, raw };
      return 2;
    }
    this.#keepAlive = keepAlive && !upgrade;
    const hint = this.#keepAlive ? keepAliveHintMs(raw) : undefined;
    this.#expiresAt = hint === undefined ? 0 : Date.now() + Math.max(hint - KEEP_ALIVE_MARGIN_MS, hint / 2);
    if (this.#req?.bodylessResponse) {
      ex.onResponseHead(status, raw);
      return 1;
    }
    if (this.#headOnly && status !== 204 && status !== 304) this.#rawRemaining = contentLengthBody(raw);
    ex.onResponseHead(status, raw);
    return 0;
  }

  #onMessageComplete(): void {
    this.#inHead = true;
    const trailers = this.#pendingHeaders;
    this.#pendingHeaders = [];
    if (this.#informational) {
      this.#informational = false;
      return;
    }
    if (this.#upgradeHead) return;
    const ex = this.#ex;
    if (!ex) return;
    this.#ex = undefined;
    this.#req = undefined;
    const reusable = this.#keepAlive && this.#requestEnded && !this.#detached && (this.#maxRequests === 0 || this.#served < this.#maxRequests);
    ex.onStreamDone?.();
    // Free before the end is delivered: a request started by that end can take this connection.
    if (reusable) {
      this.#socket.resume();
      this.#idle?.refresh();
      this.#owner.free(this);
    } else this.#leave();
    ex.onResponseEnd(trailers);
    if (!reusable) this.#socket.destroy();
  }

  #onParseError(err: ParseError): void {
    const ex = this.#ex;
    this.#ex = undefined;
    this.#detach();
    this.#socket.destroy();
    ex?.onConnectionFailure('protocol', err.code);
  }

  /** The peer closed its side: a response delimited by the close ends here; one cut short is a reset (at close). */
  #onEnd = (): void => {
    if (this.#detached) return;
    this.#parser.finish();
  };

  #detach(): void {
    this.#detached = true;
    this.#socket.off('data', this.#onData);
    releaseParser(this.#parser);
  }

  #leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#owner.gone(this);
  }

  #onClose = (): void => {
    this.#idle?.stop();
    const ex = this.#ex;
    this.#ex = undefined;
    if (!this.#detached) this.#detach();
    this.#leave();
    ex?.onConnectionFailure('reset', 'connection closed');
  };
}
