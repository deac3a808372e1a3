// This thread's observers of Proxy-Wasm calls (the worker watchdog's marks, `legate wasm run
// --trace`), set by a worker at start without loading the VM's modules: a config without a plugin
// never loads them. vm.ts reads both when it creates a VM and when it enters plugin code.

import type { HostCallTracer } from './imports.ts';

/** Told when a thread enters and leaves plugin code (the worker watchdog's marks). */
export interface WasmCallHook {
  enter(label: string): void;
  leave(): void;
}

export let callHook: WasmCallHook | undefined;

/** Installs this thread's hook (a worker does at start). */
export function setWasmCallHook(hook: WasmCallHook | undefined): void {
  callHook = hook;
}

export let defaultTrace: ((label: string) => HostCallTracer) | undefined;

/** Traces every host call of every VM created on this thread from now on (`legate wasm run --trace`). */
export function setWasmTrace(make: ((label: string) => HostCallTracer) | undefined): void {
  defaultTrace = make;
}
