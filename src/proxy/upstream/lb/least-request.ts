// LEAST_REQUEST: power of `choiceCount` choices by activeRequests when weights are equal; with unequal
// weights Envoy's weighted form, EDF with weight / (activeRequests + 1)^activeRequestBias.

import type { Host, LbContext } from '../types.ts';
import { EdfScheduler } from './edf.ts';
import { equalWeights, pickAvoiding, randomIndex, type HostSelector } from './selector.ts';

export function leastRequest(hosts: readonly Host[], choiceCount: number, activeRequestBias: number): HostSelector {
  if (hosts.length === 0) return { pick: () => undefined };
  if (equalWeights(hosts)) {
    const choose = (): Host => {
      let best = hosts[randomIndex(hosts.length)]!;
      for (let i = 1; i < choiceCount; i++) {
        const h = hosts[randomIndex(hosts.length)]!;
        if (h.activeRequests < best.activeRequests) best = h;
      }
      return best;
    };
    return { pick: (ctx: LbContext) => pickAvoiding(ctx, hosts, choose) };
  }
  const weightOf = (h: Host): number =>
    activeRequestBias === 0 ? h.weight : activeRequestBias === 1 ? h.weight / (h.activeRequests + 1) : h.weight / Math.pow(h.activeRequests + 1, activeRequestBias);
  const edf = new EdfScheduler<Host>();
  for (const h of hosts) edf.add(weightOf(h), h);
  return { pick: (ctx: LbContext) => pickAvoiding(ctx, hosts, () => edf.pickAndAdd(weightOf)) };
}
