// The HTTP filter interface: small, explicit, Envoy-shaped. A filter is created per stream;
// each hook returns a status telling the filter manager whether to go on to the next filter.

import type { HeaderMap } from '../../proxy/http/headers.ts';
import type { StreamInfo } from '../../proxy/http/stream-info.ts';
import type { ResponseFlag } from '../../proxy/errors.ts';
import type { RouteEntry } from '../../proxy/http/route-types.ts';

export const FilterHeadersStatus = { Continue: 0, StopIteration: 1, StopAllIterationAndBuffer: 2 } as const;
export type FilterHeadersStatus = (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus];

export const FilterDataStatus = { Continue: 0, StopIterationAndBuffer: 1, StopIterationNoBuffer: 2 } as const;
export type FilterDataStatus = (typeof FilterDataStatus)[keyof typeof FilterDataStatus];

export const FilterTrailersStatus = { Continue: 0, StopIteration: 1 } as const;
export type FilterTrailersStatus = (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus];

export interface HttpFilter {
  onRequestHeaders?(headers: HeaderMap, endStream: boolean): FilterHeadersStatus;
  onRequestBody?(data: Buffer, endStream: boolean): FilterDataStatus;
  onRequestTrailers?(trailers: HeaderMap): FilterTrailersStatus;
  onResponseHeaders?(headers: HeaderMap, endStream: boolean): FilterHeadersStatus;
  onResponseBody?(data: Buffer, endStream: boolean): FilterDataStatus;
  onResponseTrailers?(trailers: HeaderMap): FilterTrailersStatus;
  /** The stream is over (completed or reset): release timers and upstream requests. */
  onDestroy?(): void;
}

export interface LocalReplyOptions {
  readonly details?: string;
  readonly flag?: ResponseFlag;
  /** Extra response headers (e.g. `x-envoy-overloaded`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Envoy's modify_headers: edits the reply's headers after `headers` (repeated values kept), before local_reply_config's. */
  readonly modifyHeaders?: (headers: HeaderMap) => void;
  /** gRPC status to use when the request is gRPC (Envoy maps HTTP status otherwise). */
  readonly grpcStatus?: number;
}

/** What the filter manager offers a filter. */
export interface HttpFilterCallbacks {
  readonly streamInfo: StreamInfo;
  /** The connection manager's stat_prefix: router stats go under `http.<statPrefix>.`. */
  readonly statPrefix: string;
  /** The connection's buffer limit (per_connection_buffer_limit_bytes): the most a filter should buffer per stream. */
  readonly bufferLimitBytes: number;
  /** The upgrade type allowed for this request by upgrade_configs (`websocket`...), or undefined. */
  readonly upgrade: string | undefined;
  /** The route chosen for the current request headers (cached; clearRouteCache() re-matches). */
  route(): RouteEntry | undefined;
  clearRouteCache(): void;
  /** Resumes the request (decode) side after StopIteration. */
  continueDecoding(): void;
  /** Resumes the response (encode) side after StopIteration. */
  continueEncoding(): void;
  /** Answers the request locally (runs the encoder filters; applies local_reply_config). */
  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void;
  /** Response side, used by the terminal filter (router): these run the encoder filter chain. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Buffer, endStream: boolean): void;
  encodeTrailers(trailers: HeaderMap): void;
  /**
   * Backpressure. The router calls setDecoderReadable(false) when the upstream cannot take more
   * request body, true when it drained. The filter manager calls onDownstreamWritable(false/true)
   * registered handlers when the downstream response buffer is above/below its watermark.
   */
  setDecoderReadable(readable: boolean): void;
  onDownstreamWritable(handler: (writable: boolean) => void): void;
  /** Resets the downstream stream (HTTP/2 RST_STREAM, HTTP/1 connection close). */
  resetStream(reason: string): void;
  /**
   * Upgrades (WebSocket over HTTP/1.1): after the upstream answered 101, the router hands over the
   * upstream socket; the connection manager writes the 101 head downstream (through the encoder
   * filters' onResponseHeaders) and pipes the two sockets both ways until either closes.
   */
  upgradeToTunnel(responseHeaders: HeaderMap, upstream: import('node:stream').Duplex, upstreamHead: Buffer): void;
  /** The request body buffered so far (for filters that returned StopIterationAndBuffer). */
  bufferedRequestBody(): Buffer | undefined;
  /**
   * How much of the request the filters may buffer (Envoy's setDecoderBufferLimit; default the
   * connection's buffer limit): more is a 413 and downstream_rq_too_large. (Optional: test
   * harnesses without a filter manager omit it.)
   */
  setDecoderBufferLimit?(bytes: number): void;
  /**
   * Response data this filter produced, sent on through the filters after it (Envoy's
   * injectEncodedDataToFilterChain): a filter that transforms the body asynchronously returns
   * StopIterationNoBuffer for what it takes in and injects what it makes, in order, the last with
   * `endStream`. (Optional: test harnesses without a filter manager omit it.)
   */
  injectEncodedData?(data: Buffer, endStream: boolean): void;
  /**
   * From inside onRequestBody/onResponseBody: replaces the body this filter has seen so far (the
   * chunks it had buffered and the current one) with `data`, which then goes on in their place.
   * False when called elsewhere. (Optional: test harnesses without a filter manager omit it.)
   */
  replaceBody?(data: Buffer): boolean;
}

/** An HTTP filter extension: parses its proto config once, then makes one filter per stream. */
export interface HttpFilterFactory<C = unknown> {
  /** Creates the per-stream filter from a parsed, frozen config. */
  create(config: C, callbacks: HttpFilterCallbacks): HttpFilter;
  /** Is this the terminal filter (router)? */
  readonly terminal?: boolean;
}
