// The cluster's load balancer: Envoy's priority/panic logic over per-level host selectors (lb_policy).
// Immutable once built: the cluster builds a new one whenever membership or health changes.

import type { Host, LbConfig, LbContext } from '../types.ts';
import { leastRequest } from './least-request.ts';
import { Maglev } from './maglev.ts';
import { randomLb } from './random.ts';
import { RingHash } from './ring-hash.ts';
import { roundRobin } from './round-robin.ts';
import type { HostSelector } from './selector.ts';
import { EdfScheduler } from './edf.ts';
import type { Counter } from '../../stats.ts';

export type { HostSelector } from './selector.ts';

/** A selector for one host list under `lb.policy`. */
export function createSelector(lb: LbConfig, hosts: readonly Host[]): HostSelector {
  switch (lb.policy) {
    case 'ROUND_ROBIN':
    // ORIGINAL_DST clusters pick their host themselves (cluster.ts); this selector is never asked.
    case 'CLUSTER_PROVIDED':
      return roundRobin(hosts);
    case 'LEAST_REQUEST':
      return leastRequest(hosts, lb.choiceCount, lb.activeRequestBias);
    case 'RANDOM':
      return randomLb(hosts);
    case 'RING_HASH':
      return new RingHash(byKey(hosts), lb);
    case 'MAGLEV':
      return new Maglev(byKey(hosts), lb.maglevTableSize, lb.useHostnameForHashing);
  }
}

/** Consistent hashing must not depend on the order DNS returned addresses in (workers must agree). */
function byKey(hosts: readonly Host[]): Host[] {
  return [...hosts].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

type Source = 'healthy' | 'degraded' | 'all';

interface Level {
  readonly all: readonly Host[];
  readonly healthy: readonly Host[];
  readonly degraded: readonly Host[];
  panic: boolean;
  healthyLoad: number; // percent of traffic
  degradedLoad: number;
  readonly selectors: Map<Source, HostSelector>;
}

/** Envoy's distributeLoad: each level takes its availability share, capped by what is left. */
function distribute(avail: readonly number[], total: number, normalized: number, out: (i: number, v: number) => void): number {
  let left = total;
  avail.forEach((a, i) => {
    const v = Math.min(left, Math.floor((a * 100) / normalized));
    out(i, v);
    left -= v;
  });
  return left;
}

export class LoadBalancer {
  readonly #lb: LbConfig;
  readonly #levels: Level[] = [];
  readonly #consistent: boolean;
  /** lb_healthy_panic: picks made while the chosen priority level is in panic. */
  readonly #panicPicks: Counter | undefined;

  constructor(lb: LbConfig, hosts: readonly Host[], panicPicks?: Counter) {
    this.#lb = lb;
    this.#panicPicks = panicPicks;
    this.#consistent = lb.policy === 'RING_HASH' || lb.policy === 'MAGLEV';
    const maxPriority = hosts.reduce((m, h) => Math.max(m, h.priority), -1);
    for (let p = 0; p <= maxPriority; p++) {
      const all = hosts.filter((h) => h.priority === p);
      this.#levels.push({
        all,
        healthy: all.filter((h) => h.health === 'healthy'),
        degraded: all.filter((h) => h.health === 'degraded'),
        panic: false,
        healthyLoad: 0,
        degradedLoad: 0,
        selectors: new Map(),
      });
    }
    this.#computeLoads();
  }

  /** Per-priority traffic shares, percent (tests, admin). */
  priorityLoads(): { healthy: number[]; degraded: number[]; panic: boolean[] } {
    return { healthy: this.#levels.map((l) => l.healthyLoad), degraded: this.#levels.map((l) => l.degradedLoad), panic: this.#levels.map((l) => l.panic) };
  }

  #computeLoads(): void {
    const levels = this.#levels;
    if (levels.length === 0) return;
    const op = this.#lb.overprovisioningFactor;
    const avail = (n: number, total: number): number => (total === 0 ? 0 : Math.min(100, Math.floor((op * n) / total)));
    const h = levels.map((l) => avail(l.healthy.length, l.all.length));
    const d = levels.map((l) => avail(l.degraded.length, l.all.length));
    const normalized = Math.min(100, h.reduce((a, b) => a + b, 0) + d.reduce((a, b) => a + b, 0));
    const threshold = this.#lb.panicThresholdPercent;
    if (normalized === 0) {
      // Total panic: Envoy spreads load over levels by host count and ignores health.
      const total = levels.reduce((s, l) => s + l.all.length, 0);
      let left = 100;
      levels.forEach((l) => {
        l.panic = threshold > 0;
        l.healthyLoad = total === 0 ? 0 : Math.min(left, Math.floor((l.all.length * 100) / total));
        left -= l.healthyLoad;
      });
      if (left > 0) levels.find((l) => l.all.length > 0)!.healthyLoad += left;
      return;
    }
    let left = distribute(h, 100, normalized, (i, v) => (levels[i]!.healthyLoad = v));
    left = distribute(d, left, normalized, (i, v) => (levels[i]!.degradedLoad = v));
    if (left > 0) {
      // Rounding leftovers go to the first level with healthy (else degraded) hosts.
      const i = h.findIndex((v) => v > 0);
      if (i >= 0) levels[i]!.healthyLoad += left;
      else levels[d.findIndex((v) => v > 0)]!.degradedLoad += left;
    }
    levels.forEach((l) => {
      const pct = l.all.length === 0 ? 0 : (100 * (l.healthy.length + l.degraded.length)) / l.all.length;
      l.panic = normalized < 100 && pct < threshold;
    });
  }

  chooseHost(ctx: LbContext): Host | undefined {
    const levels = this.#levels;
    if (levels.length === 0) return undefined;
    // Consistent-hash policies choose the level from the hash too, so a key sticks to a level.
    const r = this.#consistent && ctx.hashKey !== undefined ? Number(ctx.hashKey % 100n) : Math.floor(Math.random() * 100);
    let cum = 0;
    let pick: { level: Level; source: Source } | undefined;
    for (const l of levels) {
      cum += l.healthyLoad;
      if (r < cum) {
        pick = { level: l, source: l.panic ? 'all' : 'healthy' };
        break;
      }
    }
    if (!pick) {
      for (const l of levels) {
        cum += l.degradedLoad;
        if (r < cum) {
          pick = { level: l, source: l.panic ? 'all' : 'degraded' };
          break;
        }
      }
    }
    if (!pick) return undefined;
    if (pick.level.panic) this.#panicPicks?.inc();
    let sel = pick.level.selectors.get(pick.source);
    if (!sel) {
      const list = pick.source === 'all' ? pick.level.all : pick.source === 'healthy' ? pick.level.healthy : pick.level.degraded;
      sel = this.#lb.localityWeighted ? new LocalitySelector(this.#lb, list, pick.level.all) : createSelector(this.#lb, list);
      pick.level.selectors.set(pick.source, sel);
    }
    return sel.pick(ctx);
  }
}

/** locality_weighted_lb_config: a locality by EDF on weight × availability, then a host in it. */
class LocalitySelector implements HostSelector {
  readonly #edf = new EdfScheduler<HostSelector>();
  readonly #weights = new Map<HostSelector, number>();

  constructor(lb: LbConfig, hosts: readonly Host[], levelHosts: readonly Host[]) {
    const groups = new Map<string, Host[]>();
    const totals = new Map<string, number>();
    const weights = new Map<string, number>();
    const keyOf = (h: Host): string => (h.locality ? `${h.locality.region}/${h.locality.zone}/${h.locality.subZone}` : '');
    for (const h of levelHosts) totals.set(keyOf(h), (totals.get(keyOf(h)) ?? 0) + 1);
    for (const h of hosts) {
      const k = keyOf(h);
      const g = groups.get(k);
      if (g) g.push(h);
      else groups.set(k, [h]);
      weights.set(k, h.localityWeight ?? 0);
    }
    for (const [k, g] of groups) {
      const availability = Math.min(1, (lb.overprovisioningFactor / 100) * (g.length / (totals.get(k) ?? g.length)));
      const w = (weights.get(k) ?? 0) * availability;
      if (w <= 0) continue;
      const sel = createSelector(lb, g);
      this.#weights.set(sel, w);
      this.#edf.add(w, sel);
    }
  }

  pick(ctx: LbContext): Host | undefined {
    // Localities without a weight get no traffic under locality weighting (Envoy's rule).
    const sel = this.#edf.pickAndAdd((s) => this.#weights.get(s) ?? 1);
    return sel?.pick(ctx);
  }
}
