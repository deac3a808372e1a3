// Downstream HTTP/2 (h2c or TLS with ALPN h2) on node:http2's core stream API (the compat layer's
// request/response objects cost 1.6-2× the CPU): request pseudo-headers pass through; header
// count/size limits answer 431; a missing :authority answers 400. H2ResponseEncoder writes the
// response on the ServerHttp2Stream (its head held to the end of the tick, so a response complete in
// that tick skips the trailers handshake); h2RequestBody feeds the request body and trailers to the stream.

import type { Duplex } from 'node:stream';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream, ServerStreamResponseOptions } from 'node:http2';
import { HeaderMap } from './headers.ts';
import { ErrorCode } from './h2/frames.ts';
import type { HcmConfig } from './hcm-config.ts';
import type { Rejection } from './codec-http1.ts';
import type { ResponseEncoder } from './codec.ts';
import type { Http1RequestSink } from './codec-http1-server.ts';

const EMPTY = Buffer.alloc(0);
// respond() only reads its options: one shared object each instead of one per response.
const END_STREAM: ServerStreamResponseOptions = Object.freeze({ endStream: true });
const WAIT_FOR_TRAILERS: ServerStreamResponseOptions = Object.freeze({ waitForTrailers: true });
/** Body bytes held with a response head until the end of the tick; more sends the head at once. */
const HOLD_BODY_BYTES = 16 * 1024;

/**
 * Response heads waiting for the end of the current tick (see H2ResponseEncoder): one shared list
 * and one microtask per tick, not one per stream.
 */
let held: H2ResponseEncoder[] = [];
let flushQueued = false;
function flushHeldHeads(): void {
  const list = held;
  held = [];
  flushQueued = false;
  for (const e of list) {
    try {
      e.flushHead();
    } catch {
      // One stream's failure (a throwing writability handler) must not strand the heads after it.
      e.reset('response head flush failed');
    }
  }
}

/** Response headers as node:http2's raw [name, value, ...] list: `:status` and the regular headers, in order. */
export function rawResponseHeaders(headers: HeaderMap): string[] {
  const out: string[] = [];
  headers.forEach((k, v) => {
    if (k.charCodeAt(0) !== 58 /* ':' */ || k === ':status') out.push(k, v);
  });
  return out;
}

/** Where an HTTP/2 stream's request events go: the stream behind it (as for HTTP/1.1). */
export type H2RequestSink = Http1RequestSink;

/**
 * The response side of one downstream HTTP/2 stream, and the only holder of listeners on its
 * ServerHttp2Stream. Response headers without END_STREAM are held
 * until the end of the tick: when the body's end (or trailers) arrives in the same tick, as a small
 * upstream response does, the stream is answered without node:http2's trailers handshake
 * (`waitForTrailers`: a 'wantTrailers' event, a setImmediate and an extra empty DATA frame per
 * response). A response still open at the end of the tick goes out then, ready for trailers.
 *
 * A ServerHttp2Stream survives young-generation GCs well after it ends, until the next full GC
 * (a server that answers 3,000 streams has 1.5 KB per stream promoted by the next two scavenges,
 * 7 B left after a full GC). Its native handle points back at it twice (`handle[owner_symbol]` and
 * `handle.owner`), and scavenges treat the handle's weak reference as strong: clearing the first on
 * 'close' cut the 1.5 KB to 0.3 KB there, but under h2c load through legate clearing both changed
 * nothing (old space grew by about 2 KB per request either way, 2026-12-02), so they are left
 * alone. Whatever the stream's listeners reference is promoted with it: that was every stream's
 * filters, headers and stream info (promoted bytes per request under h2c load, --trace-gc-nvp:
 * 3.5 KB before, 0.95 KB after). So the listeners reach the ActiveStream only through `#sink`,
 * which release() clears when the stream is over.
 */
export class H2ResponseEncoder implements ResponseEncoder {
  readonly protocol = 'HTTP/2' as const;
  readonly #stream: ServerHttp2Stream;
  #sink: H2RequestSink | undefined;
  /** Response headers not yet given to node:http2, and body chunks that came after them in this tick. */
  #head: string[] | undefined;
  #body: Buffer[] | undefined;
  #bodyBytes = 0;
  #trailers: OutgoingHttpHeaders | undefined;
  #waitingDrain = false;
  /** An extended CONNECT (upgrade) stream: a 101 answers 200 and the stream becomes the tunnel. */
  #upgrade = false;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
  }

  /** Delivers the stream's reset (a 'close' before the stream is done) to `sink`. */
  bind(sink: H2RequestSink): void {
    this.#sink = sink;
    this.#stream.on('close', () => {
      const s = this.#sink;
      if (s && !s.done) s.onDownstreamReset('downstream stream reset');
    });
  }

  /** Delivers the request body and trailers to the bound sink. */
  readBody(): void {
    const h2 = this.#stream;
    let trailers: HeaderMap | undefined;
    h2.on('data', (chunk: Buffer) => this.#sink?.decodeData(chunk, false));
    // Each fires at most once; `on` spares once()'s wrapper per stream.
    h2.on('trailers', (_h: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      trailers = HeaderMap.fromFlat(raw);
    });
    h2.on('end', () => {
      // A stream closed under us (RST_STREAM, the session gone) also ends its readable side: not an end of body.
      const s = this.#sink;
      if (h2.aborted || !s) return;
      if (trailers && trailers.size > 0) s.decodeTrailers(trailers);
      else s.decodeData(EMPTY, true);
    });
  }

  release(): void {
    this.#sink = undefined;
  }

  get headersSent(): boolean {
    return this.#head !== undefined || this.#stream.headersSent;
  }

  /** The request is an extended CONNECT upgrade (h2UpgradeToH1). */
  upgradeStream(): void {
    this.#upgrade = true;
  }

  /** The stream itself, once its upgrade was answered (Envoy's 101 -> 200): the tunnel's downstream side. */
  takeTunnel(): { socket: Duplex; head: Buffer } | undefined {
    const stream = this.#stream;
    return this.#upgrade && stream.headersSent && !stream.destroyed ? { socket: stream, head: EMPTY } : undefined;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const stream = this.#stream;
    if (stream.destroyed || this.#head !== undefined || stream.headersSent) return;
    if (this.#upgrade && !endStream && h2UpgradeResponse(headers)) {
      // Sent at once and never ended here (the tunnel ends it).
      return void this.#respond(rawResponseHeaders(headers));
    }
    const raw = rawResponseHeaders(headers);
    // With endStream, one HEADERS frame with END_STREAM (gRPC trailers-only replies need it).
    if (endStream) return void this.#respond(raw, END_STREAM);
    this.#head = raw;
    held.push(this);
    if (!flushQueued) {
      flushQueued = true;
      queueMicrotask(flushHeldHeads);
    }
  }

  /** End of the tick: the response is still open, so it may end with trailers. */
  flushHead(): void {
    if (this.#head !== undefined && !this.#sendHead()) {
      this.#awaitDrain();
      this.onWritable?.(false);
    }
  }

  /** Sends the held head (ready for trailers) and body; false when the stream's buffer is full. */
  #sendHead(): boolean {
    const head = this.#head!;
    this.#head = undefined;
    const body = this.#body;
    this.#body = undefined;
    this.#bodyBytes = 0;
    if (!this.#respond(head, WAIT_FOR_TRAILERS) || body === undefined) return true;
    let ok = true;
    for (const b of body) ok = this.#stream.write(b);
    return ok;
  }

  /** Submits the response headers; false when node:http2 refused them (the stream is reset). */
  #respond(raw: string[], opts?: ServerStreamResponseOptions): boolean {
    const stream = this.#stream;
    if (stream.destroyed) return false;
    try {
      stream.respond(raw, opts);
    } catch {
      // Connection-specific or invalid headers: node:http2 refuses to send them.
      this.reset('invalid response headers');
      return false;
    }
    if (opts === WAIT_FOR_TRAILERS) stream.once('wantTrailers', () => this.#sendTrailers());
    return true;
  }

  #sendTrailers(): void {
    try {
      // Empty trailers: node:http2 ends the stream with an empty DATA frame.
      this.#stream.sendTrailers(this.#trailers ?? {});
    } catch {
      this.reset('invalid response trailers');
    }
  }

  encodeData(data: Buffer, endStream: boolean): boolean {
    const stream = this.#stream;
    if (stream.destroyed) return true;
    const head = this.#head;
    if (head !== undefined) {
      if (!endStream) {
        if (this.#bodyBytes + data.length <= HOLD_BODY_BYTES) {
          if (data.length > 0) (this.#body ??= []).push(data);
          this.#bodyBytes += data.length;
          return true;
        }
        // A large body: no more holding, the stream's own buffer applies backpressure.
        const headOk = this.#sendHead();
        if (stream.closed) return true;
        const ok = stream.write(data) && headOk;
        if (!ok) this.#awaitDrain();
        return ok;
      }
      // The whole response in this tick: no trailers can follow.
      this.#head = undefined;
      const body = this.#body;
      this.#body = undefined;
      this.#bodyBytes = 0;
      if (body === undefined && data.length === 0) {
        this.#respond(head, END_STREAM);
        return true;
      }
      if (!this.#respond(head)) return true;
      let last = data;
      if (body !== undefined) {
        // Held chunks are never empty; the last bytes (this chunk, or the last held one) end the stream.
        const n = data.length > 0 ? body.length : body.length - 1;
        for (let i = 0; i < n; i++) stream.write(body[i]!);
        if (data.length === 0) last = body[body.length - 1]!;
      }
      this.#endWith(last);
      return true;
    }
    if (endStream) {
      if (data.length > 0) stream.end(data);
      else stream.end();
      return true;
    }
    if (data.length === 0) return true;
    const ok = stream.write(data);
    if (!ok) this.#awaitDrain();
    return ok;
  }

  /**
   * Writes the last body bytes with END_STREAM. When the request side has already ended, node:http2
   * destroys the stream as soon as END_STREAM is out, before the write's callback, and then builds an
   * ERR_STREAM_DESTROYED (stack trace included) for it: END_STREAM waits for that write instead.
   */
  #endWith(last: Buffer): void {
    const stream = this.#stream;
    if (last.length === 0) stream.end();
    else if (!stream.readableEnded) stream.end(last);
    else {
      stream.write(last, (err) => {
        if (!err && !stream.destroyed) stream.end();
      });
    }
  }

  #awaitDrain(): void {
    if (this.#waitingDrain) return;
    this.#waitingDrain = true;
    this.#stream.once('drain', () => {
      this.#waitingDrain = false;
      this.onWritable?.(true);
    });
  }

  encodeTrailers(trailers: HeaderMap): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    if (trailers.size > 0) this.#trailers = trailers.toObject() as OutgoingHttpHeaders;
    // Trailers in the tick of the headers: the held response goes out now, ready for them.
    if (this.#head !== undefined) this.#sendHead();
    if (!stream.destroyed) stream.end();
  }

  reset(_reason: string): void {
    this.#head = undefined;
    this.#body = undefined;
    this.#bodyBytes = 0;
    const s = this.#stream;
    if (!s.destroyed) s.close(ErrorCode.INTERNAL_ERROR);
  }

  readDisable(disabled: boolean): void {
    if (disabled) this.#stream.pause();
    else this.#stream.resume();
  }

  closeConnectionAfter(): void {
    // HTTP/2 drains with GOAWAY (the connection's business), not per response.
  }
}

export interface H2RequestHead {
  readonly headers: HeaderMap;
  readonly reject?: Rejection;
  /** A regular header name has an underscore (headers_with_underscores_action applies). */
  readonly underscores: boolean;
}

/**
 * An extended CONNECT (RFC 8441: `:method CONNECT` with `:protocol`) as the HTTP/1.1 upgrade request
 * Envoy makes of it (transformUpgradeRequestFromH2toH1): GET, `upgrade: <protocol>`,
 * `connection: upgrade`. Returns the upgrade type (lowercase), or undefined for any other request.
 */
export function h2UpgradeToH1(h: HeaderMap): string | undefined {
  const protocol = h.get(':protocol');
  if (protocol === undefined || h.get(':method') !== 'CONNECT') return undefined;
  h.remove(':protocol');
  h.set(':method', 'GET');
  h.set('upgrade', protocol);
  h.set('connection', 'upgrade');
  return protocol.toLowerCase();
}

/**
 * An upstream's 101 to an extended CONNECT as Envoy answers it on HTTP/2
 * (transformUpgradeResponseFromH1toH2): 200, without the HTTP/1.1 upgrade headers. Returns false
 * (and changes nothing) for any other status.
 */
export function h2UpgradeResponse(headers: HeaderMap): boolean {
  if (headers.get(':status') !== '101') return false;
  headers.set(':status', '200');
  headers.remove('upgrade');
  headers.remove('connection');
  return true;
}

/**
 * HTTP/2 request headers -> HeaderMap (pseudo-headers first, as received), with the header count,
 * size, `:authority` and underscore checks done in the same pass. The codec (nghttp2, or
 * h2/validate.ts) has already refused upper-case names, pseudo-headers after regular ones, and
 * connection-specific headers. Cookie fields split across several `cookie` headers (RFC 9113
 * §8.2.3) are joined into one with "; ", as Envoy's codec does, for HTTP/1.1 upstreams.
 */
export function h2RequestHeaders(raw: readonly string[], cfg: HcmConfig): H2RequestHead {
  const h = new HeaderMap();
  let count = 0;
  let bytes = 0;
  let host: string | undefined;
  let hasAuthority = false;
  let method: string | undefined;
  let underscores = false;
  let cookies = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (name === ':authority') hasAuthority = true;
      else if (name === ':method') method ??= value;
    } else {
      count++;
      if (name === 'host') {
        host ??= value;
        continue;
      }
      if (name === 'cookie') cookies++;
      else if (!underscores && name.includes('_')) underscores = true;
    }
    bytes += name.length + value.length;
    h.add(name, value);
  }
  if (cookies > 1) h.set('cookie', h.getAll('cookie').join('; '));
  if (!hasAuthority && host !== undefined) {
    h.add(':authority', host);
    bytes += 10 /* ':authority' */ + host.length;
    hasAuthority = true;
  }
  if (count > cfg.maxHeadersCount || bytes > cfg.maxRequestHeadersKb * 1024) {
    return { headers: h, reject: { status: 431, details: 'http2.too_many_headers', body: 'Request Header Fields Too Large' }, underscores };
  }
  if (!hasAuthority && method !== 'CONNECT') return { headers: h, reject: { status: 400, details: 'missing_host_header', body: '' }, underscores };
  return { headers: h, underscores };
}
