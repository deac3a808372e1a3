// What every load-balancing policy implements: picking one host out of a fixed list (one priority
// level, healthy/degraded/panic set). Built again whenever membership or health changes.

import type { Host, LbContext } from '../types.ts';

export interface HostSelector {
  /** undefined only when the list is empty. */
  pick(ctx: LbContext): Host | undefined;
}

/** Attempts a policy makes to avoid excluded hosts before scanning for any allowed one. */
export const MAX_EXCLUDE_ATTEMPTS = 8;

export function excluded(ctx: LbContext, h: Host): boolean {
  return ctx.excludeHosts !== undefined && ctx.excludeHosts.size > 0 && ctx.excludeHosts.has(h.key);
}

/**
 * Picks with `attempt(i)` until the host is not excluded; after MAX_EXCLUDE_ATTEMPTS, the first
 * allowed host in list order, else the first pick (Envoy, too, returns an excluded host rather than none).
 */
export function pickAvoiding(ctx: LbContext, hosts: readonly Host[], attempt: (i: number) => Host | undefined): Host | undefined {
  const first = attempt(0);
  if (!first || !ctx.excludeHosts || ctx.excludeHosts.size === 0 || !excluded(ctx, first)) return first;
  for (let i = 1; i < MAX_EXCLUDE_ATTEMPTS; i++) {
    const h = attempt(i);
    if (h && !excluded(ctx, h)) return h;
  }
  return hosts.find((h) => !excluded(ctx, h)) ?? first;
}

export function randomIndex(n: number): number {
  return Math.floor(Math.random() * n);
}

/** A uniformly random 64-bit hash for consistent-hash policies when the request has none. */
export function randomHash(): bigint {
  const hi = BigInt(Math.floor(Math.random() * 0x100000000));
  const lo = BigInt(Math.floor(Math.random() * 0x100000000));
  return (hi << 32n) | lo;
}

/** Hosts' weights are all equal: policies then use their cheaper unweighted form, as Envoy does. */
export function equalWeights(hosts: readonly Host[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false;
  return true;
}
