// envoy.filters.http.wasm at run time: one Proxy-Wasm stream context per HTTP stream. Each hook
// calls the plugin's proxy_on_* callback and maps its action onto the filter manager's statuses
// (Continue; StopIteration holds the headers until proxy_continue_stream; a body callback that
// pauses buffers, and the plugin sees the whole body so far on the next call). A trap fails the
// stream — 503 `wasm_fail_stream`, or on with the plugin skipped when fail_open — and the next
// stream gets a fresh VM.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { maxMemoryFrom, WasmPluginRuntime, type PluginStreamHandle } from '../../../proxy/wasm/plugin-runtime.ts';
import type { WasmVm } from '../../../proxy/wasm/vm.ts';
import type { WasmPluginConfig } from '../../../proxy/wasm/plugin-config.ts';
import { httpContextApi, rootContextApi, type HttpStreamState } from './context.ts';

const HEADERS_CONTINUE = 0;
const DATA_CONTINUE = 0;

export class WasmHttpFilterFactory implements HttpFilterFactory<WasmPluginConfig> {
  readonly #runtime: WasmPluginRuntime;

  constructor(config: WasmPluginConfig, ctx: RuntimeContext) {
    this.#runtime = new WasmPluginRuntime(config, { stats: ctx.stats, clusterManager: ctx.clusterManager, maxMemoryBytes: maxMemoryFrom(ctx.runtime) });
  }

  create(_config: WasmPluginConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new WasmHttpFilter(this.#runtime, callbacks);
  }
}

export class WasmHttpFilter implements HttpFilter, PluginStreamHandle {
  readonly #rt: WasmPluginRuntime;
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
  #vm: WasmVm | undefined;
  #id = 0;
  /** The plugin failed (or could not start) and fail_open let the stream go on without it. */
  #bypass = false;
  #localReply = false;
  #requestBuffering = false;
  #responseBuffering = false;

  constructor(rt: WasmPluginRuntime, cb: HttpFilterCallbacks) {
    this.#rt = rt;
    this.#cb = cb;
  }

  /** Opens the stream context on first use; false when the plugin cannot run (failure handled). */
  #open(): boolean {
    if (this.#bypass) return false;
    if (this.#vm) return true;
    const root = this.#rt.root(rootContextApi(this.#rt.config));
    if (!root) return this.#fail(undefined, 'start-up');
    try {
      this.#id = root.vm.createStreamContext(root.rootId, httpContextApi(this.#rt.config, this.#st, this.#cb, () => (this.#localReply = true)));
      this.#vm = root.vm;
      this.#rt.track(this);
      return true;
    } catch (e) {
      return this.#fail(e, 'proxy_on_context_create');
    }
  }

  /** Runs a callback; undefined when it failed (the failure is handled: local reply or bypass). */
  #call(name: string, ...args: number[]): number | undefined {
    if (!this.#open()) return undefined;
    try {
      return this.#vm!.call(this.#id, name, this.#id, ...args) ?? 0;
    } catch (e) {
      this.#fail(e, name);
      return undefined;
    }
  }

  #fail(e: unknown, during: string): false {
    if (e !== undefined) this.#rt.failed(e, during);
    this.#vm = undefined;
    if (this.#rt.config.failOpen) {
      this.#bypass = true;
    } else if (!this.#localReply) {
      this.#localReply = true;
      this.#cb.sendLocalReply(503, '', { details: 'wasm_fail_stream', grpcStatus: 14 });
    }
    return false;
  }

  #headersStatus(r: number | undefined): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    if (r === undefined) return this.#bypass ? FilterHeadersStatus.Continue : FilterHeadersStatus.StopIteration;
    if (this.#localReply) return FilterHeadersStatus.StopIteration;
    // 0 Continue, 2 ContinueAndEndStream (treated as Continue); 1 StopIteration; 3, 4 StopAll…
    if (r === HEADERS_CONTINUE || r === 2) return FilterHeadersStatus.Continue;
    return r === 1 ? FilterHeadersStatus.StopIteration : FilterHeadersStatus.StopAllIterationAndBuffer;
  }

  onRequestHeaders(headers: HeaderMap, endStream: boolean): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    this.#st.requestHeaders = headers;
    const s = this.#headersStatus(this.#call('proxy_on_request_headers', headers.size, endStream ? 1 : 0));
    if (s === FilterHeadersStatus.Continue) this.#st.requestHeadersSent = true;
    return s;
  }

  onRequestBody(data: Buffer, endStream: boolean): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (this.#bypass) return FilterDataStatus.Continue;
    this.#st.requestHeadersSent = true;
    this.#st.requestBody = this.#requestBuffering && this.#st.requestBody ? Buffer.concat([this.#st.requestBody, data]) : data;
    const r = this.#call('proxy_on_request_body', this.#st.requestBody.length, endStream ? 1 : 0);
    const s = this.#dataStatus(r);
    this.#requestBuffering = s === FilterDataStatus.StopIterationAndBuffer;
    if (!this.#requestBuffering) this.#st.requestBody = undefined;
    return s;
  }

  onRequestTrailers(trailers: HeaderMap): (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus] {
    if (this.#bypass) return FilterTrailersStatus.Continue;
    this.#st.requestTrailers = trailers;
    const r = this.#call('proxy_on_request_trailers', trailers.size);
    return r === 0 && !this.#localReply ? FilterTrailersStatus.Continue : this.#bypass ? FilterTrailersStatus.Continue : FilterTrailersStatus.StopIteration;
  }

  onResponseHeaders(headers: HeaderMap, endStream: boolean): (typeof FilterHeadersStatus)[keyof typeof FilterHeadersStatus] {
    if (this.#bypass) return FilterHeadersStatus.Continue;
    this.#st.responseHeaders = headers;
    // A local reply of our own (or a failure reply) goes out untouched by the plugin.
    if (this.#localReply && !this.#vm) return FilterHeadersStatus.Continue;
    const s = this.#headersStatus(this.#call('proxy_on_response_headers', headers.size, endStream ? 1 : 0));
    if (s === FilterHeadersStatus.Continue) this.#st.responseHeadersSent = true;
    return this.#localReply && !this.#vm ? FilterHeadersStatus.Continue : s;
  }

  onResponseBody(data: Buffer, endStream: boolean): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (this.#bypass || (this.#localReply && !this.#vm)) return FilterDataStatus.Continue;
    this.#st.responseHeadersSent = true;
    this.#st.responseBody = this.#responseBuffering && this.#st.responseBody ? Buffer.concat([this.#st.responseBody, data]) : data;
    const s = this.#dataStatus(this.#call('proxy_on_response_body', this.#st.responseBody.length, endStream ? 1 : 0));
    this.#responseBuffering = s === FilterDataStatus.StopIterationAndBuffer;
    if (!this.#responseBuffering) this.#st.responseBody = undefined;
    return s;
  }

  onResponseTrailers(trailers: HeaderMap): (typeof FilterTrailersStatus)[keyof typeof FilterTrailersStatus] {
    if (this.#bypass) return FilterTrailersStatus.Continue;
    this.#st.responseTrailers = trailers;
    const r = this.#call('proxy_on_response_trailers', trailers.size);
    return r === 0 || this.#bypass ? FilterTrailersStatus.Continue : FilterTrailersStatus.StopIteration;
  }

  #dataStatus(r: number | undefined): (typeof FilterDataStatus)[keyof typeof FilterDataStatus] {
    if (r === undefined) return this.#bypass ? FilterDataStatus.Continue : FilterDataStatus.StopIterationNoBuffer;
    if (r === DATA_CONTINUE) return FilterDataStatus.Continue;
    // 1 StopIterationAndBuffer, 2 StopIterationAndWatermark (buffered here too), 3 StopIterationNoBuffer.
    return r === 3 ? FilterDataStatus.StopIterationNoBuffer : FilterDataStatus.StopIterationAndBuffer;
  }

  /** The VM failed in a callback this stream did not drive (an HTTP call response, a tick). */
  vmFailed(vm: WasmVm): void {
    if (this.#vm !== vm) return;
    this.#rt.untrack(this);
    const paused = !this.#st.requestHeadersSent;
    this.#fail(undefined, 'an asynchronous callback');
    if (this.#bypass && paused) this.#cb.continueDecoding();
  }

  onDestroy(): void {
    this.#rt.untrack(this);
    const vm = this.#vm;
    this.#vm = undefined;
    if (!vm || vm.failed) return;
    try {
      vm.finish(this.#id);
    } catch (e) {
      this.#rt.failed(e, 'proxy_on_done/proxy_on_log/proxy_on_delete');
    }
  }
}
