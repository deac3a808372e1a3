// Process-wide Proxy-Wasm shared data and shared queues, in one SharedArrayBuffer handed to every
// worker (Envoy shares these across its threads): a spin/wait lock, a version, and the state as
// JSON (values base64), re-parsed only when another worker changed it. Writes re-serialise the
// state, which suits what plugins keep there (counters, small tables). Queue readiness reaches the
// worker that registered the queue through a per-worker notification slot (Atomics.waitAsync).

import { Status } from './abi.ts';

const LOCK = 0;
const VERSION = 1;
const LENGTH = 2;
const SLOTS = 4; // per-worker notification counters start here
const MAX_WORKERS = 256;
const HEADER_BYTES = (SLOTS + MAX_WORKERS) * 4;

interface State {
  /** `${vmId}\0${key}` -> [base64 value, cas] */
  data: Record<string, [string, number]>;
  /** `${vmId}\0${name}` -> queue */
  queues: Record<string, { id: number; owner: number; items: string[]; pending: number }>;
  nextCas: number;
  nextQueue: number;
}

const empty = (): State => ({ data: {}, queues: {}, nextCas: 1, nextQueue: 1 });

export class SharedWasmStore {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #workerId: number;
  #cached: State | undefined;
  #cachedVersion = -1;
  readonly #notify = new Map<number, (queueId: number) => void>();
  #waiting = false;

  static create(bytes = 16 * 1024 * 1024): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_BYTES + bytes);
  }

  constructor(buffer: SharedArrayBuffer, workerId: number) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer, 0, SLOTS + MAX_WORKERS);
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES);
    this.#workerId = workerId % MAX_WORKERS;
  }

  #lock(): void {
    for (let spins = 0; Atomics.compareExchange(this.#i32, LOCK, 0, 1) !== 0; spins++) {
      if (spins > 100) Atomics.wait(this.#i32, LOCK, 1, 1);
    }
  }

  #unlock(): void {
    Atomics.store(this.#i32, LOCK, 0);
    Atomics.notify(this.#i32, LOCK, 1);
  }

  #read(): State {
    const v = Atomics.load(this.#i32, VERSION);
    if (this.#cached && v === this.#cachedVersion) return this.#cached;
    const len = Atomics.load(this.#i32, LENGTH);
    const state = len === 0 ? empty() : (JSON.parse(Buffer.from(this.#bytes.subarray(0, len)).toString('utf8')) as State);
    this.#cached = state;
    this.#cachedVersion = v;
    return state;
  }

  /** False when the state no longer fits. */
  #write(state: State): boolean {
    const json = Buffer.from(JSON.stringify(state), 'utf8');
    if (json.length > this.#bytes.length) {
      this.#cached = undefined;
      return false;
    }
    this.#bytes.set(json, 0);
    Atomics.store(this.#i32, LENGTH, json.length);
    this.#cachedVersion = Atomics.add(this.#i32, VERSION, 1) + 1;
    this.#cached = state;
    return true;
  }

  #locked<T>(fn: (s: State) => T): T {
    this.#lock();
    try {
      return fn(this.#read());
    } finally {
      this.#unlock();
    }
  }

  getSharedData(vmId: string, key: string): { value: Buffer; cas: number } | undefined {
    return this.#locked((s) => {
      const e = s.data[`${vmId}\0${key}`];
      return e ? { value: Buffer.from(e[0], 'base64'), cas: e[1] } : undefined;
    });
  }

  /** cas 0 sets unconditionally; otherwise it must match the entry's current cas. */
  setSharedData(vmId: string, key: string, value: Buffer, cas: number): Status {
    return this.#locked((s) => {
      const k = `${vmId}\0${key}`;
      const cur = s.data[k];
      if (cas !== 0 && cur && cur[1] !== cas) return Status.CAS_MISMATCH;
      const prev = cur;
      s.data[k] = [value.toString('base64'), s.nextCas++];
      if (this.#write(s)) return Status.OK;
      if (prev) s.data[k] = prev;
      else delete s.data[k];
      return Status.INTERNAL_FAILURE;
    });
  }

  /** Registers (or re-opens) a queue; this worker's `notify` hears of items enqueued anywhere. */
  registerQueue(vmId: string, name: string, notify: (queueId: number) => void): number {
    const id = this.#locked((s) => {
      const k = `${vmId}\0${name}`;
      let q = s.queues[k];
      if (!q) q = s.queues[k] = { id: s.nextQueue++, owner: this.#workerId, items: [], pending: 0 };
      q.owner = this.#workerId;
      this.#write(s);
      return q.id;
    });
    this.#notify.set(id, notify);
    this.#listen();
    return id;
  }

  resolveQueue(vmId: string, name: string): number | undefined {
    return this.#locked((s) => s.queues[`${vmId}\0${name}`]?.id);
  }

  enqueue(queueId: number, value: Buffer): Status {
    const owner = this.#locked((s) => {
      const q = Object.values(s.queues).find((x) => x.id === queueId);
      if (!q) return -1;
      q.items.push(value.toString('base64'));
      q.pending++;
      if (!this.#write(s)) {
        q.items.pop();
        q.pending--;
        return -2;
      }
      return q.owner;
    });
    if (owner === -1) return Status.NOT_FOUND;
    if (owner === -2) return Status.INTERNAL_FAILURE;
    Atomics.add(this.#i32, SLOTS + owner, 1);
    Atomics.notify(this.#i32, SLOTS + owner);
    return Status.OK;
  }

  dequeue(queueId: number): { status: Status; value?: Buffer } {
    return this.#locked((s) => {
      const q = Object.values(s.queues).find((x) => x.id === queueId);
      if (!q) return { status: Status.NOT_FOUND };
      const v = q.items.shift();
      if (v === undefined) return { status: Status.EMPTY };
      this.#write(s);
      return { status: Status.OK, value: Buffer.from(v, 'base64') };
    });
  }

  /** Waits (without blocking the event loop) on this worker's slot and calls back per enqueued item. */
  #listen(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    const slot = SLOTS + this.#workerId;
    const loop = (): void => {
      const seen = Atomics.load(this.#i32, slot);
      const w = Atomics.waitAsync(this.#i32, slot, seen);
      const deliver = (): void => {
        const ready = this.#locked((s) => {
          const out: Array<[number, number]> = [];
          for (const q of Object.values(s.queues)) {
            if (q.owner === this.#workerId && q.pending > 0 && this.#notify.has(q.id)) {
              out.push([q.id, q.pending]);
              q.pending = 0;
            }
          }
          if (out.length > 0) this.#write(s);
          return out;
        });
        for (const [id, n] of ready) for (let i = 0; i < n; i++) this.#notify.get(id)?.(id);
        loop();
      };
      if (w.async) {
        // The pending wait must not keep a worker alive on its own.
        void (w.value as Promise<unknown>).then(deliver);
      } else setImmediate(deliver);
    };
    loop();
  }
}

/** What plugin runtimes use of the store (tests may pass their own). */
export type WasmSharedState = Pick<SharedWasmStore, 'getSharedData' | 'setSharedData' | 'registerQueue' | 'resolveQueue' | 'enqueue' | 'dequeue'>;

let processStore: SharedWasmStore | undefined;

/** Called once by a worker at start with the process's buffer (WorkerInit) and its id. */
export function attachProcessWasmStore(buffer: SharedArrayBuffer, workerId: number): void {
  processStore = new SharedWasmStore(buffer, workerId);
}

/** This thread's view of the process-wide store (a private one when none was attached). */
export function processWasmStore(): SharedWasmStore {
  processStore ??= new SharedWasmStore(SharedWasmStore.create(), 0);
  return processStore;
}
