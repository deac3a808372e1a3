// Counters shared by every worker thread of the process (one SharedArrayBuffer, Atomics), for
// limits Envoy enforces process-wide: circuit breakers, local rate-limit token buckets. Cells are
// found by key in an open-addressing table inside the buffer, so workers need no coordination.
// A full table falls back to a worker-local cell (logged once): limits then hold per worker.

import { logger } from './log.ts';

const log = logger('main');

export interface SharedCell {
  load(): number;
  store(v: number): void;
  add(n: number): number;
  /** Adds one unless the value already reached `limit`; true when it did add. */
  tryIncrement(limit: number): boolean;
  /** Compare-and-swap; returns the value seen. */
  compareExchange(expected: number, replacement: number): number;
}

const EMPTY = 0;

function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h === EMPTY ? 1 : h | 0;
}

class AtomicCell implements SharedCell {
  readonly #a: Int32Array;
  readonly #i: number;
  constructor(a: Int32Array, i: number) {
    this.#a = a;
    this.#i = i;
  }
  load(): number {
    return Atomics.load(this.#a, this.#i);
  }
  store(v: number): void {
    Atomics.store(this.#a, this.#i, v);
  }
  add(n: number): number {
    return Atomics.add(this.#a, this.#i, n) + n;
  }
  tryIncrement(limit: number): boolean {
    for (;;) {
      const v = Atomics.load(this.#a, this.#i);
      if (v >= limit) return false;
      if (Atomics.compareExchange(this.#a, this.#i, v, v + 1) === v) return true;
    }
  }
  compareExchange(expected: number, replacement: number): number {
    return Atomics.compareExchange(this.#a, this.#i, expected, replacement);
  }
}

export class SharedCounters {
  /** [hash, value] pairs. */
  readonly #table: Int32Array;
  readonly #slots: number;
  readonly #cells = new Map<string, SharedCell>();
  #warned = false;

  /** 16384 cells = 128 KiB. */
  static create(slots = 16384): SharedCounters {
    return new SharedCounters(new SharedArrayBuffer(slots * 8));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.#table = new Int32Array(buffer);
    this.#slots = this.#table.length / 2;
  }

  get buffer(): SharedArrayBuffer {
    return this.#table.buffer as SharedArrayBuffer;
  }

  /** The cell for a key (e.g. `cluster.web.cb.default.rq`); the same key gives the same cell in every worker. */
  cell(key: string): SharedCell {
    const cached = this.#cells.get(key);
    if (cached) return cached;
    const h = fnv1a(key);
    const t = this.#table;
    let i = (h >>> 0) % this.#slots;
    for (let probes = 0; probes < this.#slots; probes++) {
      const seen = Atomics.compareExchange(t, i * 2, EMPTY, h);
      if (seen === EMPTY || seen === h) {
        const c = new AtomicCell(t, i * 2 + 1);
        this.#cells.set(key, c);
        return c;
      }
      i = (i + 1) % this.#slots;
    }
    if (!this.#warned) {
      this.#warned = true;
      log.warn('shared counter table is full: further limits are enforced per worker');
    }
    const local = new AtomicCell(new Int32Array(new SharedArrayBuffer(8)), 1);
    this.#cells.set(key, local);
    return local;
  }
}
