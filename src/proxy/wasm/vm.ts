// One Proxy-Wasm VM: a module compiled and instantiated on Node's WebAssembly with legate's env
// and WASI imports, started (_initialize then main, or _start), and its contexts: root contexts
// (one per plugin sharing the VM; proxy_on_context_create(id, 0) -> proxy_on_vm_start ->
// proxy_on_configure) and stream contexts (per HTTP stream or TCP connection, parent = their
// root). Every callback runs with its context effective; a trap, proc_exit or an over-limit memory
// marks the VM failed and surfaces as WasmTrap, so the owner can fail the stream and start a fresh VM.

import { BufferType, Status, type AbiVersion } from './abi.ts';
import type { ContextApi, HostApi } from './host-api.ts';
import type { GrpcHandle } from './grpc-call.ts';
import { envImports, type HostCallTracer } from './imports.ts';
import { GuestMemory } from './memory.ts';
import { overlayContext, readOnly, type GrpcEventOverlay } from './call-overlay.ts';
import { checkModule, WasmLoadError, WasmTrap, type HttpCallResponse, type VmOptions, type VmServices } from './vm-api.ts';
import { ProcExit, WASI_MODULES, wasiImports } from './wasi.ts';
import { IdTable } from '../id-table.ts';
import { type LongTimer, setLongInterval } from '../long-timers.ts';
import { callHook, defaultTrace } from './thread-hooks.ts';

export { setWasmCallHook, setWasmTrace, type WasmCallHook } from './thread-hooks.ts';

interface ContextRecord {
  readonly id: number;
  /** 0 for a root context. */
  readonly parent: number;
  readonly api: ContextApi;
  tickTimer?: LongTimer;
  /** proxy_on_done returned false: waiting for proxy_done. */
  pendingDone?: boolean;
}

const EMPTY_CONTEXT: ContextApi = {
  headerMap: () => undefined,
  buffer: () => undefined,
  continueStream: () => Status.BAD_ARGUMENT,
  closeStream: () => Status.BAD_ARGUMENT,
  sendLocalResponse: () => Status.BAD_ARGUMENT,
  property: () => undefined,
  setProperty: () => Status.NOT_FOUND,
  callStatus: () => undefined,
};

export class WasmVm {
  readonly abi: AbiVersion;
  readonly #exports: Record<string, unknown>;
  readonly #memory: GuestMemory;
  readonly #services: VmServices;
  readonly #maxMemory: number;
  readonly #label: string;
  /** Root and stream contexts by id: an IdTable, not a Map, so ended streams die young (id-table.ts). */
  readonly #contexts = new IdTable<ContextRecord>();
  readonly #calls = new Map<number, number>(); // http call id -> root context id
  readonly #grpc = new IdTable<{ root: number; handle: GrpcHandle }>();
  #nextContextId = 1;
  #nextCallId = 1;
  #effective = 0;
  /** An HTTP call response being delivered (its headers, body, trailers, status). */
  #callResponse: HttpCallResponse | undefined;
  /** A gRPC event being delivered: its message or metadata, or the final status. */
  #grpcEvent: GrpcEventOverlay | undefined;
  #failed: string | undefined;

  constructor(module: WebAssembly.Module, services: VmServices, opts: VmOptions = {}) {
    this.abi = checkModule(module);
    this.#services = services;
    this.#maxMemory = opts.maxMemoryBytes ?? 256 * 1024 * 1024;
    this.#label = opts.label ?? 'a Wasm plugin';
    const trace = opts.trace ?? defaultTrace?.(this.#label);
    let memory: GuestMemory | undefined;
    const mem = (): GuestMemory => {
      if (!memory) throw new WasmTrap('the plugin called the host before its memory was available');
      return memory;
    };
    const host = this.#hostApi();
    const env = envImports(host, mem, (name, e) => services.log(4, `host function ${name} failed: ${e instanceof Error ? e.message : String(e)}`), trace);
    const wasi = wasiImports(
      {
        line: (fd, text) => services.log(fd === 1 ? 2 : 4, text),
        environment: () => services.environment(),
        nowNs: () => host.nowNs(),
        monotonicNs: () => host.monotonicNs(),
      },
      mem,
    );
    const imports: WebAssembly.Imports = { env };
    for (const m of WASI_MODULES) imports[m] = wasi;
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } catch (e) {
      throw new WasmLoadError(`instantiating the plugin failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#exports = instance.exports as Record<string, unknown>;
    const memoryExport = this.#exports['memory'];
    if (!(memoryExport instanceof WebAssembly.Memory)) throw new WasmLoadError('the plugin exports no memory');
    const alloc = (this.#exports['proxy_on_memory_allocate'] ?? this.#exports['malloc']) as ((n: number) => number) | undefined;
    if (typeof alloc !== 'function') throw new WasmLoadError('the plugin exports neither proxy_on_memory_allocate nor malloc');
    memory = new GuestMemory(memoryExport, (n) => alloc(n));
    this.#memory = memory;
    this.#start();
  }

  /** Why the VM failed (undefined while healthy); a failed VM runs no more callbacks. */
  get failed(): string | undefined {
    return this.#failed;
  }

  get memoryBytes(): number {
    return this.#memory.byteLength;
  }

  has(exportName: string): boolean {
    return typeof this.#exports[exportName] === 'function';
  }

  #start(): void {
    if (this.has('_initialize')) {
      this.#invoke(0, '_initialize');
      if (this.has('main')) this.#invoke(0, 'main', 0, 0);
    } else if (this.has('_start')) {
      this.#invoke(0, '_start');
    }
  }

  /**
   * Creates a root context and runs proxy_on_vm_start and proxy_on_configure with the given
   * configurations readable as VM_CONFIGURATION / PLUGIN_CONFIGURATION. Returns the context id;
   * throws WasmTrap when a callback traps or returns false.
   */
  createRootContext(api: ContextApi, vmConfig: Buffer, pluginConfig: Buffer): number {
    const id = this.#nextContextId++;
    const buffers: Partial<Record<number, Buffer>> = {};
    const withConfig: ContextApi = {
      ...api,
      buffer: (t) => (buffers[t] !== undefined ? readOnly(buffers[t]!) : api.buffer(t)),
    };
    this.#contexts.set(id, { id, parent: 0, api: withConfig });
    this.#invoke(id, 'proxy_on_context_create', id, 0);
    buffers[BufferType.VM_CONFIGURATION] = vmConfig;
    const vmOk = this.#invoke(id, 'proxy_on_vm_start', id, vmConfig.length);
    delete buffers[BufferType.VM_CONFIGURATION];
    if (vmOk === 0) throw this.#fail('proxy_on_vm_start returned false');
    buffers[BufferType.PLUGIN_CONFIGURATION] = pluginConfig;
    const cfgOk = this.#invoke(id, 'proxy_on_configure', id, pluginConfig.length);
    delete buffers[BufferType.PLUGIN_CONFIGURATION];
    if (cfgOk === 0) throw this.#fail('proxy_on_configure returned false');
    return id;
  }

  /** A stream context under `rootId` (proxy_on_context_create(id, rootId)). */
  createStreamContext(rootId: number, api: ContextApi): number {
    const id = this.#nextContextId++;
    this.#contexts.set(id, { id, parent: rootId, api });
    this.#invoke(id, 'proxy_on_context_create', id, rootId);
    return id;
  }

  /** Calls `proxy_on_<event>`-style export `name` for `contextId`; undefined when not exported. */
  call(contextId: number, name: string, ...args: number[]): number | undefined {
    if (!this.has(name)) return undefined;
    return this.#invoke(contextId, name, ...args);
  }

  /** The end of a context: proxy_on_done, then (now or at proxy_done) proxy_on_log and proxy_on_delete. */
  finish(contextId: number): void {
    const c = this.#contexts.get(contextId);
    if (!c || this.#failed) return void this.#contexts.delete(contextId);
    const done = this.call(contextId, 'proxy_on_done', contextId);
    if (done === 0) {
      c.pendingDone = true;
      return;
    }
    this.#finalize(c);
  }

  #finalize(c: ContextRecord): void {
    c.tickTimer?.clear();
    try {
      this.call(c.id, 'proxy_on_log', c.id);
      this.call(c.id, 'proxy_on_delete', c.id);
    } finally {
      this.#contexts.delete(c.id);
    }
  }

  /** Stops timers; the VM is unusable afterwards. */
  close(): void {
    for (const c of this.#contexts.values()) c.tickTimer?.clear();
    this.#contexts.clear();
    this.#failed ??= 'closed';
  }

  #fail(reason: string): WasmTrap {
    this.#failed ??= reason;
    for (const c of this.#contexts.values()) c.tickTimer?.clear();
    return new WasmTrap(reason);
  }

  #invoke(contextId: number, name: string, ...args: number[]): number | undefined {
    if (this.#failed) throw new WasmTrap(`the VM failed earlier: ${this.#failed}`);
    const fn = this.#exports[name] as ((...a: number[]) => unknown) | undefined;
    if (typeof fn !== 'function') return undefined;
    const prev = this.#effective;
    this.#effective = contextId;
    let r: unknown;
    const hook = callHook;
    hook?.enter(this.#label);
    try {
      r = fn(...args);
    } catch (e) {
      const what = e instanceof ProcExit ? e.message : e instanceof WebAssembly.RuntimeError ? `trap: ${e.message}` : e instanceof Error ? e.message : String(e);
      throw this.#fail(`${name}: ${what}`);
    } finally {
      hook?.leave();
      this.#effective = prev;
    }
    if (this.#memory.byteLength > this.#maxMemory) throw this.#fail(`${name}: memory ${this.#memory.byteLength} bytes is over the VM's limit of ${this.#maxMemory}`);
    return typeof r === 'number' ? r : typeof r === 'bigint' ? Number(r) : undefined;
  }

  #context(): ContextApi {
    const api = this.#contexts.get(this.#effective)?.api ?? EMPTY_CONTEXT;
    return overlayContext(api, this.#grpcEvent, this.#callResponse);
  }

  #rootOf(contextId: number): ContextRecord | undefined {
    const c = this.#contexts.get(contextId);
    if (!c) return undefined;
    return c.parent === 0 ? c : this.#contexts.get(c.parent);
  }

  #hostApi(): HostApi {
    const s = (): VmServices => this.#services;
    const t0 = process.hrtime.bigint();
    const wall0 = BigInt(Date.now()) * 1_000_000n;
    return {
      log: (level, message) => s().log(level, message),
      logLevel: () => s().logLevel(),
      nowNs: () => wall0 + (process.hrtime.bigint() - t0),
      monotonicNs: () => process.hrtime.bigint(),
      setTickPeriod: (ms) => {
        const root = this.#rootOf(this.#effective);
        if (!root) return;
        root.tickTimer?.clear();
        root.tickTimer = undefined;
        if (ms === 0) return;
        root.tickTimer = setLongInterval(() => {
          if (this.#failed) return root.tickTimer?.clear();
          try {
            this.#invoke(root.id, 'proxy_on_tick', root.id);
          } catch (e) {
            s().log(4, `proxy_on_tick: ${e instanceof Error ? e.message : String(e)}`);
          }
        }, ms);
        root.tickTimer.unref();
      },
      context: () => this.#context(),
      setEffectiveContext: (id) => {
        if (!this.#contexts.has(id)) return Status.BAD_ARGUMENT;
        this.#effective = id;
        return Status.OK;
      },
      done: () => {
        const c = this.#contexts.get(this.#effective);
        if (!c?.pendingDone) return Status.NOT_FOUND;
        this.#finalize(c);
        return Status.OK;
      },
      environment: () => s().environment(),
      defineMetric: (t, n) => s().defineMetric(t, n),
      recordMetric: (id, v) => s().recordMetric(id, v),
      incrementMetric: (id, d) => s().incrementMetric(id, d),
      getMetric: (id) => s().getMetric(id),
      getSharedData: (k) => s().getSharedData(k),
      setSharedData: (k, v, cas) => s().setSharedData(k, v, cas),
      registerQueue: (name) => {
        const root = this.#rootOf(this.#effective);
        return s().registerQueue(name, (queueId) => {
          if (!root || !this.#contexts.has(root.id) || this.#failed) return;
          try {
            this.call(root.id, 'proxy_on_queue_ready', root.id, queueId);
          } catch (e) {
            s().log(4, `proxy_on_queue_ready: ${e instanceof Error ? e.message : String(e)}`);
          }
        });
      },
      resolveQueue: (vm, n) => s().resolveQueue(vm, n),
      enqueue: (id, v) => s().enqueue(id, v),
      dequeue: (id) => s().dequeue(id),
      httpCall: (req) => {
        const r = s().httpCall(req);
        if (r.status !== Status.OK || !r.response) return { status: r.status };
        const callId = this.#nextCallId++;
        const root = this.#rootOf(this.#effective);
        if (!root) return { status: Status.BAD_ARGUMENT };
        this.#calls.set(callId, root.id);
        void r.response.then((resp) => this.#deliverCallResponse(callId, resp));
        return { status: Status.OK, callId };
      },
      callForeignFunction: (n, a) => s().callForeignFunction(n, a),
      grpcStart: (req) => {
        const root = this.#rootOf(this.#effective);
        if (!root) return { status: Status.BAD_ARGUMENT };
        const token = this.#nextCallId++;
        const deliver = (name: string, ev: GrpcEventOverlay, ...args: number[]): void => {
          if (!this.#contexts.has(root.id) || this.#failed || !this.#grpc.has(token)) return;
          this.#grpcEvent = ev;
          try {
            this.call(root.id, name, root.id, token, ...args);
          } catch (e) {
            this.#services.log(4, `${name}: ${e instanceof Error ? e.message : String(e)}`);
            this.#onAsyncTrap?.(root.id, e);
          } finally {
            this.#grpcEvent = undefined;
          }
        };
        const r = s().grpc(req, {
          onInitialMetadata: (md) => deliver('proxy_on_grpc_receive_initial_metadata', { initial: md }, md.length),
          onMessage: (msg) => deliver('proxy_on_grpc_receive', { message: msg }, msg.length),
          onTrailingMetadata: (md) => deliver('proxy_on_grpc_receive_trailing_metadata', { trailing: md }, md.length),
          onClose: (code, message) => {
            deliver('proxy_on_grpc_close', { status: { code, message } }, code);
            this.#grpc.delete(token);
          },
        });
        if (r.status !== Status.OK || !r.handle) return { status: r.status };
        this.#grpc.set(token, { root: root.id, handle: r.handle });
        return { status: Status.OK, token };
      },
      grpcSend: (token, message, end) => this.#grpc.get(token)?.handle.send(message, end) ?? Status.NOT_FOUND,
      grpcCancel: (token) => {
        const g = this.#grpc.get(token);
        if (!g) return Status.NOT_FOUND;
        this.#grpc.delete(token);
        g.handle.cancel();
        return Status.OK;
      },
      grpcClose: (token) => {
        const g = this.#grpc.get(token);
        if (!g) return Status.NOT_FOUND;
        g.handle.close();
        return Status.OK;
      },
    };
  }

  #deliverCallResponse(callId: number, resp: HttpCallResponse): void {
    const rootId = this.#calls.get(callId);
    this.#calls.delete(callId);
    if (rootId === undefined || !this.#contexts.has(rootId) || this.#failed) return;
    this.#callResponse = resp;
    try {
      // As proxy-wasm-cpp-host: calls belong to the caller's root context, which gets the callback
      // (SDKs then switch to the stream context that asked, with proxy_set_effective_context).
      this.call(rootId, 'proxy_on_http_call_response', rootId, callId, resp.status === 0 ? 0 : resp.headers.length, resp.body.length, resp.trailers.length);
    } catch (e) {
      this.#services.log(4, `proxy_on_http_call_response: ${e instanceof Error ? e.message : String(e)}`);
      this.#onAsyncTrap?.(rootId, e);
    } finally {
      this.#callResponse = undefined;
    }
  }

  /** Called when a callback the proxy did not drive (tick, queue, call response) traps for a stream context. */
  #onAsyncTrap: ((contextId: number, e: unknown) => void) | undefined;
  onAsyncTrap(fn: (contextId: number, e: unknown) => void): void {
    this.#onAsyncTrap = fn;
  }
}
