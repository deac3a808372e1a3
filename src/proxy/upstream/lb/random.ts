// RANDOM: a uniformly random host. Envoy's random LB ignores weights, and so does this one.

import type { Host, LbContext } from '../types.ts';
import { pickAvoiding, randomIndex, type HostSelector } from './selector.ts';

export function randomLb(hosts: readonly Host[]): HostSelector {
  if (hosts.length === 0) return { pick: () => undefined };
  return { pick: (ctx: LbContext) => pickAvoiding(ctx, hosts, () => hosts[randomIndex(hosts.length)]) };
}
