// envoy.filters.http.wasm at run time: one Proxy-Wasm stream context per HTTP stream. Each hook
// calls the plugin's proxy_on_* callback and maps its action onto the filter manager's statuses
// (Continue; StopIteration holds the headers until proxy_continue_stream; a body callback that
// pauses buffers, and the plugin sees the whole body so far on the next call). A trap fails the
// stream -- 503 `wasm_fail_stream`, or on with the plugin skipped when fail_open -- and the next
// stream gets a fresh VM.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { maxMemoryFrom, WasmPluginRuntime } from '../../../proxy/wasm/plugin-runtime.ts';
import { PluginStream } from '../../../proxy/wasm/plugin-stream.ts';
import type { WasmPluginConfig } from '../../../proxy/wasm/plugin-config.ts';
import { httpContextApi, type HttpStreamState } from './context.ts';
import { rootContextApi } from '../../../proxy/wasm/properties.ts';

const HEADERS_CONTINUE = 0;
const DATA_CONTINUE = 0;

export class WasmHttpFilterFactory implements HttpFilterFactory<WasmPluginConfig> {
  readonly #runtime: WasmPluginRuntime;

  constructor(config: WasmPluginConfig, ctx: RuntimeContext) {
    this.#runtime = new WasmPluginRuntime(config, { stats: ctx.stats, clusterManager: ctx.clusterManager, maxMemoryBytes: maxMemoryFrom(ctx.runtime) });
    // As Envoy: the VM and the root context start with the config, not with the first request.
    this.#runtime.root(rootContextApi(config));
  }

  create(_config: WasmPluginConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new WasmHttpFilter(this.#runtime, callbacks);
  }
}

export class WasmHttpFilter implements HttpFilter {
  readonly #cb: HttpFilterCallbacks;
  readonly #st: HttpStreamState = {
    requestHeaders: undefined,
    requestTrailers: undefined,
    responseHeaders: undefined,
    responseTrailers: undefined,
    requestBody: undefined,
    responseBody: undefined,
    requestHeadersSent: false,
    responseHeadersSent: false,
    filterState: new Map(),
  };
  readonly #ps: PluginStream;
  /** A local reply went out (the plugin's own, or the 503 of a failure). */
  #localReply = false;
  #requestBuffering = false;
  #responseBuffering = false;

  constructor(rt: WasmPluginRuntime, cb: HttpFilterCallbacks) {
    this.#cb = cb;
    this.#ps = new PluginStream(rt, {
      api: () => httpContextApi(rt.config, this.#st, cb, () => (this.#localReply = true)),
      onFailClosed: () => {
        if (this.#localReply) return;
        this.#localReply = true;
        cb.sendLocalReply(503, '', { details: 'wasm_fail_stream', grpcStatus: 14 });
      },
      // fail_open while the request waited on the plugin (e.g. its HTTP call): let it go on.
      onAsyncFailure: () => {
        if (this.#ps.bypass && !this.#st.requestHeadersSent) cb.continueDecoding();
      },
    });
  }

  /** Our own (or a failure) reply goes out without the plugin seeing it. */
  get #skipResponse(): boolean {
    return this.#ps.bypass || (this.#localReply && !this.#ps.live);
  }

  #headersStatus(r: number | undefined): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    if (r === undefined) return this.#ps.bypass ? FilterHeadersStatus.Continue : FilterHeadersStatus.StopIteration;
    if (this.#localReply) return FilterHeadersStatus.StopIteration;
    // 0 Continue, 2 ContinueAndEndStream (treated as Continue); 1 StopIteration; 3, 4 StopAll...
    if (r === HEADERS_CONTINUE || r === 2) return FilterHeadersStatus.Continue;
    return r === 1 ? FilterHeadersStatus.StopIteration : FilterHeadersStatus.StopAllIterationAndBuffer;
  }

  #dataStatus(r: number | undefined): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (r === undefined) return this.#ps.bypass ? FilterDataStatus.Continue : FilterDataStatus.StopIterationNoBuffer;
    if (r === DATA_CONTINUE) return FilterDataStatus.Continue;
    // 1 StopIterationAndBuffer, 2 StopIterationAndWatermark (buffered here too), 3 StopIterationNoBuffer.
    return r === 3 ? FilterDataStatus.StopIterationNoBuffer : FilterDataStatus.StopIterationAndBuffer;
  }

  #trailersStatus(r: number | undefined): (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus] {
    return (r === 0 && !this.#localReply) || this.#ps.bypass ? FilterTrailersStatus.Continue : FilterTrailersStatus.StopIteration;
  }

  onRequestHeaders(headers: HeaderMap, endStream: boolean): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    this.#st.requestHeaders = headers;
    const s = this.#headersStatus(this.#ps.call('proxy_on_request_headers', headers.size, endStream ? 1 : 0));
    if (s === FilterHeadersStatus.Continue) this.#st.requestHeadersSent = true;
    return s;
  }

  onRequestBody(data: Buffer, endStream: boolean): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (this.#ps.bypass) return FilterDataStatus.Continue;
    this.#st.requestHeadersSent = true;
    this.#st.requestBody = this.#requestBuffering && this.#st.requestBody ? Buffer.concat([this.#st.requestBody, data]) : data;
    const s = this.#dataStatus(this.#ps.call('proxy_on_request_body', this.#st.requestBody.length, endStream ? 1 : 0));
    this.#requestBuffering = s === FilterDataStatus.StopIterationAndBuffer;
    if (!this.#requestBuffering) this.#st.requestBody = undefined;
    return s;
  }

  onRequestTrailers(trailers: HeaderMap): (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus] {
    if (this.#ps.bypass) return FilterTrailersStatus.Continue;
    this.#st.requestTrailers = trailers;
    return this.#trailersStatus(this.#ps.call('proxy_on_request_trailers', trailers.size));
  }

  onResponseHeaders(headers: HeaderMap, endStream: boolean): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    if (this.#skipResponse) return FilterHeadersStatus.Continue;
    this.#st.responseHeaders = headers;
    const s = this.#headersStatus(this.#ps.call('proxy_on_response_headers', headers.size, endStream ? 1 : 0));
    if (s === FilterHeadersStatus.Continue) this.#st.responseHeadersSent = true;
    return this.#skipResponse ? FilterHeadersStatus.Continue : s;
  }

  onResponseBody(data: Buffer, endStream: boolean): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (this.#skipResponse) return FilterDataStatus.Continue;
    this.#st.responseHeadersSent = true;
    this.#st.responseBody = this.#responseBuffering && this.#st.responseBody ? Buffer.concat([this.#st.responseBody, data]) : data;
    const s = this.#dataStatus(this.#ps.call('proxy_on_response_body', this.#st.responseBody.length, endStream ? 1 : 0));
    this.#responseBuffering = s === FilterDataStatus.StopIterationAndBuffer;
    if (!this.#responseBuffering) this.#st.responseBody = undefined;
    return s;
  }

  onResponseTrailers(trailers: HeaderMap): (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus] {
    if (this.#skipResponse) return FilterTrailersStatus.Continue;
    this.#st.responseTrailers = trailers;
    return this.#trailersStatus(this.#ps.call('proxy_on_response_trailers', trailers.size));
  }

  onDestroy(): void {
    this.#ps.finish();
  }
}
