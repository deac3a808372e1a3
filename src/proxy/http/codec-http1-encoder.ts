// The response side of one downstream HTTP/1.x request, written straight to the socket: status
// line and headers in one string (validated as node:http would), then the body with
// content-length, chunked, or close-delimited framing (HTTP/1.0), and trailers when enabled.
// Headers and the first body bytes of a response leave in one write (cork until the next tick).

import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { HeaderMap } from './headers.ts';
import type { DownstreamProtocol, ResponseEncoder } from './codec.ts';
import { isFieldValue, isToken } from './http-chars.ts';
import { giveBack } from './body-lease.ts';
import type { DirectWriter } from '../tcp/direct-write.ts';
import { afterRead } from '../tcp/after-read.ts';

/** What the encoder tells its codec about the response's end. */
export interface Http1ResponseOwner {
  /** The whole response is written; `close`: the connection must close after it. */
  responseComplete(close: boolean): void;
  /** Stops (true) or resumes (false) reading the request body. */
  readDisable(disabled: boolean): void;
}

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const noBodyStatus = (s: number): boolean => s < 200 || s === 204 || s === 304;

let dateSecond = -1;
let dateValue = '';
/** The `date` header value, formatted at most once a second. */
export function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

function uncork(socket: Socket): void {
  socket.uncork();
}

function flushHead(e: Http1ResponseEncoder): void {
  e.flushHead();
}

/** Bodies up to this size join the head in one write. */
const SMALL_BODY = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class Http1ResponseEncoder implements ResponseEncoder {
  readonly protocol: DownstreamProtocol;
  readonly #socket: Socket;
  /** The connection's writer: straight to the socket's handle when nothing is buffered in Node. */
  readonly #w: DirectWriter;
  readonly #owner: Http1ResponseOwner;
  readonly #isHead: boolean;
  readonly #trailers: boolean;
  /**
   * The socket writes through a libuv stream (plain TCP or pipe): when nothing is queued in Node
   * or libuv after a write, every byte went to the kernel and nothing references the chunk any more.
   */
  readonly #directWrites: boolean;
  /** The request asked for the connection to close (Connection: close, or HTTP/1.0 without keep-alive). */
  #closeAfter: boolean;
  #sent = false;
  #ended = false;
  #chunked = false;
  #noBody = false;
  #waitingDrain = false;
  /** Status line and headers not yet written (the first body bytes may join them). */
  #pendingHead: string | undefined;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(socket: Socket, writer: DirectWriter, owner: Http1ResponseOwner, opts: { http10: boolean; keepAlive: boolean; isHead: boolean; trailers: boolean; directWrites?: boolean }) {
    this.protocol = opts.http10 ? 'HTTP/1.0' : 'HTTP/1.1';
    this.#socket = socket;
    this.#w = writer;
    this.#owner = owner;
    this.#isHead = opts.isHead;
    this.#trailers = opts.trailers;
    this.#directWrites = opts.directWrites === true;
    this.#closeAfter = !opts.keepAlive;
  }

  get headersSent(): boolean {
    return this.#sent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const socket = this.#socket;
    if (this.#sent || socket.destroyed) return;
    const status = Number(headers.get(':status'));
    this.#noBody = this.#isHead || noBodyStatus(status);
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    let invalid = false;
    // A header block from a strict parser, or checked as it was changed, needs no second look.
    const check = !headers.validated;
    headers.forEach((k, v) => {
      if (k.charCodeAt(0) === 58 /* ':' */) return;
      // Framing and connection handling are this codec's: upstream's are not passed on as they are.
      if (k === 'transfer-encoding' || k === 'connection' || k === 'keep-alive') return;
      if (k === 'content-length') hasLength = true;
      else if (k === 'date') hasDate = true;
      if (check && (!isToken(k) || !isFieldValue(v))) invalid = true;
      head += `${k}: ${v}\r\n`;
    });
    if (invalid) {
      // Invalid header bytes (from a filter or a plugin): never sent, as node:http refuses them.
      this.reset('invalid response headers');
      return;
    }
    if (!hasDate) head += `date: ${httpDate()}\r\n`;
    if (!hasLength && !this.#noBody) {
      if (endStream) head += 'content-length: 0\r\n';
      else if (this.protocol === 'HTTP/1.1') {
        this.#chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else this.#closeAfter = true; // HTTP/1.0: the body ends with the connection
    }
    if (this.#closeAfter) head += 'connection: close\r\n';
    else if (this.protocol === 'HTTP/1.0') head += 'connection: keep-alive\r\n';
    this.#sent = true;
    if (endStream) {
      this.#w.write(head + CRLF);
      this.#end();
      return;
    }
    // The body usually follows in the same read: held until then, so both leave in one write.
    this.#pendingHead = head + CRLF;
    afterRead(flushHead, this);
  }

  /**
   * Writes the held head with `data`: one latin1 string when it is small (one write, no writev),
   * else one writev (corked), the body's bytes passed as they are.
   */
  flushHead(data?: Buffer): void {
    const head = this.#pendingHead;
    if (head === undefined) return;
    this.#pendingHead = undefined;
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (!data) this.#w.write(head);
    else if (data.length <= SMALL_BODY) this.#w.write(head + data.toString('latin1'));
    else {
      const corked = socket.writableCorked;
      if (!corked) socket.cork();
      socket.write(head, 'latin1');
      socket.write(data);
      if (!corked) socket.uncork();
    }
  }

  encodeData(chunk: Buffer, endStream: boolean): boolean {
    let data = chunk;
    const socket = this.#socket;
    if (this.#ended || socket.destroyed) return true;
    let ok = true;
    if (this.#pendingHead !== undefined) {
      if (!this.#chunked && !this.#noBody && data.length > 0) {
        this.flushHead(data);
        data = EMPTY;
      } else this.flushHead();
    }
    if (data.length > 0 && !this.#noBody) {
      if (this.#chunked) {
        if (!socket.writableCorked) {
          socket.cork();
          process.nextTick(uncork, socket);
        }
        socket.write(data.length.toString(16) + CRLF, 'latin1');
        socket.write(data);
        ok = socket.write(CRLF, 'latin1');
      } else ok = this.#w.write(data);
    }
    // Written through at once (or not written: no body, HEAD): the chunk's buffer is free again.
    if (this.#directWrites && socket.writableLength === 0 && this.#w.pending === 0) giveBack(chunk);
    if (endStream) {
      if (this.#chunked) this.#w.write(LAST_CHUNK);
      this.#end();
      return true;
    }
    if (!ok && !this.#waitingDrain) {
      this.#waitingDrain = true;
      socket.once('drain', () => {
        this.#waitingDrain = false;
        this.onWritable?.(true);
      });
    }
    return ok;
  }

  encodeTrailers(trailers: HeaderMap): void {
    const socket = this.#socket;
    if (this.#ended || socket.destroyed) return;
    this.flushHead();
    if (this.#chunked) {
      let t = '0\r\n';
      if (this.#trailers) {
        trailers.forEach((k, v) => {
          if (k.charCodeAt(0) !== 58 && isToken(k) && isFieldValue(v)) t += `${k}: ${v}\r\n`;
        });
      }
      this.#w.write(t + CRLF);
    }
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    this.#owner.responseComplete(this.#closeAfter);
  }

  reset(_reason: string): void {
    this.#ended = true;
    this.#socket.destroy();
  }

  readDisable(disabled: boolean): void {
    this.#owner.readDisable(disabled);
  }

  closeConnectionAfter(): void {
    this.#closeAfter = true;
  }
}
