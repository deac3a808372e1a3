// The worker watchdog. Each worker beats a counter in a SharedArrayBuffer from its event loop and,
// while it runs Proxy-Wasm code, writes which plugin into its slot. The main thread checks the
// beats; a worker that has not beaten for `killAfterMs` (a plugin in an endless loop, say) is
// reported with the plugin it was running, so the pool can terminate and restart it. Envoy's
// watchdog aborts the process on kill_timeout; legate recovers the one worker instead.

import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { durationMs } from '../../config/values.ts';

/** legate's default: a worker silent this long is restarted (Envoy's kill_timeout is off by default). */
export const DEFAULT_KILL_AFTER_MS = 10_000;

/** `watchdogs.worker_watchdog.kill_timeout` (or the deprecated `watchdog.kill_timeout`), else the default. */
export function workerKillTimeoutMs(b: Bootstrap__Output): number {
  const w = b.watchdogs?.worker_watchdog ?? b.watchdog;
  const ms = w?.kill_timeout ? durationMs(w.kill_timeout, 0) : 0;
  return ms > 0 ? ms : DEFAULT_KILL_AFTER_MS;
}

const SLOT_INTS = 4; // beat, in-wasm flag, label length, spare
const LABEL_BYTES = 192;

export class WatchdogBuffer {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #workers: number;
  #lastLabel: string | undefined;

  static create(workers: number): SharedArrayBuffer {
    return new SharedArrayBuffer(workers * (SLOT_INTS * 4 + LABEL_BYTES));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#workers = buffer.byteLength / (SLOT_INTS * 4 + LABEL_BYTES);
    this.#i32 = new Int32Array(buffer, 0, this.#workers * SLOT_INTS);
    this.#bytes = new Uint8Array(buffer, this.#workers * SLOT_INTS * 4);
  }

  beat(worker: number): void {
    Atomics.add(this.#i32, worker * SLOT_INTS, 1);
  }

  beats(worker: number): number {
    return Atomics.load(this.#i32, worker * SLOT_INTS);
  }

  /** Marks `worker` as running Wasm code of `label` (the label is written only when it changes). */
  enter(worker: number, label: string): void {
    if (label !== this.#lastLabel) {
      const b = Buffer.from(label, 'utf8').subarray(0, LABEL_BYTES);
      this.#bytes.set(b, worker * LABEL_BYTES);
      Atomics.store(this.#i32, worker * SLOT_INTS + 2, b.length);
      this.#lastLabel = label;
    }
    Atomics.store(this.#i32, worker * SLOT_INTS + 1, 1);
  }

  leave(worker: number): void {
    Atomics.store(this.#i32, worker * SLOT_INTS + 1, 0);
  }

  /** The plugin `worker` is running now, if it is in Wasm code. */
  inWasm(worker: number): string | undefined {
    if (Atomics.load(this.#i32, worker * SLOT_INTS + 1) === 0) return undefined;
    const len = Atomics.load(this.#i32, worker * SLOT_INTS + 2);
    return Buffer.from(this.#bytes.subarray(worker * LABEL_BYTES, worker * LABEL_BYTES + len)).toString('utf8');
  }
}

export interface WatchdogOptions {
  /** No beat for this long -> the worker is stuck. */
  readonly killAfterMs: number;
  /** How often the main thread looks. */
  readonly checkEveryMs?: number;
}

/** Main-thread side: calls `onStuck` once per stuck episode of a worker. */
export class Watchdog {
  readonly #buf: WatchdogBuffer;
  readonly #o: WatchdogOptions;
  readonly #onStuck: (worker: number, stuckMs: number, plugin: string | undefined) => void;
  readonly #last: Array<{ beats: number; since: number; paused: boolean }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(buf: WatchdogBuffer, workers: number, o: WatchdogOptions, onStuck: (worker: number, stuckMs: number, plugin: string | undefined) => void) {
    this.#buf = buf;
    this.#o = o;
    this.#onStuck = onStuck;
    for (let i = 0; i < workers; i++) this.#last.push({ beats: buf.beats(i), since: Date.now(), paused: false });
  }

  start(): void {
    const every = this.#o.checkEveryMs ?? Math.max(50, Math.min(1000, this.#o.killAfterMs / 4));
    this.#timer = setInterval(() => this.#check(), every);
    this.#timer.unref();
  }

  /** Stops watching `worker` (while it is being replaced: a starting worker parses before it beats). */
  pause(worker: number): void {
    const l = this.#last[worker];
    if (l) l.paused = true;
  }

  /** Watches `worker` again from a clean slate (a restarted worker). */
  reset(worker: number): void {
    this.#last[worker] = { beats: this.#buf.beats(worker), since: Date.now(), paused: false };
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const now = Date.now();
    this.#last.forEach((l, i) => {
      if (l.paused) return;
      const b = this.#buf.beats(i);
      if (b !== l.beats) {
        l.beats = b;
        l.since = now;
        return;
      }
      if (now - l.since >= this.#o.killAfterMs) {
        const plugin = this.#buf.inWasm(i);
        l.since = now;
        l.paused = true; // until the caller has dealt with it (reset)
        this.#onStuck(i, this.#o.killAfterMs, plugin);
      }
    });
  }
}
