// A configured Proxy-Wasm plugin on one worker: its VM (shared with plugins of the same vm_id and
// code), its root context, and stream contexts for the filters. A VM that failed (trap, proc_exit,
// memory over the limit) is replaced by a fresh one for the next stream, its root contexts
// configured again; the failure is logged with the plugin's name and counted. Logs read
// `wasm log <plugin name> <root id> <vm id>: <message>` as Envoy's do.

import { logger, type LogLevel } from '../log.ts';
import type { StatsStore } from '../stats.ts';
import { MetricType, Status } from './abi.ts';
import type { ContextApi } from './host-api.ts';
import type { WasmPluginConfig } from './plugin-config.ts';
import { WasmVm } from './vm.ts';
import { WasmTrap, type VmServices } from './vm-api.ts';
import { processWasmStore, type WasmSharedState } from './shared-store.ts';
import { startHttpCall } from './http-call.ts';
import { startGrpc } from './grpc-call.ts';
import type { ClusterManager } from '../upstream/types.ts';
import { IdTable } from '../id-table.ts';

const log = logger('wasm');
const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warning', 'error', 'critical'];

/** Runtime key (e.g. a static layer in layered_runtime) bounding each VM's linear memory, in bytes. */
export const MAX_MEMORY_RUNTIME_KEY = 'legate.wasm.max_vm_memory_bytes';
export const DEFAULT_MAX_MEMORY_BYTES = 256 * 1024 * 1024;

/** The VM memory bound from the runtime (or the default). */
export function maxMemoryFrom(runtime: { getInteger(key: string, fallback: number): number } | undefined): number {
  return runtime ? runtime.getInteger(MAX_MEMORY_RUNTIME_KEY, DEFAULT_MAX_MEMORY_BYTES) : DEFAULT_MAX_MEMORY_BYTES;
}

export interface PluginRuntimeContext {
  readonly stats: StatsStore;
  /** For proxy_http_call; without it calls return UNIMPLEMENTED. */
  readonly clusterManager?: ClusterManager;
  readonly maxMemoryBytes?: number;
}

/** A stream of this plugin, told when its VM fails in a callback no stream drove (tick, call response, queue). */
export interface PluginStreamHandle {
  vmFailed(vm: WasmVm, e: unknown): void;
}

interface Metric {
  readonly type: MetricType;
  readonly name: string;
  value: bigint;
}

/** A VM and the root contexts of the plugins running in it. */
class SharedVm {
  readonly vm: WasmVm;
  readonly roots = new Map<string, number>();
  constructor(vm: WasmVm) {
    this.vm = vm;
  }
}

const vms = new Map<string, SharedVm>();

export class WasmPluginRuntime {
  readonly config: WasmPluginConfig;
  readonly #stats: StatsStore;
  readonly #state: WasmSharedState;
  readonly #maxMemory: number | undefined;
  readonly #cm: ClusterManager | undefined;
  /** Open streams by registration id: an IdTable, not a Set, so ended streams die young (id-table.ts). */
  readonly #streams = new IdTable<PluginStreamHandle>();
  #nextStreamId = 1;
  readonly #metrics = new Map<number, Metric>();
  readonly #metricIds = new Map<string, number>();
  readonly #key: string;
  readonly #pluginKey: string;
  #lastError: string | undefined;

  constructor(config: WasmPluginConfig, ctx: PluginRuntimeContext, state: WasmSharedState = processWasmStore()) {
    this.config = config;
    this.#stats = ctx.stats;
    this.#state = state;
    this.#maxMemory = ctx.maxMemoryBytes;
    this.#cm = ctx.clusterManager;
    this.#key = `${config.vmId}\0${config.codeSha256}`;
    this.#pluginKey = `${config.name}\0${config.rootId}\0${config.configuration.toString('base64')}`;
  }

  /** Why the last attempt to start the plugin failed. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Logs and counts a plugin failure (a trap in one of its callbacks). */
  failed(e: unknown, during: string): void {
    const why = e instanceof Error ? e.message : String(e);
    this.#lastError = why;
    log.error(`wasm log ${this.config.name} ${this.config.rootId} ${this.config.vmId}: plugin failed in ${during}: ${why}`);
    this.#stats.counter(`wasm.${this.config.runtime}.vm_failed`).inc();
  }

  /** Streams register while open, to hear of failures outside their own callbacks; the id is for untrack(). */
  track(stream: PluginStreamHandle): number {
    const id = this.#nextStreamId++;
    this.#streams.set(id, stream);
    return id;
  }

  untrack(id: number): void {
    this.#streams.delete(id);
  }

  /** The plugin's VM and root context id, creating (or re-creating after a failure) as needed; undefined when it cannot start. */
  root(rootApi: ContextApi): { vm: WasmVm; rootId: number } | undefined {
    let shared = vms.get(this.#key);
    if (shared && shared.vm.failed) {
      this.#stats.gauge(`wasm.${this.config.runtime}.active`).dec();
      this.#stats.gauge('wasm.wasm_vm_count').dec();
      vms.delete(this.#key);
      shared = undefined;
    }
    try {
      if (!shared) {
        const vm = new WasmVm(this.config.module, this.#services(), { label: `'${this.config.name}' (root_id '${this.config.rootId}', vm_id '${this.config.vmId}')`, ...(this.#maxMemory !== undefined ? { maxMemoryBytes: this.#maxMemory } : {}) });
        vm.onAsyncTrap((_contextId, e) => {
          this.failed(e, 'an asynchronous callback');
          for (const s of this.#streams.values()) s.vmFailed(vm, e);
        });
        shared = new SharedVm(vm);
        vms.set(this.#key, shared);
        this.#stats.counter(`wasm.${this.config.runtime}.created`).inc();
        this.#stats.gauge(`wasm.${this.config.runtime}.active`).inc();
        this.#stats.gauge('wasm.wasm_vm_count').inc();
      }
      let rootId = shared.roots.get(this.#pluginKey);
      if (rootId === undefined) {
        rootId = shared.vm.createRootContext(rootApi, this.config.vmConfiguration, this.config.configuration);
        shared.roots.set(this.#pluginKey, rootId);
      }
      return { vm: shared.vm, rootId };
    } catch (e) {
      this.failed(e, 'start-up');
      return undefined;
    }
  }

  #services(): VmServices {
    const c = this.config;
    const state = this.#state;
    return {
      log: (level, message) => log.log(LEVELS[level] ?? 'info', `wasm log ${c.name} ${c.rootId} ${c.vmId}: ${message}`),
      logLevel: () => {
        const i = LEVELS.findIndex((l) => log.enabled(l));
        return i < 0 ? 5 : i;
      },
      environment: () => c.environment,
      defineMetric: (type, name) => {
        const key = `${type}\0${name}`;
        const known = this.#metricIds.get(key);
        if (known !== undefined) return known;
        const id = this.#metrics.size + 1;
        this.#metrics.set(id, { type, name, value: 0n });
        this.#metricIds.set(key, id);
        return id;
      },
      recordMetric: (id, value) => {
        const m = this.#metrics.get(id);
        if (!m) return Status.NOT_FOUND;
        if (m.type === MetricType.COUNTER) return Status.BAD_ARGUMENT;
        if (m.type === MetricType.HISTOGRAM) this.#stats.histogram(`wasmcustom.${m.name}`).record(Number(value));
        else {
          m.value = value;
          this.#stats.gauge(`wasmcustom.${m.name}`).set(Number(value));
        }
        return Status.OK;
      },
      incrementMetric: (id, delta) => {
        const m = this.#metrics.get(id);
        if (!m) return Status.NOT_FOUND;
        if (m.type === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
        if (m.type === MetricType.COUNTER) {
          if (delta < 0n) return Status.BAD_ARGUMENT;
          m.value += delta;
          this.#stats.counter(`wasmcustom.${m.name}`).inc(Number(delta));
        } else {
          m.value += delta;
          this.#stats.gauge(`wasmcustom.${m.name}`).set(Number(m.value));
        }
        return Status.OK;
      },
      getMetric: (id) => this.#metrics.get(id)?.value,
      getSharedData: (key) => state.getSharedData(c.vmId, key),
      setSharedData: (key, value, cas) => state.setSharedData(c.vmId, key, value, cas),
      registerQueue: (name, notify) => state.registerQueue(c.vmId, name, notify),
      resolveQueue: (vmId, name) => state.resolveQueue(vmId, name),
      enqueue: (id, value) => state.enqueue(id, value),
      dequeue: (id) => state.dequeue(id),
      httpCall: (req) => (this.#cm ? startHttpCall(this.#cm, req) : { status: Status.UNIMPLEMENTED }),
      grpc: (req, events) => (this.#cm ? startGrpc(this.#cm, req, events) : { status: Status.UNIMPLEMENTED }),
      callForeignFunction: () => ({ status: Status.NOT_FOUND }),
    };
  }
}

export { WasmTrap };
