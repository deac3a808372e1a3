// What Proxy-Wasm plugins share within one worker: VMs by (vm_id, code sha256) — plugins whose
// vm_id and code match run in one VM, each with its own root context —, shared data (key-value with
// compare-and-swap, per vm_id) and shared queues (per vm_id and name). Envoy shares these across
// its worker threads; legate keeps them per worker (each worker has its own VMs anyway).

import { Status } from './abi.ts';

export interface SharedEntry {
  value: Buffer;
  cas: number;
}

interface Queue {
  readonly id: number;
  readonly items: Buffer[];
  /** The root context that registered it, told when an item arrives. */
  notify: ((queueId: number) => void) | undefined;
}

export class WasmWorkerState {
  readonly #data = new Map<string, SharedEntry>();
  readonly #queuesByName = new Map<string, Queue>();
  readonly #queuesById = new Map<number, Queue>();
  #nextQueue = 1;
  #nextCas = 1;

  getSharedData(vmId: string, key: string): SharedEntry | undefined {
    return this.#data.get(`${vmId}\0${key}`);
  }

  /** cas 0 sets unconditionally; otherwise it must match the entry's current cas. */
  setSharedData(vmId: string, key: string, value: Buffer, cas: number): Status {
    const k = `${vmId}\0${key}`;
    const cur = this.#data.get(k);
    if (cas !== 0 && cur && cur.cas !== cas) return Status.CAS_MISMATCH;
    this.#data.set(k, { value: Buffer.from(value), cas: this.#nextCas++ });
    return Status.OK;
  }

  registerQueue(vmId: string, name: string, notify: (queueId: number) => void): number {
    const k = `${vmId}\0${name}`;
    let q = this.#queuesByName.get(k);
    if (!q) {
      q = { id: this.#nextQueue++, items: [], notify: undefined };
      this.#queuesByName.set(k, q);
      this.#queuesById.set(q.id, q);
    }
    q.notify = notify;
    return q.id;
  }

  resolveQueue(vmId: string, name: string): number | undefined {
    return this.#queuesByName.get(`${vmId}\0${name}`)?.id;
  }

  enqueue(queueId: number, value: Buffer): Status {
    const q = this.#queuesById.get(queueId);
    if (!q) return Status.NOT_FOUND;
    q.items.push(Buffer.from(value));
    const notify = q.notify;
    if (notify) setImmediate(() => notify(queueId));
    return Status.OK;
  }

  dequeue(queueId: number): { status: Status; value?: Buffer } {
    const q = this.#queuesById.get(queueId);
    if (!q) return { status: Status.NOT_FOUND };
    const v = q.items.shift();
    return v ? { status: Status.OK, value: v } : { status: Status.EMPTY };
  }
}

/** One per worker thread. */
export const workerWasmState = new WasmWorkerState();
