// Cluster.circuit_breakers -> frozen per-priority thresholds (DEFAULT, HIGH) with Envoy's defaults, and
// the retry-budget arithmetic. Never throws: a bad value is a ConfigError naming its field path.

import type { CircuitBreakers__Output } from '../../generated/envoy/config/cluster/v3/CircuitBreakers.ts';
import type { ConfigError, Result } from '../../config/result.ts';
import { joinPath } from '../../config/result.ts';
import { wrapped } from '../../config/values.ts';
import type { RoutingPriority } from './types.ts';

/** Envoy's defaults when a priority has no thresholds (or a field is unset). */
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_PENDING_REQUESTS = 1024;
export const DEFAULT_MAX_REQUESTS = 1024;
export const DEFAULT_MAX_RETRIES = 3;
export const DEFAULT_BUDGET_PERCENT = 20; // retry_budget.budget_percent, percent of active + pending requests
export const DEFAULT_MIN_RETRY_CONCURRENCY = 3; // retry_budget.min_retry_concurrency

export interface RetryBudgetConfig {
  /** Percent (0-100) of active + pending requests that may be retries. */
  readonly budgetPercent: number;
  /** Retries always allowed regardless of the active request count. */
  readonly minRetryConcurrency: number;
}

export interface ThresholdsConfig {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  /** Ignored when `retryBudget` is set (Envoy: the budget overrides max_retries). */
  readonly maxRetries: number;
  readonly retryBudget: RetryBudgetConfig | undefined;
  /** track_remaining: publish the `remaining_*` gauges. */
  readonly trackRemaining: boolean;
}

export type CircuitBreakersConfig = Readonly<Record<RoutingPriority, ThresholdsConfig>>;

export const DEFAULT_THRESHOLDS: ThresholdsConfig = Object.freeze({
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxPendingRequests: DEFAULT_MAX_PENDING_REQUESTS,
  maxRequests: DEFAULT_MAX_REQUESTS,
  maxRetries: DEFAULT_MAX_RETRIES,
  retryBudget: undefined,
  trackRemaining: false,
});

export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakersConfig = Object.freeze({ DEFAULT: DEFAULT_THRESHOLDS, HIGH: DEFAULT_THRESHOLDS });

/**
 * Retries allowed under a retry budget: max(min_retry_concurrency, budget_percent% × (active + pending)),
 * the product truncated as Envoy's integer conversion does.
 */
export function retryBudgetLimit(budget: RetryBudgetConfig, activeRequests: number, pendingRequests: number): number {
  const active = Math.max(0, activeRequests) + Math.max(0, pendingRequests);
  return Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent / 100) * active));
}

/**
 * Parses `circuit_breakers` (`path` names the field, e.g. `static_resources.clusters[0].circuit_breakers`).
 * The first thresholds entry for a priority wins, as in Envoy. `per_host_thresholds` and
 * `max_connection_pools` are not enforced: they are accepted with a warning.
 */
export function parseCircuitBreakers(cb: CircuitBreakers__Output | null | undefined, path: string): Result<CircuitBreakersConfig> {
  if (!cb) return { ok: true, value: DEFAULT_CIRCUIT_BREAKERS };
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const out: Partial<Record<RoutingPriority, ThresholdsConfig>> = {};
  cb.thresholds.forEach((t, i) => {
    const tpath = joinPath(path, `thresholds[${i}]`);
    const priority = String(t.priority);
    if (priority !== 'DEFAULT' && priority !== 'HIGH') {
      errors.push({ path: joinPath(tpath, 'priority'), reason: `unknown routing priority ${priority}` });
      return;
    }
    if (out[priority]) return;
    let retryBudget: RetryBudgetConfig | undefined;
    if (t.retry_budget) {
      const budgetPercent = t.retry_budget.budget_percent ? t.retry_budget.budget_percent.value : DEFAULT_BUDGET_PERCENT;
      if (!(budgetPercent >= 0 && budgetPercent <= 100)) {
        errors.push({ path: joinPath(tpath, 'retry_budget.budget_percent.value'), reason: 'value must be inside range [0, 100]' });
      }
      retryBudget = { budgetPercent, minRetryConcurrency: wrapped(t.retry_budget.min_retry_concurrency, DEFAULT_MIN_RETRY_CONCURRENCY) };
    }
    if (t.max_connection_pools) warnings.push(`${joinPath(tpath, 'max_connection_pools')}: not enforced (legate keeps one pool per host and protocol)`);
    out[priority] = {
      maxConnections: wrapped(t.max_connections, DEFAULT_MAX_CONNECTIONS),
      maxPendingRequests: wrapped(t.max_pending_requests, DEFAULT_MAX_PENDING_REQUESTS),
      maxRequests: wrapped(t.max_requests, DEFAULT_MAX_REQUESTS),
      maxRetries: wrapped(t.max_retries, DEFAULT_MAX_RETRIES),
      retryBudget,
      trackRemaining: t.track_remaining,
    };
  });
  if (cb.per_host_thresholds.length > 0) warnings.push(`${joinPath(path, 'per_host_thresholds')}: per-host circuit breakers are not enforced`);
  if (errors.length > 0) return { ok: false, errors };
  const value: CircuitBreakersConfig = { DEFAULT: out.DEFAULT ?? DEFAULT_THRESHOLDS, HIGH: out.HIGH ?? DEFAULT_THRESHOLDS };
  return warnings.length > 0 ? { ok: true, value, warnings } : { ok: true, value };
}
