// One HTTP/1.1 upstream request through the cluster's undici Pool, streamed both ways: request body
// through a Readable undici pulls from, response body pushed to the router, pause/resume both ways.
// Failure: before the socket is connected → connect failure (UF); after → connection termination (UC).

import { Readable, type Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { HeaderMap } from '../../../proxy/http/headers.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../proxy/errors.ts';
import type { TlsConnectionInfo } from '../../../proxy/tls/types.ts';
import type { UpstreamTlsObserver } from '../../../proxy/upstream/types.ts';
import { EMPTY, responseHeaderMap, skipRequestHeader, type UpstreamRequest, type UpstreamSink } from './upstream-request.ts';

const BODY_HIGH_WATER_MARK = 64 * 1024; // bytes queued for undici before the downstream is paused

class AbortedByRouter extends Error {
  constructor() {
    super('request aborted by the router');
    this.name = 'AbortError';
  }
}

export interface Http1RequestOptions {
  /** Upgrade token (`websocket`) for an upgrade request; undici adds `connection: upgrade`. */
  readonly upgrade?: string;
}

/** Maps an undici error to legate's: `connected` says whether the request reached a socket. */
export function classifyUndiciError(err: Error & { code?: string }, connected: boolean): ProxyError {
  const code = err.code ?? '';
  if (!connected) {
    const timeout = code === 'UND_ERR_CONNECT_TIMEOUT';
    return new ProxyError(timeout ? ErrorCode.UPSTREAM_CONNECT_TIMEOUT : ErrorCode.UPSTREAM_CONNECT_FAILURE, `upstream connect error: ${code || err.message}`, {
      source: 'upstream',
      retryable: true,
      flag: ResponseFlag.UpstreamConnectionFailure,
      cause: err,
    });
  }
  if (code.startsWith('HPE_') || code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_HEADERS_OVERFLOW') {
    return new ProxyError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, `upstream protocol error: ${code}`, { source: 'upstream', flag: ResponseFlag.UpstreamProtocolError, cause: err });
  }
  return new ProxyError(ErrorCode.UPSTREAM_RESET, `upstream connection termination: ${code || err.message}`, {
    source: 'upstream',
    retryable: true,
    flag: ResponseFlag.UpstreamConnectionTermination,
    cause: err,
  });
}

class Http1UpstreamRequest implements UpstreamRequest, Dispatcher.DispatchHandler, UpstreamTlsObserver {
  readonly #sink: UpstreamSink;
  readonly #body: Readable | null;
  #controller: Dispatcher.DispatchController | undefined;
  #bodyBlocked = false;
  #bodyEnded = false;
  /** Aborted by the router, or the response completed / failed: ignore everything after. */
  #done = false;
  #pauseWanted = false;

  constructor(sink: UpstreamSink, hasBody: boolean) {
    this.#sink = sink;
    this.#body = hasBody
      ? new Readable({
          highWaterMark: BODY_HIGH_WATER_MARK,
          read: () => {
            if (this.#bodyBlocked) {
              this.#bodyBlocked = false;
              if (!this.#done) this.#sink.onUpstreamWritable(true);
            }
          },
        })
      : null;
    // undici destroys the body on failure; the error is reported through onResponseError.
    this.#body?.on('error', () => {});
  }

  get body(): Readable | null {
    return this.#body;
  }

  // ---- router → upstream ----

  sendData(data: Buffer, endStream: boolean): void {
    const body = this.#body;
    if (!body || this.#bodyEnded || body.destroyed) return;
    if (data.length > 0 && !body.push(data) && !this.#bodyBlocked) {
      this.#bodyBlocked = true;
      this.#sink.onUpstreamWritable(false);
    }
    if (endStream) {
      this.#bodyEnded = true;
      body.push(null);
    }
  }

  sendTrailers(_trailers: HeaderMap): void {
    this.sendData(EMPTY, true);
  }

  pauseResponse(): void {
    this.#pauseWanted = true;
    this.#controller?.pause();
  }

  resumeResponse(): void {
    this.#pauseWanted = false;
    this.#controller?.resume();
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    const reason = new AbortedByRouter();
    if (this.#controller) this.#controller.abort(reason);
    // Not yet on a socket: a destroyed body makes undici fail the request as soon as it is dispatched.
    if (this.#body && !this.#body.destroyed) this.#body.destroy(reason);
  }

  // ---- undici → router ----

  /** The pool tells which TLS connection the request got (UpstreamTlsObserver). */
  onUpstreamTls(info: TlsConnectionInfo): void {
    if (!this.#done) this.#sink.onUpstreamTls?.(info);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#done) controller.abort(new AbortedByRouter());
    else if (this.#pauseWanted) controller.pause();
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: Duplex): void {
    if (this.#done) {
      socket.destroy();
      return;
    }
    this.#done = true;
    const map = new HeaderMap();
    map.add(':status', String(statusCode));
    // undici already unshifted any bytes read past the response head back into the socket.
    this.#sink.onUpstreamUpgrade(responseHeaderMap(map, headers, true), socket, EMPTY);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.#done || statusCode < 200) return;
    if (this.#pauseWanted) controller.pause();
    const map = new HeaderMap();
    map.add(':status', String(statusCode));
    this.#sink.onUpstreamHeaders(responseHeaderMap(map, headers, false), false);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#done) this.#sink.onUpstreamData(chunk, false);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#done) return;
    this.#done = true;
    let hasTrailers = false;
    for (const _ in trailers) {
      hasTrailers = true;
      break;
    }
    if (hasTrailers) this.#sink.onUpstreamTrailers(responseHeaderMap(new HeaderMap(), trailers, false));
    else this.#sink.onUpstreamData(EMPTY, true);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.onUpstreamError(err instanceof ProxyError ? err : classifyUndiciError(err, this.#controller !== undefined));
  }
}

/**
 * Starts a request on an undici dispatcher. `headers` carry the pseudo-headers; `endStream` says
 * the request has no body. Synchronous argument errors are reported through the sink, on a microtask.
 */
export function startHttp1Request(pool: Dispatcher, headers: HeaderMap, endStream: boolean, sink: UpstreamSink, opts: Http1RequestOptions = {}): UpstreamRequest {
  const req = new Http1UpstreamRequest(sink, !endStream && opts.upgrade === undefined);
  const flat: string[] = [];
  const authority = headers.get(':authority') ?? headers.get('host');
  if (authority !== undefined) flat.push('host', authority);
  headers.forEach((k, v) => {
    if (!skipRequestHeader(k) || (k === 'te' && v === 'trailers')) flat.push(k, v);
  });
  const options: Dispatcher.DispatchOptions = {
    method: (headers.get(':method') ?? 'GET') as Dispatcher.HttpMethod,
    path: headers.get(':path') ?? '/',
    headers: flat,
    body: req.body,
    upgrade: opts.upgrade ?? null,
    // The router's route timeout governs; undici's 300 s header/body timeouts would fire first otherwise.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  try {
    pool.dispatch(options, req);
  } catch (err) {
    const e = new ProxyError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, `invalid upstream request: ${(err as Error).message}`, { source: 'internal', flag: ResponseFlag.UpstreamProtocolError, cause: err });
    queueMicrotask(() => req.onResponseError(undefined, e));
  }
  return req;
}
