// One HTTP/2 (h2c) upstream request on a session from the cluster's pool, streamed both ways with
// HTTP/2 flow control, trailers both ways. Failure: session connect → UF; RST_STREAM → UR;
// session gone (GOAWAY, socket closed) → UC.

import { constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { HeaderMap } from '../../../proxy/http/headers.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../proxy/errors.ts';
import { upstreamTlsInfo } from '../../../proxy/upstream/upstream-tls.ts';
import { EMPTY, responseHeaderMap, skipRequestHeader, type UpstreamRequest, type UpstreamSink } from './upstream-request.ts';

const PENDING_HIGH_WATER_MARK = 64 * 1024; // bytes queued while the session connects before the downstream is paused

function resetError(rstCode: number | undefined, sessionGone: boolean, cause?: unknown): ProxyError {
  if (sessionGone) {
    return new ProxyError(ErrorCode.UPSTREAM_RESET, 'upstream connection termination', { source: 'upstream', retryable: true, flag: ResponseFlag.UpstreamConnectionTermination, cause });
  }
  return new ProxyError(ErrorCode.UPSTREAM_RESET, `upstream remote reset (code ${rstCode ?? 'unknown'})`, {
    source: 'upstream',
    retryable: rstCode === h2.NGHTTP2_REFUSED_STREAM,
    flag: ResponseFlag.UpstreamRemoteReset,
    cause,
  });
}

/** The request's :scheme when valid (Envoy forwards it), else http. */
function requestScheme(headers: HeaderMap): string {
  const s = headers.get(':scheme');
  return s === 'https' || s === 'http' ? s : 'http';
}

function toH2Headers(headers: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': headers.get(':method') ?? 'GET',
    ':path': headers.get(':path') ?? '/',
    ':scheme': requestScheme(headers),
    ':authority': headers.get(':authority') ?? headers.get('host') ?? '',
  };
  headers.forEach((k, v) => {
    if (skipRequestHeader(k) && !(k === 'te' && v === 'trailers')) return;
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [String(prev), v];
  });
  return out;
}

class Http2UpstreamRequest implements UpstreamRequest {
  readonly #sink: UpstreamSink;
  #stream: ClientHttp2Stream | undefined;
  /** Request body queued while the session connects; trailers at the end, if any. */
  #pending: Buffer[] | undefined = [];
  #pendingBytes = 0;
  #pendingBlocked = false;
  /** stream.write() returned false and no drain yet: the router was told once. */
  #writeBlocked = false;
  #requestEnded = false;
  #trailers: HeaderMap | undefined;
  #responseStarted = false;
  #responseTrailers: HeaderMap | undefined;
  #done = false;
  #paused = false;

  constructor(sink: UpstreamSink) {
    this.#sink = sink;
  }

  start(sessionPromise: Promise<ClientHttp2Session>, headers: OutgoingHttpHeaders, endStream: boolean, schemeMatchUpstream: boolean): void {
    if (endStream) this.#requestEnded = true;
    sessionPromise.then(
      (session) => {
        // scheme_header_transformation.match_upstream: https over TLS, http otherwise.
        if (schemeMatchUpstream) headers[':scheme'] = session.encrypted === true ? 'https' : 'http';
        this.#open(session, headers);
      },
      (err: unknown) => {
        if (this.#done) return;
        this.#done = true;
        this.#sink.onUpstreamError(
          err instanceof ProxyError
            ? err
            : new ProxyError(ErrorCode.UPSTREAM_CONNECT_FAILURE, `upstream connect error: ${(err as Error)?.message}`, { source: 'upstream', retryable: true, flag: ResponseFlag.UpstreamConnectionFailure, cause: err }),
        );
      },
    );
  }

  #open(session: ClientHttp2Session, headers: OutgoingHttpHeaders): void {
    if (this.#done) return;
    if (this.#sink.onUpstreamReady?.() === false) {
      this.#done = true;
      return;
    }
    const tls = upstreamTlsInfo(session);
    if (tls) this.#sink.onUpstreamTls?.(tls);
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    const endNow = this.#requestEnded && pending.length === 0 && this.#trailers === undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: endNow, waitForTrailers: !endNow });
    } catch (err) {
      this.#done = true;
      this.#sink.onUpstreamError(resetError(undefined, true, err));
      return;
    }
    this.#stream = stream;
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => this.#onResponse(h, flags));
    stream.on('data', (chunk: Buffer) => {
      if (!this.#done) this.#sink.onUpstreamData(chunk, false);
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      this.#responseTrailers = responseHeaderMap(new HeaderMap(), t, false);
    });
    stream.on('end', () => this.#onEnd());
    stream.on('wantTrailers', () => {
      const t = this.#trailers;
      // Empty trailers make node:http2 send an empty DATA frame with END_STREAM.
      stream.sendTrailers(t ? (t.toObject() as OutgoingHttpHeaders) : {});
    });
    stream.on('drain', () => {
      if (!this.#writeBlocked) return;
      this.#writeBlocked = false;
      if (!this.#done) this.#sink.onUpstreamWritable(true);
    });
    stream.on('error', () => {}); // 'close' reports it
    stream.on('close', () => this.#onClose(session));
    if (this.#paused) stream.pause();
    for (const chunk of pending) stream.write(chunk);
    if (!endNow && this.#requestEnded) stream.end();
    if (this.#pendingBlocked) {
      this.#pendingBlocked = false;
      this.#sink.onUpstreamWritable(true);
    }
  }

  #onResponse(h: IncomingHttpHeaders, flags: number): void {
    if (this.#done) return;
    const status = Number(h[':status']);
    const map = new HeaderMap();
    map.add(':status', String(status));
    responseHeaderMap(map, h, false);
    this.#responseStarted = true;
    const end = (flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (end) this.#done = true;
    this.#sink.onUpstreamHeaders(map, end);
  }

  #onEnd(): void {
    if (this.#done) return;
    if (!this.#responseStarted) return; // 'close' reports the reset
    this.#done = true;
    if (this.#responseTrailers) this.#sink.onUpstreamTrailers(this.#responseTrailers);
    else this.#sink.onUpstreamData(EMPTY, true);
  }

  #onClose(session: ClientHttp2Session): void {
    if (this.#done) return;
    const stream = this.#stream;
    // A response that ended cleanly emits 'end' before 'close'; a trailers-only response may not.
    if (this.#responseStarted && stream && stream.rstCode === h2.NGHTTP2_NO_ERROR && this.#responseTrailers) {
      this.#onEnd();
      return;
    }
    this.#done = true;
    this.#sink.onUpstreamError(resetError(stream?.rstCode, session.destroyed || session.closed));
  }

  sendData(data: Buffer, endStream: boolean): void {
    if (this.#done || this.#requestEnded) return;
    if (endStream) this.#requestEnded = true;
    const stream = this.#stream;
    if (!stream) {
      if (data.length > 0) {
        this.#pending!.push(data);
        this.#pendingBytes += data.length;
        if (this.#pendingBytes > PENDING_HIGH_WATER_MARK && !this.#pendingBlocked) {
          this.#pendingBlocked = true;
          this.#sink.onUpstreamWritable(false);
        }
      }
      return;
    }
    if (stream.destroyed) return;
    // One signal per crossing of the watermark (the stream counts read-disables, as Envoy does).
    if (data.length > 0 && !stream.write(data) && !this.#writeBlocked) {
      this.#writeBlocked = true;
      this.#sink.onUpstreamWritable(false);
    }
    if (endStream) stream.end();
  }

  sendTrailers(trailers: HeaderMap): void {
    if (this.#done || this.#requestEnded) return;
    this.#trailers = trailers;
    this.#requestEnded = true;
    const stream = this.#stream;
    if (stream && !stream.destroyed) stream.end();
  }

  pauseResponse(): void {
    this.#paused = true;
    this.#stream?.pause();
  }

  resumeResponse(): void {
    this.#paused = false;
    this.#stream?.resume();
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    const s = this.#stream;
    if (s && !s.destroyed) s.close(h2.NGHTTP2_CANCEL);
  }
}

/** Starts a request on an HTTP/2 session (resolved by the cluster's session pool). */
export function startHttp2Request(session: Promise<ClientHttp2Session>, headers: HeaderMap, endStream: boolean, sink: UpstreamSink, schemeMatchUpstream = false): UpstreamRequest {
  const req = new Http2UpstreamRequest(sink);
  req.start(session, toH2Headers(headers), endStream, schemeMatchUpstream);
  return req;
}
