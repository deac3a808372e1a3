// The contract between the router and one upstream request (HTTP/1.1 over Http1Pool, HTTP/2 over
// legate's HTTP/2 client session), and the header rules both share. An upstream request reports failure once, as a
// ProxyError whose code/flag/retryable tell the router what happened; it never throws into the router.

import type { Duplex } from 'node:stream';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ProxyError } from '../../../proxy/errors.ts';
import type { TlsConnectionInfo } from '../../../proxy/tls/types.ts';

/** What an upstream request tells the router. After an error or the end of the response, nothing follows. */
export interface UpstreamSink {
  /** Final response headers (`:status` set, hop-by-hop removed). */
  onUpstreamHeaders(headers: HeaderMap, endStream: boolean): void;
  onUpstreamData(data: Buffer, endStream: boolean): void;
  /** Response trailers: the response is complete. */
  onUpstreamTrailers(trailers: HeaderMap): void;
  /** Connect failure, reset or protocol error, before or after the response headers. */
  onUpstreamError(err: ProxyError): void;
  /** Request-body flow control: false when the upstream cannot take more, true once it drained. */
  onUpstreamWritable(writable: boolean): void;
  /** HTTP/1.1 upgrade accepted (101): the raw upstream socket and any bytes read past the head. */
  onUpstreamUpgrade(headers: HeaderMap, socket: Duplex, head: Buffer): void;
  /** The request got a TLS connection (before its headers are sent): what that connection negotiated. */
  onUpstreamTls?(info: TlsConnectionInfo): void;
  /** The upstream stream is over (the response complete), just before its connection is reused. */
  onUpstreamStreamDone?(): void;
  /**
   * The request has its connection and its headers go out now (Envoy's onPoolReady); false: the
   * request must not be sent (max_requests overflow) and the connection goes back unused.
   */
  onUpstreamReady?(): boolean;
}

export interface UpstreamRequest {
  /** Request body; endStream ends the request (no trailers). */
  sendData(data: Buffer, endStream: boolean): void;
  /** Request trailers end the request (dropped on HTTP/1.1 upstreams, as Envoy does by default). */
  sendTrailers(trailers: HeaderMap): void;
  /** Downstream backpressure: stop / restart reading the response body. */
  pauseResponse(): void;
  resumeResponse(): void;
  /** Resets the upstream request (tx reset). No sink callback follows. */
  abort(): void;
}

export const EMPTY = Buffer.alloc(0);

/** Connection-specific headers never forwarded (RFC 9110 §7.6.1, RFC 9113 §8.2.2). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** Request headers the router never forwards: hop-by-hop, `host` (`:authority` is used) and `expect` (100-continue is answered downstream). */
export function skipRequestHeader(name: string): boolean {
  return name.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(name) || name === 'host' || name === 'expect';
}
