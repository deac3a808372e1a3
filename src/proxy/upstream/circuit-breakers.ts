// One cluster's circuit breakers (Envoy's ResourceManager per priority): connections, pending requests,
// requests and retries, counted process-wide in SharedCounters cells so every worker shares one limit.
// A full breaker fails fast: tryAcquire() answers false (never waits) and counts the overflow
// (upstream_cx_overflow for connections, upstream_rq_pending_overflow for pending and active requests,
// as Envoy does). Retry overflow (upstream_rq_retry_overflow) is counted by the retry logic, the caller.
// Gauges (`circuit_breakers.<priority>.*_open`, `remaining_*`) are per worker copies of the shared value
// (merged with 'max'); refreshGauges() brings them up to date before a stats snapshot.

import { ErrorCode, ProxyError, ResponseFlag } from '../errors.ts';
import type { SharedCell, SharedCounters } from '../shared-counters.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import { retryBudgetLimit, type CircuitBreakersConfig, type ThresholdsConfig } from './circuit-breakers-config.ts';
import type { CircuitBreakers, ResourceLimit, RoutingPriority } from './types.ts';

/** Envoy's header on a circuit-breaker 503 (left out when the router suppresses Envoy headers). */
export const OVERLOADED_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'x-envoy-overloaded': 'true' });

/** The error a pool reports when a request cannot even wait for a connection (pending overflow -> 503 UO). */
export function overflowError(cluster: string, what: string): ProxyError {
  return new ProxyError(ErrorCode.OVERFLOW, `cluster ${cluster}: ${what} circuit breaker overflow`, {
    source: 'upstream',
    retryable: false,
    flag: ResponseFlag.UpstreamOverflow,
  });
}

/** RouteAction.priority from the raw route action (proto-loader form): HIGH or DEFAULT. */
export function routePriority(rawAction: unknown): RoutingPriority {
  return (rawAction as { priority?: unknown } | null | undefined)?.priority === 'HIGH' ? 'HIGH' : 'DEFAULT';
}

/** One process-wide counted resource. */
export class BreakerLimit implements ResourceLimit {
  readonly #cell: SharedCell;
  readonly #limit: () => number;
  readonly #openGauge: Gauge;
  readonly #remaining: Gauge | undefined;
  readonly #overflow: Counter | undefined;
  /** Limits whose value depends on this one's count (the retry budget reads requests and pending). */
  readonly dependents: BreakerLimit[] = [];

  constructor(cell: SharedCell, limit: () => number, openGauge: Gauge, remaining: Gauge | undefined, overflow: Counter | undefined) {
    this.#cell = cell;
    this.#limit = limit;
    this.#openGauge = openGauge;
    this.#remaining = remaining;
    this.#overflow = overflow;
    this.refreshGauges();
  }

  tryAcquire(): boolean {
    const ok = this.#cell.tryIncrement(this.#limit());
    if (!ok) this.#overflow?.inc();
    this.#changed();
    return ok;
  }

  /** Takes one even over the limit (Envoy gives every host at least one connection). */
  forceAcquire(): void {
    this.#cell.add(1);
    this.#changed();
  }

  release(): void {
    this.#cell.add(-1);
    this.#changed();
  }

  get open(): boolean {
    return this.#cell.load() >= this.#limit();
  }

  /** Current count across all workers. */
  get count(): number {
    return this.#cell.load();
  }

  get limit(): number {
    return this.#limit();
  }

  refreshGauges(): void {
    const n = this.#cell.load();
    const max = this.#limit();
    this.#openGauge.set(n >= max ? 1 : 0);
    this.#remaining?.set(Math.max(0, max - n));
  }

  #changed(): void {
    this.refreshGauges();
    for (const d of this.dependents) d.refreshGauges();
  }
}

export interface PriorityBreakers extends CircuitBreakers {
  readonly connections: BreakerLimit;
  readonly pendingRequests: BreakerLimit;
  readonly requests: BreakerLimit;
  readonly retries: BreakerLimit;
}

function priorityBreakers(cluster: string, statPrefix: string, priority: RoutingPriority, t: ThresholdsConfig, shared: SharedCounters, stats: StatsStore): PriorityBreakers {
  const p = priority.toLowerCase();
  const key = `cluster.${cluster}.cb.${p}.`;
  const g = (name: string): Gauge => stats.gauge(`${statPrefix}circuit_breakers.${p}.${name}`, 'max');
  const remaining = (name: string): Gauge | undefined => (t.trackRemaining ? g(name) : undefined);
  const pendingOverflow = stats.counter(`${statPrefix}upstream_rq_pending_overflow`);
  const connections = new BreakerLimit(shared.cell(`${key}cx`), () => t.maxConnections, g('cx_open'), remaining('remaining_cx'), stats.counter(`${statPrefix}upstream_cx_overflow`));
  const pendingRequests = new BreakerLimit(shared.cell(`${key}pending`), () => t.maxPendingRequests, g('rq_pending_open'), remaining('remaining_pending'), pendingOverflow);
  const requests = new BreakerLimit(shared.cell(`${key}rq`), () => t.maxRequests, g('rq_open'), remaining('remaining_rq'), pendingOverflow);
  const budget = t.retryBudget;
  const retryLimit = budget ? (): number => retryBudgetLimit(budget, requests.count, pendingRequests.count) : (): number => t.maxRetries;
  const retries = new BreakerLimit(shared.cell(`${key}retries`), retryLimit, g('rq_retry_open'), remaining('remaining_retries'), undefined);
  if (budget) {
    requests.dependents.push(retries);
    pendingRequests.dependents.push(retries);
  }
  // max_connection_pools is not enforced: its gauge stays closed.
  g('cx_pool_open').set(0);
  return { connections, pendingRequests, requests, retries };
}

/** Both priorities of one cluster, built once per worker over the process-wide cells. */
export class ClusterCircuitBreakers {
  readonly config: CircuitBreakersConfig;
  readonly #byPriority: Readonly<Record<RoutingPriority, PriorityBreakers>>;

  constructor(cluster: string, statPrefix: string, config: CircuitBreakersConfig, shared: SharedCounters, stats: StatsStore) {
    this.config = config;
    this.#byPriority = {
      DEFAULT: priorityBreakers(cluster, statPrefix, 'DEFAULT', config.DEFAULT, shared, stats),
      HIGH: priorityBreakers(cluster, statPrefix, 'HIGH', config.HIGH, shared, stats),
    };
  }

  get(priority: RoutingPriority): PriorityBreakers {
    return this.#byPriority[priority];
  }

  /** Re-reads the shared cells into this worker's gauges (another worker may have moved them). */
  refreshGauges(): void {
    for (const b of Object.values(this.#byPriority)) {
      b.connections.refreshGauges();
      b.pendingRequests.refreshGauges();
      b.requests.refreshGauges();
      b.retries.refreshGauges();
    }
  }
}
