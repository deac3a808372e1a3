// One stream context of a plugin (an HTTP stream or a TCP connection) as the Wasm filters drive
// it: opened on first use under the plugin's root context, each callback run with failures caught,
// and a failure handled once -- logged and counted by the runtime, then either bypassed
// (fail_open: the stream goes on without the plugin) or handed to the filter's `onFailClosed`
// (503, or a closed connection). A VM failure outside the stream's own callbacks (an HTTP call
// response, a tick) reaches it through vmFailed.

import type { ContextApi } from './host-api.ts';
import type { PluginStreamHandle, WasmPluginRuntime } from './plugin-runtime.ts';
import { rootContextApi } from './properties.ts';
import type { WasmVm } from './vm.ts';

export interface PluginStreamHooks {
  /** The stream's ContextApi (built once, when the context opens). */
  api(): ContextApi;
  /** The plugin failed and fail_open is false: end the stream the filter's way. */
  onFailClosed(): void;
  /** The VM failed outside this stream's callbacks (after onFailClosed, or with bypass set). */
  onAsyncFailure?(): void;
}

export class PluginStream implements PluginStreamHandle {
  readonly #rt: WasmPluginRuntime;
  readonly #hooks: PluginStreamHooks;
  #vm: WasmVm | undefined;
  #id = 0;
  /** The runtime's registration (track()); 0 while not registered. */
  #reg = 0;
  #bypass = false;
  #failed = false;

  constructor(rt: WasmPluginRuntime, hooks: PluginStreamHooks) {
    this.#rt = rt;
    this.#hooks = hooks;
  }

  /** fail_open let the stream go on without the plugin. */
  get bypass(): boolean {
    return this.#bypass;
  }

  /** The context is open on a healthy VM. */
  get live(): boolean {
    return this.#vm !== undefined;
  }

  #open(): boolean {
    if (this.#bypass || this.#failed) return false;
    if (this.#vm) return true;
    const root = this.#rt.root(rootContextApi(this.#rt.config));
    if (!root) return this.fail(undefined, 'start-up');
    try {
      this.#id = root.vm.createStreamContext(root.rootId, this.#hooks.api());
      this.#vm = root.vm;
      if (this.#reg === 0) this.#reg = this.#rt.track(this);
      return true;
    } catch (e) {
      return this.fail(e, 'proxy_on_context_create');
    }
  }

  /** Runs `proxy_on_<...>(context_id, ...args)`; undefined when it (or opening) failed, already handled. */
  call(name: string, ...args: number[]): number | undefined {
    if (!this.#open()) return undefined;
    try {
      return this.#vm!.call(this.#id, name, this.#id, ...args) ?? 0;
    } catch (e) {
      this.fail(e, name);
      return undefined;
    }
  }

  /** Handles a failure once (`e` undefined: already logged, e.g. a VM that would not start). */
  fail(e: unknown, during: string): false {
    if (e !== undefined) this.#rt.failed(e, during);
    this.#vm = undefined;
    this.#untrack();
    if (this.#failed || this.#bypass) return false;
    if (this.#rt.config.failOpen) this.#bypass = true;
    else {
      this.#failed = true;
      this.#hooks.onFailClosed();
    }
    return false;
  }

  #untrack(): void {
    if (this.#reg === 0) return;
    this.#rt.untrack(this.#reg);
    this.#reg = 0;
  }

  vmFailed(vm: WasmVm): void {
    if (this.#vm !== vm) return;
    this.fail(undefined, 'an asynchronous callback');
    this.#hooks.onAsyncFailure?.();
  }

  /** The end of the stream: proxy_on_done, proxy_on_log, proxy_on_delete. */
  finish(): void {
    this.#untrack();
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
