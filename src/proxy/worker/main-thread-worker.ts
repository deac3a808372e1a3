// The main thread as worker 0. A config with no control plane (no xDS, no SDS) leaves the main
// thread idle once it has started: it only answers the admin API. A worker thread in its place
// costs a second V8 isolate, heap and malloc arena (~21 MB idle, ~21 MB under load; figures in the
// README) and buys nothing, so such a config's worker 0 runs on the main thread's event loop,
// behind the same messages (messages.ts) as a worker thread; workers 1... are threads as before.
//
// Not when the config holds a Proxy-Wasm plugin: a plugin stuck in a loop would stop the main
// thread too, where no watchdog could see it or end it. On a worker thread the watchdog (watchdog.ts)
// terminates and restarts that worker. Not with xDS or SDS either: a large update decoded on the main
// thread would stall that worker's traffic for as long. `--dedicated-main-thread` keeps every worker
// on a thread of its own.

import { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { MainToWorker, WorkerInit } from './messages.ts';
import type { UnpackedConfig } from '../../config/unpacked-anys.ts';

/** What decides whether worker 0 may run on the main thread (CliOptions, StaticConfig). */
export interface MainThreadWorkerInputs {
  readonly dedicatedMainThread: boolean;
  /** The bootstrap's dynamic_resources (xDS), if any. */
  readonly dynamic: unknown;
  /** SDS secrets the bootstrap refers to. */
  readonly sdsRefs: readonly unknown[];
}

/** The command line and the config allow worker 0 on the main thread; WorkerPool also checks for Proxy-Wasm (holdsWasm). */
export function mayServeOnMainThread(i: MainThreadWorkerInputs): boolean {
  return !i.dedicatedMainThread && !i.dynamic && i.sdsRefs.length === 0;
}

/** Whether a config's Anys (collectUnpacked) include a Proxy-Wasm filter or service (`envoy.extensions.*.wasm.v3.*`). */
export function holdsWasm(u: UnpackedConfig): boolean {
  for (const a of u.anys.values()) if (/\.wasm\.v3\./.test(a.typeUrl)) return true;
  return false;
}

/** Runs worker-main.ts on this thread, answering like a Worker: postMessage, 'message', 'error', 'exit', terminate(). */
export class MainThreadWorker extends EventEmitter {
  readonly #port: MessagePort;
  readonly #other: MessagePort;

  constructor(init: WorkerInit) {
    super();
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#other = port2;
    port1.on('message', (m) => this.emit('message', m));
    // A structured clone, as a worker thread's workerData is: the data plane owns its config, and
    // init.unpacked's keys stay the clone's own Anys.
    const own = structuredClone(init);
    import('./worker-main.ts').then(
      (m) => m.runWorker(own, port2, { onMainThread: true }),
      (e: unknown) => this.emit('error', e),
    );
  }

  postMessage(m: MainToWorker): void {
    this.#port.postMessage(m);
  }

  /** Closes the ports; the data plane has closed its listeners by then (the 'shutdown' message). */
  async terminate(): Promise<number> {
    this.#port.close();
    this.#other.close();
    this.emit('exit', 0);
    return 0;
  }
}
