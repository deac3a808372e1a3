// One HTTP/1.1 upstream request on a connection of the cluster's Http1Pool, streamed both ways: the
// body is written as it arrives (held until the request has its connection), the response is
// delivered as the connection parses it, and pause/resume work both ways.
// Failure: no connection (connect failure, pool closed) -> UF; the connection closed or failed before
// the response completed -> connection termination (UC, retryable); a malformed response -> UPE.

import type { Socket } from 'node:net';
import { HeaderMap, lowerName } from '../../../proxy/http/headers.ts';
import { isFieldValue, isToken } from '../../../proxy/http/http-chars.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../proxy/errors.ts';
import type { Http1Connection, Http1Exchange, Http1RequestHead } from '../../../proxy/upstream/http1-connection.ts';
import type { Http1Pool, Http1PoolRequest } from '../../../proxy/upstream/http1-pool.ts';
import { EMPTY, HOP_BY_HOP, skipRequestHeader, type UpstreamRequest, type UpstreamSink } from './upstream-request.ts';

const BODY_HIGH_WATER_MARK = 64 * 1024; // body bytes held before the connection is up, before the downstream is paused
/** A request target with bytes that cannot go on the wire (undici's and node:http's rule). */
const INVALID_PATH = /[^\u0021-\u00ff]/;

export interface Http1RequestOptions {
  /** Upgrade token (`websocket`) for an upgrade request; sent with `connection: upgrade`. */
  readonly upgrade?: string;
}

class Http1UpstreamRequest implements UpstreamRequest, Http1Exchange, Http1PoolRequest {
  readonly #sink: UpstreamSink;
  readonly #pool: Http1Pool;
  readonly #head: Http1RequestHead;
  #conn: Http1Connection | undefined;
  /** Body that came before the connection: written when it is up. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  #heldEnd = false;
  #bodyEnded: boolean;
  #blocked = false;
  /** Aborted by the router, or the response completed / failed: ignore everything after. */
  #done = false;
  #pauseWanted = false;

  constructor(sink: UpstreamSink, pool: Http1Pool, head: Http1RequestHead) {
    this.#sink = sink;
    this.#pool = pool;
    this.#head = head;
    this.#bodyEnded = head.endsWithHead;
  }

  // ---- pool -> request ----

  onConnection(conn: Http1Connection): void {
    if (this.#done || this.#sink.onUpstreamReady?.() === false) {
      // Not sent after all: the connection goes back to the pool untouched.
      this.#done = true;
      this.#pool.free(conn);
      return;
    }
    this.#conn = conn;
    if (conn.tls) this.#sink.onUpstreamTls?.(conn.tls);
    conn.start(this.#head, this);
    if (this.#pauseWanted) conn.pause();
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    let ok = true;
    for (let i = 0; i < held.length; i++) ok = conn.write(held[i]!, this.#heldEnd && i === held.length - 1);
    if (ok) this.onWritable();
  }

  onPoolFailure(err: ProxyError): void {
    this.#fail(err);
  }

  // ---- router -> upstream ----

  sendData(data: Buffer, endStream: boolean): void {
    if (this.#bodyEnded || this.#done) return;
    if (endStream) this.#bodyEnded = true;
    const conn = this.#conn;
    if (conn) {
      if (!conn.write(data, endStream)) this.#block();
      return;
    }
    (this.#held ??= []).push(data);
    this.#heldEnd = endStream;
    this.#heldBytes += data.length;
    if (this.#heldBytes > BODY_HIGH_WATER_MARK) this.#block();
  }

  sendTrailers(_trailers: HeaderMap): void {
    this.sendData(EMPTY, true);
  }

  pauseResponse(): void {
    this.#pauseWanted = true;
    this.#conn?.pause();
  }

  resumeResponse(): void {
    this.#pauseWanted = false;
    this.#conn?.resume();
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#conn) this.#conn.reset();
    else this.#pool.cancel(this);
  }

  #block(): void {
    if (this.#blocked) return;
    this.#blocked = true;
    this.#sink.onUpstreamWritable(false);
  }

  // ---- connection -> router ----

  onWritable(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    if (!this.#done) this.#sink.onUpstreamWritable(true);
  }

  onStreamDone(): void {
    this.#sink.onUpstreamStreamDone?.();
  }

  onResponseHead(status: number, rawHeaders: string[]): void {
    if (!this.#done) this.#sink.onUpstreamHeaders(responseHeaders(status, rawHeaders, false), false);
  }

  onResponseData(chunk: Buffer): void {
    if (!this.#done) this.#sink.onUpstreamData(chunk, false);
  }

  onResponseEnd(rawTrailers: string[]): void {
    if (this.#done) return;
    this.#done = true;
    if (rawTrailers.length > 0) this.#sink.onUpstreamTrailers(HeaderMap.fromFlat(rawTrailers));
    else this.#sink.onUpstreamData(EMPTY, true);
  }

  onUpgrade(status: number, rawHeaders: string[], socket: Socket, rest: Buffer): void {
    if (this.#done) return void socket.destroy();
    this.#done = true;
    this.#sink.onUpstreamUpgrade(responseHeaders(status, rawHeaders, true), socket, rest);
  }

  onConnectionFailure(kind: 'reset' | 'protocol', detail: string): void {
    this.#fail(
      kind === 'protocol'
        ? new ProxyError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, `upstream protocol error: ${detail}`, { source: 'upstream', flag: ResponseFlag.UpstreamProtocolError })
        : new ProxyError(ErrorCode.UPSTREAM_RESET, `upstream connection termination: ${detail}`, { source: 'upstream', retryable: true, flag: ResponseFlag.UpstreamConnectionTermination }),
    );
  }

  #fail(err: ProxyError): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.onUpstreamError(err);
  }
}

/** `:status` and the response's headers, names lowercased; hop-by-hop headers dropped unless `keepHopByHop` (101). */
function responseHeaders(status: number, raw: readonly string[], keepHopByHop: boolean): HeaderMap {
  const map = new HeaderMap();
  map.addParsed(':status', String(status));
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = lowerName(raw[i]!);
    if (!keepHopByHop && HOP_BY_HOP.has(k)) continue;
    map.addParsed(k, raw[i + 1]!);
  }
  return map;
}

/** Methods whose request carries `content-length: 0` when it has no body (as undici and Envoy send them). */
const PAYLOAD_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/** The request line and header block, or the name of what cannot be sent. */
function requestHead(headers: HeaderMap, endStream: boolean, upgrade: string | undefined): Http1RequestHead | string {
  const method = headers.get(':method') ?? 'GET';
  const path = headers.get(':path') ?? '/';
  if (!isToken(method)) return 'method';
  if (INVALID_PATH.test(path)) return 'path';
  let head = `${method} ${path} HTTP/1.1\r\n`;
  const authority = headers.get(':authority') ?? headers.get('host');
  // A header block from a strict parser, or checked as it was changed, needs no second look.
  const check = !headers.validated;
  if (authority !== undefined) {
    if (check && !isFieldValue(authority)) return 'host';
    head += `host: ${authority}\r\n`;
  }
  let hasLength = false;
  let bad: string | undefined;
  headers.forEach((k, v) => {
    if (skipRequestHeader(k) && !(k === 'te' && v === 'trailers')) return;
    if (check && (!isToken(k) || !isFieldValue(v))) bad ??= k;
    if (k === 'content-length') hasLength = true;
    head += `${k}: ${v}\r\n`;
  });
  if (bad !== undefined) return `header ${bad}`;
  const hasBody = !endStream && upgrade === undefined;
  const chunked = hasBody && !hasLength;
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  else if (!hasBody && !hasLength && PAYLOAD_METHODS.has(method)) head += 'content-length: 0\r\n';
  if (upgrade !== undefined) {
    if (!isToken(upgrade)) return 'upgrade';
    head += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  }
  return { head: `${head}\r\n`, chunked, endsWithHead: !hasBody, bodylessResponse: method === 'HEAD', upgrade: upgrade !== undefined };
}

/**
 * Starts a request on a cluster's HTTP/1.1 pool. `headers` carry the pseudo-headers; `endStream` says
 * the request has no body. A request that cannot be written fails through the sink, on a microtask.
 */
export function startHttp1Request(pool: Http1Pool, headers: HeaderMap, endStream: boolean, sink: UpstreamSink, opts: Http1RequestOptions = {}): UpstreamRequest {
  const head = requestHead(headers, endStream, opts.upgrade);
  if (typeof head === 'string') {
    const err = new ProxyError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, `invalid upstream request: invalid ${head}`, { source: 'internal', flag: ResponseFlag.UpstreamProtocolError });
    queueMicrotask(() => sink.onUpstreamError(err));
    return { sendData() {}, sendTrailers() {}, pauseResponse() {}, resumeResponse() {}, abort() {} };
  }
  const req = new Http1UpstreamRequest(sink, pool, head);
  pool.request(req);
  return req;
}
