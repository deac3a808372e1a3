// Downstream HTTP/1.x on node:http (and the shared Node response encoder that HTTP/2's compat API
// also uses): request line + headers → HeaderMap with pseudo-headers, body and trailers → the stream,
// HeaderMap → writeHead/write/end. Malformed requests come back as a rejection, never a throw.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import http2 from 'node:http2';
import { HeaderMap } from './headers.ts';
import type { DownstreamProtocol, ResponseEncoder } from './codec.ts';
import type { HcmConfig } from './hcm-config.ts';
import type { ActiveStream } from './connection-manager-stream.ts';
import type { Http1RequestHead } from './codec-http1-server.ts';

export interface Rejection {
  readonly status: number;
  readonly details: string;
  readonly body: string;
}

const NO_BODY_STATUS = (s: number): boolean => s < 200 || s === 204 || s === 304;

/** Response side over a Node ServerResponse (HTTP/1.x) or Http2ServerResponse (HTTP/2 compat). */
export class NodeResponseEncoder implements ResponseEncoder {
  readonly protocol: DownstreamProtocol;
  readonly #req: IncomingMessage | Http2ServerRequest;
  readonly #res: ServerResponse | Http2ServerResponse;
  readonly #trailers: boolean;
  #closeAfter = false;
  #waitingDrain = false;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(protocol: DownstreamProtocol, req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, trailers: boolean) {
    this.protocol = protocol;
    this.#req = req;
    this.#res = res;
    this.#trailers = trailers;
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const res = this.#res;
    const status = Number(headers.get(':status'));
    const flat: string[] = [];
    headers.forEach((k, v) => {
      if (k.charCodeAt(0) !== 58 /* ':' */) flat.push(k, v);
    });
    const h1 = this.protocol !== 'HTTP/2';
    if (!h1 && endStream) {
      // One HEADERS frame with END_STREAM (gRPC trailers-only replies need it: writeHead + end()
      // would send HEADERS, then an empty DATA frame, which gRPC clients reject).
      const stream = (res as Http2ServerResponse).stream;
      if (stream.destroyed || stream.headersSent) return;
      try {
        stream.respond({ ...headers.toObject(), ':status': status }, { endStream: true });
      } catch {
        this.reset('invalid response headers');
      }
      return;
    }
    if (h1 && this.#closeAfter) flat.push('connection', 'close');
    if (endStream && h1 && !NO_BODY_STATUS(status) && !headers.has('content-length')) flat.push('content-length', '0');
    try {
      (res as ServerResponse).writeHead(status, flat);
    } catch {
      // Invalid header bytes from upstream: Node refuses to send them.
      this.reset('invalid response headers');
      return;
    }
    if (endStream) res.end();
  }

  encodeData(data: Buffer, endStream: boolean): boolean {
    const res = this.#res as ServerResponse;
    if (endStream) {
      if (data.length > 0) res.end(data);
      else res.end();
      return true;
    }
    if (data.length === 0) return true;
    const ok = res.write(data);
    if (!ok && !this.#waitingDrain) {
      this.#waitingDrain = true;
      res.once('drain', () => {
        this.#waitingDrain = false;
        this.onWritable?.(true);
      });
    }
    return ok;
  }

  encodeTrailers(trailers: HeaderMap): void {
    const res = this.#res as ServerResponse;
    if (this.#trailers && trailers.size > 0) res.addTrailers(trailers.toObject() as Record<string, string>);
    res.end();
  }

  reset(_reason: string): void {
    if (this.protocol === 'HTTP/2') {
      const s = (this.#res as Http2ServerResponse).stream;
      if (!s.destroyed) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      this.#req.socket.destroy();
    }
  }

  readDisable(disabled: boolean): void {
    if (disabled) this.#req.pause();
    else this.#req.resume();
  }

  closeConnectionAfter(): void {
    this.#closeAfter = true;
  }
}

/**
 * Delivers the request body and trailers of a Node request to the stream. With a content-length the
 * last chunk carries endStream; otherwise `end` sends an empty last frame or the trailers.
 */
export function pipeRequestBody(req: IncomingMessage | Http2ServerRequest, stream: ActiveStream, endedWithHeaders: boolean, trailers: boolean, useContentLength: boolean): void {
  if (endedWithHeaders) {
    req.resume();
    return;
  }
  const cl = req.headers['content-length'];
  let remaining = useContentLength && cl !== undefined && req.headers['transfer-encoding'] === undefined ? Number(cl) : -1;
  req.on('data', (chunk: Buffer) => {
    if (remaining >= 0) {
      remaining -= chunk.length;
      stream.decodeData(chunk, remaining <= 0);
    } else stream.decodeData(chunk, false);
  });
  req.on('end', () => {
    if (remaining >= 0) {
      if (remaining > 0) stream.decodeData(Buffer.alloc(0), true);
      return;
    }
    const t = req.rawTrailers;
    if (trailers && t.length > 0) {
      const h = new HeaderMap();
      for (let i = 0; i + 1 < t.length; i += 2) h.add(t[i]!, t[i + 1]!);
      stream.decodeTrailers(h);
    } else stream.decodeData(Buffer.alloc(0), true);
  });
}

/** The parts of an HTTP/1.x request head that h1RequestHeaders reads. */
export type H1Head = Pick<Http1RequestHead, 'method' | 'url' | 'httpVersionMajor' | 'httpVersionMinor' | 'rawHeaders'>;

/** HTTP/1.x request head → HeaderMap (`:method`, `:path`, `:authority` from Host, `:scheme`). */
export function h1RequestHeaders(req: H1Head, cfg: HcmConfig, tls: boolean): { headers: HeaderMap; reject?: Rejection } {
  const h = new HeaderMap();
  const method = req.method;
  const raw = req.rawHeaders;
  let host: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      host = raw[i + 1]!;
      break;
    }
  }
  let path = req.url;
  h.add(':method', method);
  if (method === 'CONNECT') {
    host = path;
  } else {
    if (path.startsWith('http://') || path.startsWith('https://')) {
      if (cfg.http1.allowAbsoluteUrl) {
        try {
          const u = new URL(path);
          host = u.host;
          path = u.pathname + u.search;
        } catch {
          return { headers: h, reject: { status: 400, details: 'http1.codec_error', body: 'Bad Request' } };
        }
      }
    }
    h.add(':path', path);
  }
  const v10 = req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  if (v10 && !cfg.http1.acceptHttp10) return { headers: h, reject: { status: 426, details: 'http1.http_1_0_not_supported', body: 'Upgrade Required' } };
  if (host === undefined && v10 && cfg.http1.defaultHostForHttp10) host = cfg.http1.defaultHostForHttp10;
  if (host !== undefined) h.add(':authority', host);
  h.add(':scheme', tls ? 'https' : 'http');
  let count = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    count++;
    if (name.length === 4 && name.toLowerCase() === 'host') continue;
    h.add(name, raw[i + 1]!);
  }
  if (count > cfg.maxHeadersCount) return { headers: h, reject: { status: 431, details: 'http1.too_many_headers', body: 'Request Header Fields Too Large' } };
  if (host === undefined && !v10 && method !== 'CONNECT') return { headers: h, reject: { status: 400, details: 'missing_host_header', body: '' } };
  return { headers: h };
}
