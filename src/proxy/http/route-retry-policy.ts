// Route and virtual-host retry_policy / hedge_policy (envoy.config.route.v3) parsed into a frozen
// RetryPolicy / HedgePolicy; pure, so the route table can reject a bad policy at load. Fails (Result with
// field paths) only on what legate cannot honour: an unknown retry host predicate, retry_priority,
// retry_options_predicates, a bad back-off or header matcher. Unknown retry_on tokens are ignored, as Envoy does.

import { deepFreeze, fail, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { durationMs, int64, wrapped } from '../../config/values.ts';
import { compileHeaderMatcher, type HeaderPredicate } from './matchers.ts';
import type { RetryPolicy__Output } from '../../generated/envoy/config/route/v3/RetryPolicy.ts';
import type { HedgePolicy__Output } from '../../generated/envoy/config/route/v3/HedgePolicy.ts';

/** Envoy's RetryPolicy bits (x-envoy-retry-on / x-envoy-retry-grpc-on tokens). */
export const RetryOn = {
  x5xx: 1 << 0,
  gatewayError: 1 << 1,
  connectFailure: 1 << 2,
  retriable4xx: 1 << 3,
  refusedStream: 1 << 4,
  grpcCancelled: 1 << 5,
  grpcDeadlineExceeded: 1 << 6,
  grpcResourceExhausted: 1 << 7,
  grpcUnavailable: 1 << 8,
  grpcInternal: 1 << 9,
  retriableStatusCodes: 1 << 10,
  reset: 1 << 11,
  retriableHeaders: 1 << 12,
  envoyRateLimited: 1 << 13,
  http3PostConnectFailure: 1 << 14,
  resetBeforeRequest: 1 << 15,
} as const;

const HTTP_TOKENS: Readonly<Record<string, number>> = {
  '5xx': RetryOn.x5xx,
  'gateway-error': RetryOn.gatewayError,
  'connect-failure': RetryOn.connectFailure,
  'retriable-4xx': RetryOn.retriable4xx,
  'refused-stream': RetryOn.refusedStream,
  'retriable-status-codes': RetryOn.retriableStatusCodes,
  'retriable-headers': RetryOn.retriableHeaders,
  reset: RetryOn.reset,
  'reset-before-request': RetryOn.resetBeforeRequest,
  'envoy-ratelimited': RetryOn.envoyRateLimited,
  'http3-post-connect-failure': RetryOn.http3PostConnectFailure,
};

const GRPC_TOKENS: Readonly<Record<string, number>> = {
  cancelled: RetryOn.grpcCancelled,
  'deadline-exceeded': RetryOn.grpcDeadlineExceeded,
  'resource-exhausted': RetryOn.grpcResourceExhausted,
  unavailable: RetryOn.grpcUnavailable,
  internal: RetryOn.grpcInternal,
};

/** `5xx,reset` -> bits. `grpc` also accepts the gRPC tokens (route retry_on holds both kinds). */
export function parseRetryOn(value: string | undefined, kinds: 'http' | 'grpc' | 'both'): number {
  if (!value) return 0;
  let bits = 0;
  for (const raw of value.split(',')) {
    const t = raw.trim();
    if (kinds !== 'grpc') bits |= HTTP_TOKENS[t] ?? 0;
    if (kinds !== 'http') bits |= GRPC_TOKENS[t] ?? 0;
  }
  return bits;
}

/** Whether every comma-separated token of a retry_on header value is one Envoy knows (strict_check_headers). */
export function retryOnTokensValid(value: string, kind: 'http' | 'grpc'): boolean {
  const tokens = kind === 'http' ? HTTP_TOKENS : GRPC_TOKENS;
  return value.split(',').every((t) => Object.hasOwn(tokens, t.trim()));
}

export interface ResetHeader {
  readonly name: string;
  readonly format: 'SECONDS' | 'UNIX_TIMESTAMP';
}

export interface RetryPolicy {
  readonly retryOn: number;
  /** num_retries (default 1). */
  readonly numRetries: number;
  /** ms; 0 = none. */
  readonly perTryTimeoutMs: number;
  readonly perTryIdleTimeoutMs: number;
  readonly retriableStatusCodes: readonly number[];
  readonly retriableHeaders: readonly HeaderPredicate[];
  /** Empty = every request may be retried. */
  readonly retriableRequestHeaders: readonly HeaderPredicate[];
  /** envoy.retry_host_predicates.previous_hosts configured. */
  readonly previousHosts: boolean;
  /** host_selection_retry_max_attempts (default 1). */
  readonly hostSelectionMaxAttempts: number;
  /** retry_back_off: base 25 ms, max 10 × base. */
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /** rate_limited_retry_back_off; undefined when not configured. */
  readonly rateLimited: { readonly resetHeaders: readonly ResetHeader[]; readonly maxIntervalMs: number } | undefined;
}

export const DEFAULT_BASE_INTERVAL_MS = 25;
const DEFAULT_RATE_LIMITED_MAX_MS = 300_000; // 300 s
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/** The policy when no retry_policy is configured but x-envoy-retry-on asks for retries. */
export const EMPTY_RETRY_POLICY: RetryPolicy = deepFreeze({
  retryOn: 0,
  numRetries: 1,
  perTryTimeoutMs: 0,
  perTryIdleTimeoutMs: 0,
  retriableStatusCodes: [],
  retriableHeaders: [],
  retriableRequestHeaders: [],
  previousHosts: false,
  hostSelectionMaxAttempts: 1,
  baseIntervalMs: DEFAULT_BASE_INTERVAL_MS,
  maxIntervalMs: DEFAULT_BASE_INTERVAL_MS * 10,
  rateLimited: undefined,
});

function compileMatchers(list: readonly RetryPolicy__Output['retriable_headers'][number][] | undefined, path: string, errors: ConfigError[]): HeaderPredicate[] {
  const out: HeaderPredicate[] = [];
  (list ?? []).forEach((m, i) => {
    const r = compileHeaderMatcher(m, joinPath(path, `[${i}]`));
    if (r.ok) out.push(r.value);
    else errors.push(...r.errors);
  });
  return out;
}

export function parseRetryPolicy(raw: RetryPolicy__Output, path: string): Result<RetryPolicy> {
  const errors: ConfigError[] = [];
  if (raw.retry_priority) errors.push({ path: joinPath(path, 'retry_priority'), reason: 'retry priorities are not supported by legate' });
  if (raw.retry_options_predicates?.length) errors.push({ path: joinPath(path, 'retry_options_predicates'), reason: 'retry options predicates are not supported by legate' });
  let previousHosts = false;
  (raw.retry_host_predicate ?? []).forEach((p, i) => {
    const typeUrl = p.typed_config?.type_url;
    if (p.name === PREVIOUS_HOSTS || typeUrl === PREVIOUS_HOSTS_TYPE) previousHosts = true;
    else errors.push({ path: joinPath(path, `retry_host_predicate[${i}]`), reason: `unknown retry host predicate "${p.name || typeUrl}"` });
  });
  const baseIntervalMs = durationMs(raw.retry_back_off?.base_interval, DEFAULT_BASE_INTERVAL_MS);
  const maxIntervalMs = durationMs(raw.retry_back_off?.max_interval, baseIntervalMs * 10);
  if (raw.retry_back_off && baseIntervalMs <= 0) errors.push({ path: joinPath(path, 'retry_back_off.base_interval'), reason: 'must be greater than 0' });
  if (maxIntervalMs < baseIntervalMs) errors.push({ path: joinPath(path, 'retry_back_off.max_interval'), reason: 'must be greater than or equal to base_interval' });
  const rl = raw.rate_limited_retry_back_off;
  if (rl && rl.reset_headers.length === 0) errors.push({ path: joinPath(path, 'rate_limited_retry_back_off.reset_headers'), reason: 'at least one reset header is required' });
  const retriableHeaders = compileMatchers(raw.retriable_headers, joinPath(path, 'retriable_headers'), errors);
  const retriableRequestHeaders = compileMatchers(raw.retriable_request_headers, joinPath(path, 'retriable_request_headers'), errors);
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    deepFreeze({
      retryOn: parseRetryOn(raw.retry_on, 'both'),
      numRetries: wrapped(raw.num_retries, 1),
      perTryTimeoutMs: durationMs(raw.per_try_timeout, 0),
      perTryIdleTimeoutMs: durationMs(raw.per_try_idle_timeout, 0),
      retriableStatusCodes: [...(raw.retriable_status_codes ?? [])],
      retriableHeaders,
      retriableRequestHeaders,
      previousHosts,
      hostSelectionMaxAttempts: Math.max(1, int64(raw.host_selection_retry_max_attempts, 1) || 1),
      baseIntervalMs,
      maxIntervalMs,
      rateLimited: rl
        ? { resetHeaders: rl.reset_headers.map((h) => ({ name: h.name.toLowerCase(), format: h.format === 'UNIX_TIMESTAMP' ? ('UNIX_TIMESTAMP' as const) : ('SECONDS' as const) })), maxIntervalMs: durationMs(rl.max_interval, DEFAULT_RATE_LIMITED_MAX_MS) }
        : undefined,
    }),
  );
}

export interface HedgePolicy {
  readonly hedgeOnPerTryTimeout: boolean;
}

export function parseHedgePolicy(raw: HedgePolicy__Output, path: string): Result<HedgePolicy> {
  const initial = wrapped(raw.initial_requests, 1);
  if (initial > 1) return fail(joinPath(path, 'initial_requests'), 'initial_requests > 1 is not supported by legate');
  return ok(deepFreeze({ hedgeOnPerTryTimeout: raw.hedge_on_per_try_timeout ?? false }));
}

/** Load-time check of a route's or virtual host's retry_policy / hedge_policy: their errors, with field paths under `path`. */
export function retryHedgeErrors(retry: RetryPolicy__Output | null | undefined, hedge: HedgePolicy__Output | null | undefined, path: string): ConfigError[] {
  const errors: ConfigError[] = [];
  if (retry) {
    const r = parseRetryPolicy(retry, joinPath(path, 'retry_policy'));
    if (!r.ok) errors.push(...r.errors);
  }
  if (hedge) {
    const h = parseHedgePolicy(hedge, joinPath(path, 'hedge_policy'));
    if (!h.ok) errors.push(...h.errors);
  }
  return errors;
}
