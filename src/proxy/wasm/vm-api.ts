// What the owner of a Proxy-Wasm VM (vm.ts) deals with: the errors a plugin fails with, the
// services the VM needs from the proxy, its options, and the check a compiled module must pass
// before it is instantiated.

import { abiVersionOf, type AbiVersion, type Status } from './abi.ts';
import type { HostApi, HttpCallRequest } from './host-api.ts';
import type { GrpcCallRequest, GrpcEvents, GrpcHandle } from './grpc-call.ts';
import { ENV_FUNCTIONS, type HostCallTracer } from './imports.ts';
import type { Pairs } from './pairs.ts';
import { WASI_FUNCTIONS, WASI_MODULES } from './wasi.ts';

/** A plugin failed: a trap, proc_exit, a host failure or memory over its limit. */
export class WasmTrap extends Error {}

/** What a module needs that legate does not provide, or why it is not a Proxy-Wasm module. */
export class WasmLoadError extends Error {}

export interface HttpCallResponse {
  readonly headers: Pairs;
  readonly body: Buffer;
  readonly trailers: Pairs;
  /** 0 when the call failed (reset, timeout, no cluster); the HTTP status otherwise. */
  readonly status: number;
  readonly message: string;
}

/** What the VM needs from the proxy (logging, metrics, shared state, outbound calls). */
export interface VmServices {
  log(level: number, message: string): void;
  logLevel(): number;
  environment(): Pairs;
  defineMetric: HostApi['defineMetric'];
  recordMetric: HostApi['recordMetric'];
  incrementMetric: HostApi['incrementMetric'];
  getMetric: HostApi['getMetric'];
  getSharedData: HostApi['getSharedData'];
  setSharedData: HostApi['setSharedData'];
  registerQueue(name: string, notify: (queueId: number) => void): number;
  resolveQueue: HostApi['resolveQueue'];
  enqueue: HostApi['enqueue'];
  dequeue: HostApi['dequeue'];
  /** Starts an HTTP call; the promise settles with the response (status 0 on failure). */
  httpCall(req: HttpCallRequest): { readonly status: Status; readonly response?: Promise<HttpCallResponse> };
  /** Starts a gRPC call or stream; its events arrive through `events`. */
  grpc(req: GrpcCallRequest, events: GrpcEvents): { readonly status: Status; readonly handle?: GrpcHandle };
  callForeignFunction: HostApi['callForeignFunction'];
}

export interface VmOptions {
  /** Who runs here, for the watchdog's log line (plugin name, root id, vm id). */
  readonly label?: string;
  /** Memory limit in bytes (Envoy has none by default; legate: 256 MiB). */
  readonly maxMemoryBytes?: number;
  /** Called after every env host call (the sandbox's --trace). */
  readonly trace?: HostCallTracer;
}

/** Checks a compiled module's imports and ABI marker; throws WasmLoadError naming what is wrong. */
export function checkModule(module: WebAssembly.Module): AbiVersion {
  const missing: string[] = [];
  for (const imp of WebAssembly.Module.imports(module)) {
    const ok = imp.kind === 'function' && ((imp.module === 'env' && ENV_FUNCTIONS.has(imp.name)) || (WASI_MODULES.includes(imp.module) && WASI_FUNCTIONS.has(imp.name)));
    if (!ok) missing.push(`${imp.module}.${imp.name} (${imp.kind})`);
  }
  if (missing.length > 0) throw new WasmLoadError(`the plugin imports what legate does not provide: ${missing.join(', ')}`);
  const abi = abiVersionOf(WebAssembly.Module.exports(module).map((e) => e.name));
  if (!abi) throw new WasmLoadError('not a Proxy-Wasm module: it exports no proxy_abi_version_0_1_0, _0_2_0 or _0_2_1 marker');
  return abi;
}
