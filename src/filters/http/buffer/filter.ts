// The buffer filter (Envoy's BufferFilter): holds a request until its whole body has arrived, at
// most max_request_bytes (the request side's buffer limit while it waits: more is a 413 and
// downstream_rq_too_large), then passes it on with a content-length when it had none. A route's
// BufferPerRoute turns it off or sets another limit.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { BUFFER_NAME, parseBufferPerRoute, type BufferConfig } from './config.ts';

export class BufferFactory implements HttpFilterFactory<BufferConfig> {
  readonly config: BufferConfig;
  readonly perRoute = new PerRouteConfigs<BufferConfig>(BUFFER_NAME, 'BufferPerRoute', parseBufferPerRoute);

  constructor(config: BufferConfig) {
    this.config = config;
  }

  create(_config: BufferConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new BufferFilter(this, callbacks);
  }
}

export class BufferFilter implements HttpFilter {
  readonly #f: BufferFactory;
  readonly #cb: HttpFilterCallbacks;
  #headers: HeaderMap | undefined;
  #bytes = 0;

  constructor(factory: BufferFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  /** The most specific level's setting (the route's map holds it). */
  #max(): number {
    const route = this.#cb.route();
    const o = route?.perFilterConfig.get(BUFFER_NAME);
    if (o === undefined || route === undefined) return this.#f.config.maxRequestBytes;
    if (o === FILTER_DISABLED || typeof o !== 'object' || o === null) return 0;
    return (this.#f.perRoute.get(o, route) ?? this.#f.config).maxRequestBytes;
  }

  onRequestHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    if (endStream) return FilterHeadersStatus.Continue;
    const max = this.#max();
    if (max === 0) return FilterHeadersStatus.Continue;
    this.#cb.setDecoderBufferLimit?.(max);
    this.#headers = headers;
    return FilterHeadersStatus.StopIteration;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    if (!this.#headers) return FilterDataStatus.Continue;
    this.#bytes += data.length;
    if (!endStream) return FilterDataStatus.StopIterationAndBuffer;
    this.#complete();
    return FilterDataStatus.Continue;
  }

  onRequestTrailers(): FilterTrailersStatus {
    if (this.#headers) this.#complete();
    return FilterTrailersStatus.Continue;
  }

  /** The whole request is here: it goes on with its length known. */
  #complete(): void {
    const h = this.#headers!;
    this.#headers = undefined;
    if (h.get('content-length') === undefined) h.set('content-length', String(this.#bytes));
  }
}
