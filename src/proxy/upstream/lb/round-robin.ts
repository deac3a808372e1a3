// ROUND_ROBIN: plain rotation when weights are equal, EDF (weights honoured in proportion) otherwise.
// Never fails: an empty list picks undefined.

import type { Host, LbContext } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { equalWeights, pickAvoiding, randomIndex, type HostSelector } from './selector.ts';

export function roundRobin(hosts: readonly Host[]): HostSelector {
  if (hosts.length === 0) return { pick: () => undefined };
  if (equalWeights(hosts)) {
    // Envoy starts each worker's rotation at a random offset so workers don't move in lock-step.
    let next = randomIndex(hosts.length);
    return {
      pick: (ctx: LbContext) => pickAvoiding(ctx, hosts, () => hosts[next++ % hosts.length]),
    };
  }
  const edf = new EdfScheduler<Host>();
  for (const h of hosts) edf.add(h.weight, h);
  return {
    pick: (ctx: LbContext) => pickAvoiding(ctx, hosts, () => edf.pickAndAdd((h) => h.weight)),
  };
}
