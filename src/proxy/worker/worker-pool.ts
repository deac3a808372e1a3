// The main thread's handle on its workers: starts them, asks every worker a question and
// gathers the answers. Worker 0 of a config with no control plane runs on the main thread
// itself (main-thread-worker.ts). A worker that dies is logged and the process exits (Envoy aborts too),
// except one the watchdog found stuck: that one is terminated and started again in its place.

import v8 from 'node:v8';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { MainToWorker, WorkerInit, WorkerToMain } from './messages.ts';
import { logger } from '../log.ts';
import { releaseMemory, releaseMemoryAfterConfigUpdate, startMallocTrim } from './release-memory.ts';
import { applyV8Defaults } from './v8-flags.ts';
import { MainThreadWorker, holdsWasm } from './main-thread-worker.ts';
import { collectUnpacked } from '../../config/decode.ts';
import type { UnpackedConfig } from '../../config/unpacked-anys.ts';
import type { PrimePass } from '../../compile-cache-prime.ts';

const log = logger('main');

/**
 * Worker entry: turns on Node's compile cache before importing worker-main.ts. It also caches the
 * TypeScript-stripped sources, so a worker skips loading and running the stripper (a wasm module):
 * faster start and ~30 MB less per worker once the cache is warm (bin/legate.js fills it at install).
 * NODE_COMPILE_CACHE picks the directory (the launcher sets it; default: <tmpdir>/node-compile-cache);
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 * Then node:http's ESM facade is built without Node's bundled undici (lazy-http-exports.ts).
 */
const WORKER_BOOT = [
  `require('node:module').enableCompileCache();`,
  `import(${JSON.stringify(new URL('./lazy-http-exports.ts', import.meta.url).href)})`,
  `.then((m) => m.importHttpWithoutUndici())`,
  `.then(() => import(${JSON.stringify(new URL('./worker-thread.ts', import.meta.url).href)}));`,
].join('');

/**
 * A worker's young generation, MB (V8 counts both semi-spaces and the new large-object space).
 * Left alone, V8 sizes it from the machine's memory: on a 24 GB box each worker's new space reached
 * 104 MB under a 12 B keep-alive load. 16 MB (new space ~14 MB committed under load, was ~27 MB at
 * 48) doubles the scavenges (1 -> 2 per 1,000 requests, each cheap: a proxy's garbage dies young);
 * with the old generation's growing percent (v8-flags.ts), peak RSS with one worker under
 * autocannon -c 50 (12 B) went 177-198 -> 148-150 MB, CPU per request within the noise (7
 * alternating pairs, median ratio 1.005). 12 MB saved 7 MB more but cost 1.17x (paired, 6 pairs):
 * in-flight requests no longer fit, so each scavenge copied and promoted more (0.4 -> 3-4 ms each),
 * and full GCs went 6 -> 61 in 16 s under load (--trace-gc). The main thread's measurements
 * (v8-flags.ts) put that on V8's allocation-site pretenuring, now off: 12 MB, whose new space is
 * 8 MB (two 4 MB semi-spaces) as the main thread's (bin/legate.js). On a worker
 * (--dedicated-main-thread, bench:ab against 16 MB, 2 × 6 pairs) the pairs alternated 0.55-1.76
 * whichever side was which (medians 1.005 and 1/1.063) and peak RSS read 121 against 120-121 MB:
 * no difference that this host can show.
 */
const WORKER_YOUNG_GENERATION_MB = 12;

type Reply = Extract<WorkerToMain, { type: 'reply' }>;

/** The options every worker thread is started with. */
const workerOptions = (o: WorkerOptions): WorkerOptions => ({ eval: true, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB }, ...o });

/** The process-wide V8 flags set before the first worker's isolate exists (they are part of its compile cache's key). */
function setWorkerFlags(): void {
  v8.setFlagsFromString('--expose-gc'); // see releaseMemory()
  applyV8Defaults();
}

/**
 * Fills the worker threads' compile cache (bin/legate.js, at install): a worker started as the
 * pool starts them loads every module by `pass` (src/compile-cache-prime.ts) and exits.
 */
export function primeWorkerCompileCache(pass: PrimePass): Promise<void> {
  setWorkerFlags();
  const prime = new URL('../../compile-cache-prime.ts', import.meta.url).href;
  const boot = `require('node:module').enableCompileCache();import(${JSON.stringify(prime)}).then((m) => m.loadAllModules(${JSON.stringify(pass)}));`;
  const w = new Worker(boot, workerOptions({ name: `prime_${pass}` }));
  return new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  });
}
type Ask = MainToWorker extends infer M ? (M extends { id: number } ? Omit<M, 'id'> : never) : never;

export class WorkerPool {
  readonly #workers: Array<Worker | MainThreadWorker> = [];
  readonly #pending = new Map<number, (r: Reply) => void>();
  #nextId = 1;
  #stopping = false;

  #init: Omit<WorkerInit, 'workerId'> | undefined;
  #onMainThread = false;
  #onExit: (code: number) => void = () => undefined;
  readonly #restarting = new Set<number>();

  /**
   * Starts `n` workers; resolves with each listener's bound port once all are serving.
   * `mainThread`: worker 0 may run on the main thread (main-thread-worker.ts says when); it does
   * unless the config holds a Proxy-Wasm plugin.
   */
  async start(n: number, init: Omit<WorkerInit, 'workerId'>, onExit: (code: number) => void, mainThread = false): Promise<Record<string, number>> {
    this.#init = init;
    this.#onExit = onExit;
    const ready: Array<Promise<Record<string, number>>> = [];
    setWorkerFlags(); // process-wide: before the workers' isolates exist
    const unpacked = collectUnpacked(init.bootstrap);
    this.#onMainThread = mainThread && !holdsWasm(unpacked);
    for (let i = 0; i < n; i++) ready.push(this.#spawn(i, unpacked));
    const results = await Promise.all(ready);
    releaseMemory(); // the main thread's own start-up (bootstrap decode) is done by now
    startMallocTrim();
    return results[0] ?? {};
  }

  /** Starts worker `i`; `unpacked`: the bootstrap's decoded Anys (collectUnpacked), shared by the workers started together. */
  #spawn(i: number, unpacked: UnpackedConfig = collectUnpacked(this.#init!.bootstrap)): Promise<Record<string, number>> {
    const init = this.#init!;
    const onMain = i === 0 && this.#onMainThread;
    // The main thread's worker does not beat: nothing could watch it (main-thread-worker.ts).
    const workerData: WorkerInit = { ...init, workerId: i, unpacked, ...(onMain ? { watchdog: undefined } : {}) };
    const w = onMain ? new MainThreadWorker(workerData) : new Worker(WORKER_BOOT, workerOptions({ workerData, name: `worker_${i}` }));
    this.#workers[i] = w;
    return new Promise((resolve, reject) => {
      w.on('message', (m: WorkerToMain) => {
        if (m.type === 'ready') resolve(m.listeners);
        else if (m.type === 'init_failed') reject(new Error(m.error));
        else if (m.type === 'reply') {
          const p = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          p?.(m);
        }
      });
      w.on('error', (e) => {
        log.error(`worker ${i} error: ${e.stack ?? e.message}`);
        reject(e);
      });
      w.on('exit', (code) => {
        if (this.#stopping || this.#restarting.has(i) || this.#workers[i] !== w) return;
        log.error(`worker ${i} exited unexpectedly (code ${code})`);
        this.#onExit(code || 1);
      });
    });
  }

  /**
   * Terminates worker `i` (stuck: terminate() interrupts even an endless loop) and starts a new
   * one with the same bootstrap, `init` overriding what changed since start (ports, secrets,
   * runtime). Its connections are lost; its listeners are bound again (reusePort).
   */
  async restart(i: number, init: Partial<Omit<WorkerInit, 'workerId'>> = {}): Promise<void> {
    const old = this.#workers[i];
    if (!old || this.#stopping || (i === 0 && this.#onMainThread)) return; // the main thread's worker is not watched
    this.#restarting.add(i);
    try {
      await old.terminate();
      this.#init = { ...this.#init!, ...init };
      await this.#spawn(i);
    } finally {
      this.#restarting.delete(i);
    }
  }

  /** Whether worker 0 runs on the main thread (start()'s `mainThread`). */
  get onMainThread(): boolean {
    return this.#onMainThread;
  }

  get size(): number {
    return this.#workers.length;
  }

  /** Sends a message to every worker and resolves with all replies (timeout per ask: 10 s). */
  ask(msg: Ask): Promise<Reply[]> {
    msg = withUnpacked(msg);
    return Promise.all(
      this.#workers.map(
        (w) =>
          new Promise<Reply>((resolve) => {
            const id = this.#nextId++;
            const t = setTimeout(() => {
              this.#pending.delete(id);
              resolve({ type: 'reply', id });
            }, 10_000);
            this.#pending.set(id, (r) => {
              clearTimeout(t);
              resolve(r);
            });
            w.postMessage({ ...msg, id } as MainToWorker);
          }),
      ),
    );
  }

  async askFirst(msg: Ask): Promise<Reply | undefined> {
    return this.askOne(0, msg);
  }

  /** Asks worker `i` alone (10 s timeout -> undefined). */
  async askOne(i: number, msg: Ask): Promise<Reply | undefined> {
    const w = this.#workers[i];
    if (!w) return undefined;
    msg = withUnpacked(msg);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), 10_000);
      this.#pending.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      w.postMessage({ ...msg, id } as MainToWorker);
    });
  }

  async shutdown(): Promise<void> {
    this.#stopping = true;
    await this.ask({ type: 'shutdown' });
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/** An xDS update goes with its Anys decoded here (collectUnpacked), so workers need not load Envoy's protos. */
function withUnpacked(msg: Ask): Ask {
  if (msg.type !== 'xds' || msg.unpacked) return msg;
  releaseMemoryAfterConfigUpdate(); // this thread decoded the update
  return { ...msg, unpacked: collectUnpacked(msg.update) };
}
