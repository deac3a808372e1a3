// Downstream HTTP/2 (h2c or TLS with ALPN h2) on node:http2's core stream API (the compat layer's
// request/response objects cost 1.6–2× the CPU): request pseudo-headers pass through; header
// count/size limits answer 431; a missing :authority answers 400. H2ResponseEncoder writes the
// response on the ServerHttp2Stream; h2RequestBody feeds the request body and trailers to the stream.

import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { HeaderMap } from './headers.ts';
import type { HcmConfig } from './hcm-config.ts';
import type { Rejection } from './codec-http1.ts';
import type { ResponseEncoder } from './codec.ts';
import type { ActiveStream } from './connection-manager-stream.ts';

const EMPTY = Buffer.alloc(0);

/** The response side of one downstream HTTP/2 stream. */
export class H2ResponseEncoder implements ResponseEncoder {
  readonly protocol = 'HTTP/2' as const;
  readonly #stream: ServerHttp2Stream;
  #trailers: OutgoingHttpHeaders | undefined;
  #waitingDrain = false;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(stream: ServerHttp2Stream) {
    this.#stream = stream;
  }

  get headersSent(): boolean {
    return this.#stream.headersSent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const stream = this.#stream;
    if (stream.destroyed || stream.headersSent) return;
    const out = headers.toObject() as OutgoingHttpHeaders;
    out[':status'] = Number(headers.get(':status'));
    try {
      // With endStream, one HEADERS frame with END_STREAM (gRPC trailers-only replies need it).
      stream.respond(out, endStream ? { endStream: true } : { waitForTrailers: true });
    } catch {
      // Connection-specific or invalid headers: node:http2 refuses to send them.
      this.reset('invalid response headers');
      return;
    }
    if (!endStream) stream.once('wantTrailers', () => this.#sendTrailers());
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
    if (endStream) {
      if (data.length > 0) stream.end(data);
      else stream.end();
      return true;
    }
    if (data.length === 0) return true;
    const ok = stream.write(data);
    if (!ok && !this.#waitingDrain) {
      this.#waitingDrain = true;
      stream.once('drain', () => {
        this.#waitingDrain = false;
        this.onWritable?.(true);
      });
    }
    return ok;
  }

  encodeTrailers(trailers: HeaderMap): void {
    const stream = this.#stream;
    if (stream.destroyed) return;
    if (trailers.size > 0) this.#trailers = trailers.toObject() as OutgoingHttpHeaders;
    stream.end();
  }

  reset(_reason: string): void {
    const s = this.#stream;
    if (!s.destroyed) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  readDisable(disabled: boolean): void {
    if (disabled) this.#stream.pause();
    else this.#stream.resume();
  }

  closeConnectionAfter(): void {
    // HTTP/2 drains with GOAWAY (the connection's business), not per response.
  }
}

/** Delivers the request body and trailers of an HTTP/2 stream to the ActiveStream. */
export function h2RequestBody(h2: ServerHttp2Stream, stream: ActiveStream, endedWithHeaders: boolean): void {
  if (endedWithHeaders) return;
  let trailers: HeaderMap | undefined;
  h2.on('data', (chunk: Buffer) => stream.decodeData(chunk, false));
  h2.once('trailers', (_h: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    trailers = HeaderMap.fromFlat(raw);
  });
  h2.once('end', () => {
    // A stream closed under us (RST_STREAM, the session gone) also ends its readable side: not an end of the body.
    if (h2.aborted) return;
    if (trailers && trailers.size > 0) stream.decodeTrailers(trailers);
    else stream.decodeData(EMPTY, true);
  });
}

/** HTTP/2 request headers → HeaderMap (pseudo-headers first, as received). */
export function h2RequestHeaders(raw: readonly string[], cfg: HcmConfig): { headers: HeaderMap; reject?: Rejection } {
  const h = new HeaderMap();
  let count = 0;
  let host: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) !== 58 /* ':' */) {
      count++;
      if (name === 'host') {
        host ??= value;
        continue;
      }
    }
    h.add(name, value);
  }
  if (!h.has(':authority') && host !== undefined) h.set(':authority', host);
  if (count > cfg.maxHeadersCount || h.byteSize() > cfg.maxRequestHeadersKb * 1024) {
    return { headers: h, reject: { status: 431, details: 'http2.too_many_headers', body: 'Request Header Fields Too Large' } };
  }
  if (!h.has(':authority') && h.get(':method') !== 'CONNECT') return { headers: h, reject: { status: 400, details: 'missing_host_header', body: '' } };
  return { headers: h };
}
