// RING_HASH (Envoy's ketama ring): each host hashed onto the ring `key_i` with xxHash64, replicated in
// proportion to its weight; a request's hash takes the first entry at or after it. Never fails.

import { xxHash64 } from '../hash.ts';
import type { Host, LbContext } from '../types.ts';
import { pickAvoiding, randomHash, type HostSelector } from './selector.ts';

export interface RingHashOptions {
  readonly minRingSize: number;
  readonly maxRingSize: number;
  readonly useHostnameForHashing: boolean;
}

export function hashKeyOf(h: Host, useHostname: boolean): string {
  return useHostname && h.hostname ? h.hostname : h.key;
}

export class RingHash implements HostSelector {
  readonly #hashes: BigUint64Array;
  readonly #hosts: Host[];
  readonly #all: readonly Host[];

  constructor(hosts: readonly Host[], opts: RingHashOptions) {
    this.#all = hosts;
    const total = hosts.reduce((s, h) => s + h.weight, 0);
    if (hosts.length === 0 || total <= 0) {
      this.#hashes = new BigUint64Array(0);
      this.#hosts = [];
      return;
    }
    const normalized = hosts.map((h) => h.weight / total);
    const minW = Math.min(...normalized);
    // Scale so the least-weighted host gets a whole number of entries, capped at max_ring_size.
    const scale = Math.min(Math.ceil(minW * opts.minRingSize) / minW, opts.maxRingSize);
    const hashes: bigint[] = [];
    const owners: Host[] = [];
    let current = 0;
    let target = 0;
    hosts.forEach((h, idx) => {
      const key = hashKeyOf(h, opts.useHostnameForHashing);
      target += scale * normalized[idx]!;
      for (let i = 0; current < target; i++, current++) {
        hashes.push(xxHash64(`${key}_${i}`));
        owners.push(h);
      }
    });
    const order = hashes.map((_, i) => i).sort((a, b) => (hashes[a]! < hashes[b]! ? -1 : hashes[a]! > hashes[b]! ? 1 : a - b));
    this.#hashes = BigUint64Array.from(order.map((i) => hashes[i]!));
    this.#hosts = order.map((i) => owners[i]!);
  }

  get size(): number {
    return this.#hosts.length;
  }

  /** The ring entry index a hash maps to: the first entry >= h, wrapping to 0. */
  indexOf(h: bigint): number {
    const a = this.#hashes;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === a.length ? 0 : lo;
  }

  pick(ctx: LbContext): Host | undefined {
    const n = this.#hosts.length;
    if (n === 0) return undefined;
    const idx = this.indexOf(ctx.hashKey ?? randomHash());
    // A retry predicate makes Envoy walk the ring as if the excluded host were absent.
    return pickAvoiding(ctx, this.#all, (attempt) => this.#hosts[(idx + attempt) % n]);
  }
}
