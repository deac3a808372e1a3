// One HTTP/2 upstream request on a session from the cluster's pool (legate's own client,
// proxy/http/h2/client-session.ts), streamed both ways with HTTP/2 flow control, trailers both
// ways. Failure: session connect -> UF; RST_STREAM -> UR (REFUSED_STREAM, or a stream the server's
// GOAWAY did not process, is retryable); session gone (GOAWAY, socket closed) -> UC. A stream that
// waited in its session and never left legate before the connection went goes out on another one.

import { isTlsSocket } from '../../../proxy/tls/is-tls-socket.ts';
import { HeaderMap } from '../../../proxy/http/headers.ts';
import { ErrorCode as H2Error } from '../../../proxy/http/h2/frames.ts';
import type { H2ClientSession, H2ClientStream, H2ResponseSink } from '../../../proxy/http/h2/client-session.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../proxy/errors.ts';
import { upstreamTlsInfo } from '../../../proxy/upstream/upstream-tls.ts';
import { EMPTY, HOP_BY_HOP, skipRequestHeader, type UpstreamRequest, type UpstreamSink } from './upstream-request.ts';

const PENDING_HIGH_WATER_MARK = 64 * 1024; // bytes queued while the session connects before the downstream is paused

/** Why the stream ended early: `code` is the RST_STREAM code, undefined when the connection went. */
function resetError(code: number | undefined, reason: string): ProxyError {
  if (code === undefined) {
    return new ProxyError(ErrorCode.UPSTREAM_RESET, 'upstream connection termination', { source: 'upstream', retryable: true, flag: ResponseFlag.UpstreamConnectionTermination });
  }
  return new ProxyError(ErrorCode.UPSTREAM_RESET, `upstream remote reset (code ${code})`, {
    source: 'upstream',
    retryable: code === H2Error.REFUSED_STREAM,
    flag: ResponseFlag.UpstreamRemoteReset,
    cause: new Error(reason),
  });
}

/** The request's :scheme when valid (Envoy forwards it), else http. */
function requestScheme(headers: HeaderMap): string {
  const s = headers.get(':scheme');
  return s === 'https' || s === 'http' ? s : 'http';
}

/** Index of `:scheme`'s value in the request head below. */
const SCHEME_AT = 3;

/** The request head as the session sends it: pseudo-headers first, then what the router forwards. */
function requestHead(headers: HeaderMap): string[] {
  const out = [':method', headers.get(':method') ?? 'GET', ':scheme', requestScheme(headers), ':authority', headers.get(':authority') ?? headers.get('host') ?? '', ':path', headers.get(':path') ?? '/'];
  headers.forEach((k, v) => {
    if (skipRequestHeader(k) && !(k === 'te' && v === 'trailers')) return;
    out.push(k, v);
  });
  return out;
}

/** A response head or trailers from the session ([name, value, ...], checked by it) as a HeaderMap: `:status` kept, other pseudo-headers and hop-by-hop fields dropped. */
export function upstreamHeaderMap(raw: readonly string[]): HeaderMap {
  const map = new HeaderMap();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if ((k.charCodeAt(0) === 58 && k !== ':status') || HOP_BY_HOP.has(k)) continue;
    map.add(k, raw[i + 1]!);
  }
  return map;
}

/** Trailers as the session sends them. */
function trailerList(t: HeaderMap): string[] {
  const out: string[] = [];
  t.forEach((k, v) => {
    if (k.charCodeAt(0) !== 58) out.push(k, v);
  });
  return out;
}

/** How often a request whose stream never left legate (its connection went away first) is sent on another connection. */
const MAX_UNSENT_REDISPATCH = 3;

class Http2UpstreamRequest implements UpstreamRequest, H2ResponseSink {
  readonly #sink: UpstreamSink;
  readonly #connect: () => Promise<H2ClientSession>;
  readonly #head: string[];
  readonly #schemeMatchUpstream: boolean;
  #session: H2ClientSession | undefined;
  #stream: H2ClientStream | undefined;
  /** Request body queued while the session connects. */
  #pending: Buffer[] | undefined = [];
  #pendingBytes = 0;
  #pendingBlocked = false;
  /** sendData() returned false and no writable() yet: the router was told once. */
  #writeBlocked = false;
  #requestEnded = false;
  #trailers: HeaderMap | undefined;
  #done = false;
  #paused = false;
  /** onUpstreamReady was answered (once per request, whatever connection it ends up on). */
  #ready = false;
  #redispatched = 0;

  constructor(sink: UpstreamSink, connect: () => Promise<H2ClientSession>, head: string[], endStream: boolean, schemeMatchUpstream: boolean) {
    this.#sink = sink;
    this.#connect = connect;
    this.#head = head;
    this.#requestEnded = endStream;
    this.#schemeMatchUpstream = schemeMatchUpstream;
  }

  /** Asks the pool for a session and opens the stream on it. */
  start(): void {
    this.#connect().then(
      (session) => {
        // scheme_header_transformation.match_upstream: https over TLS, http otherwise.
        if (this.#schemeMatchUpstream) this.#head[SCHEME_AT] = isTlsSocket(session.socket) ? 'https' : 'http';
        this.#open(session, this.#head);
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

  #open(session: H2ClientSession, head: string[]): void {
    if (this.#done) return;
    if (!this.#ready) {
      if (this.#sink.onUpstreamReady?.() === false) {
        this.#done = true;
        return;
      }
      this.#ready = true;
    }
    const tls = upstreamTlsInfo(session.socket);
    if (tls) this.#sink.onUpstreamTls?.(tls);
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    const endNow = this.#requestEnded && pending.length === 0 && this.#trailers === undefined;
    const stream = session.request(head, endNow, this);
    if (!stream) {
      // The session closed between the pool's answer and now (GOAWAY): another one.
      this.#pending = pending;
      return this.unsent();
    }
    this.#session = session;
    this.#stream = stream;
    if (this.#paused) session.setPaused(stream, true);
    for (let i = 0; i < pending.length; i++) {
      const last = i === pending.length - 1 && this.#requestEnded && this.#trailers === undefined;
      session.sendData(stream, pending[i]!, last);
    }
    if (this.#trailers) session.sendTrailers(stream, trailerList(this.#trailers));
    else if (this.#requestEnded && !endNow && pending.length === 0) session.sendData(stream, EMPTY, true);
    if (this.#pendingBlocked) {
      this.#pendingBlocked = false;
      this.#sink.onUpstreamWritable(true);
    }
  }

  // ---- H2ResponseSink: the response, from the session ----

  headers(raw: string[], end: boolean): void {
    if (this.#done) return;
    if (end) this.#responseDone();
    this.#sink.onUpstreamHeaders(upstreamHeaderMap(raw), end);
  }

  data(chunk: Buffer, end: boolean): void {
    if (this.#done) return;
    if (end) this.#responseDone();
    this.#sink.onUpstreamData(chunk, end);
  }

  trailers(raw: string[]): void {
    if (this.#done) return;
    this.#responseDone();
    this.#sink.onUpstreamTrailers(upstreamHeaderMap(raw));
  }

  /** The response is whole: a request still sending is cut short (RST_STREAM NO_ERROR, as a server does, RFC 9113 §8.1). */
  #responseDone(): void {
    this.#done = true;
    const s = this.#stream;
    if (s && !s.closed && !s.localEnded) this.#session!.resetStream(s, H2Error.NO_ERROR);
  }

  streamReset(reason: string, code?: number, local?: boolean): void {
    if (this.#done) return;
    this.#done = true;
    // A reset of this side's own (a malformed response, a flow-control breach) is a protocol error upstream: not retried.
    if (local) this.#sink.onUpstreamError(new ProxyError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, `upstream protocol error: ${reason}`, { source: 'upstream', retryable: false, flag: ResponseFlag.UpstreamProtocolError }));
    else this.#sink.onUpstreamError(resetError(code, reason));
  }

  /** The stream waited on a connection that went away before it was sent: on another connection, with what was queued on it. */
  unsent(): void {
    if (this.#done) return;
    if (++this.#redispatched > MAX_UNSENT_REDISPATCH) return this.streamReset('connection went away before the stream was sent', undefined);
    if (this.#stream) this.#pending = [...this.#stream.queue];
    this.#stream = this.#session = undefined;
    // A router paused by the stream's backpressure is let go once the queued bytes are on the new stream.
    if (this.#writeBlocked) {
      this.#writeBlocked = false;
      this.#pendingBlocked = true;
    }
    this.start();
  }

  writable(): void {
    if (!this.#writeBlocked) return;
    this.#writeBlocked = false;
    if (!this.#done) this.#sink.onUpstreamWritable(true);
  }

  // ---- UpstreamRequest: the router's side ----

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
    // One signal per crossing of the watermark (the stream counts read-disables, as Envoy does).
    if (!this.#session!.sendData(stream, data, endStream) && !this.#writeBlocked) {
      this.#writeBlocked = true;
      this.#sink.onUpstreamWritable(false);
    }
  }

  sendTrailers(trailers: HeaderMap): void {
    if (this.#done || this.#requestEnded) return;
    this.#trailers = trailers;
    this.#requestEnded = true;
    if (this.#stream) this.#session!.sendTrailers(this.#stream, trailerList(trailers));
  }

  pauseResponse(): void {
    this.#paused = true;
    if (this.#stream) this.#session!.setPaused(this.#stream, true);
  }

  resumeResponse(): void {
    this.#paused = false;
    if (this.#stream) this.#session!.setPaused(this.#stream, false);
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#stream) this.#session!.resetStream(this.#stream, H2Error.CANCEL);
  }
}

/** Starts a request on an HTTP/2 session from `connect` (the cluster's session pool). */
export function startHttp2Request(connect: () => Promise<H2ClientSession>, headers: HeaderMap, endStream: boolean, sink: UpstreamSink, schemeMatchUpstream = false): UpstreamRequest {
  const req = new Http2UpstreamRequest(sink, connect, requestHead(headers), endStream, schemeMatchUpstream);
  req.start();
  return req;
}
