// MAGLEV (Google's Maglev, weighted as Envoy does): a lookup table of prime size filled by each host's
// permutation (offset = xxHash64(key) mod M, skip = xxHash64(key, 1) mod (M-1) + 1). Never fails.

import { xxHash64 } from '../hash.ts';
import type { Host, LbContext } from '../types.ts';
import { hashKeyOf } from './ring-hash.ts';
import { pickAvoiding, randomHash, type HostSelector } from './selector.ts';

const M64 = (1n << 64n) - 1n;

interface BuildEntry {
  host: Host;
  offset: number;
  skip: number;
  weight: number;
  targetWeight: number;
  next: number;
}

export class Maglev implements HostSelector {
  readonly #table: Host[];
  readonly #size: bigint;
  readonly #all: readonly Host[];

  constructor(hosts: readonly Host[], tableSize: number, useHostnameForHashing: boolean) {
    this.#all = hosts;
    this.#size = BigInt(tableSize);
    const live = hosts.filter((h) => h.weight > 0);
    if (live.length === 0) {
      this.#table = [];
      return;
    }
    const total = live.reduce((s, h) => s + h.weight, 0);
    const m = BigInt(tableSize);
    const entries: BuildEntry[] = live.map((host) => {
      const key = hashKeyOf(host, useHostnameForHashing);
      return {
        host,
        offset: Number(xxHash64(key) % m),
        skip: Number((xxHash64(key, 1n) % (m - 1n)) + 1n),
        weight: host.weight / total,
        targetWeight: 0,
        next: 0,
      };
    });
    const maxWeight = Math.max(...entries.map((e) => e.weight));
    const table = new Array<Host | undefined>(tableSize).fill(undefined);
    let filled = 0;
    for (let iteration = 1; filled < tableSize; iteration++) {
      for (let i = 0; i < entries.length && filled < tableSize; i++) {
        const e = entries[i]!;
        // A host with the largest weight takes a slot every iteration; one with half of it every other.
        if (e.weight * iteration < e.targetWeight) continue;
        e.targetWeight += maxWeight;
        let c = (e.offset + e.skip * e.next) % tableSize;
        while (table[c] !== undefined) {
          e.next++;
          c = (e.offset + e.skip * e.next) % tableSize;
        }
        table[c] = e.host;
        e.next++;
        filled++;
      }
    }
    this.#table = table as Host[];
  }

  /** Table entries per host key (tests and admin). */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const h of this.#table) out.set(h.key, (out.get(h.key) ?? 0) + 1);
    return out;
  }

  pick(ctx: LbContext): Host | undefined {
    if (this.#table.length === 0) return undefined;
    const hash = ctx.hashKey ?? randomHash();
    return pickAvoiding(ctx, this.#all, (attempt) => {
      // Envoy mutates the hash per retry attempt so retries spread over other hosts.
      const h = attempt > 0 ? hash ^ ((M64 - BigInt(attempt) + 1n) & M64) : hash;
      return this.#table[Number(h % this.#size)];
    });
  }
}
