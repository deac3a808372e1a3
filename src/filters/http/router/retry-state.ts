// One request's retry decisions (Envoy's RetryStateImpl): the route policy merged with the
// x-envoy-retry-on / x-envoy-retry-grpc-on / x-envoy-max-retries / x-envoy-retriable-* request headers,
// what to do with a response or a reset, the retries circuit breaker, the back-off (fully jittered
// exponential, or the rate-limited one from Retry-After-style headers) and the retry counters.
// Never throws: malformed headers are ignored.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { HeaderPredicate } from '../../../proxy/http/matchers.ts';
import type { ResourceLimit } from '../../../proxy/upstream/types.ts';
import { parseRetryOn, RetryOn, type RetryPolicy } from './retry-policy.ts';
import type { ClusterRouterStats, VirtualClusterStats } from './stats.ts';

/** What happened to an attempt that got no response headers. */
export type ResetKind = 'connect_failure' | 'reset' | 'refused_stream' | 'timeout' | 'overflow';

/** Envoy's RetryStatus: retry (after `delayMs`), no retry, retries exhausted, or the breaker said no. */
export type RetryStatus = { readonly kind: 'yes'; readonly delayMs: number } | { readonly kind: 'no' } | { readonly kind: 'limit' } | { readonly kind: 'overflow' };

const NO: RetryStatus = { kind: 'no' };
const LIMIT: RetryStatus = { kind: 'limit' };
const OVERFLOW: RetryStatus = { kind: 'overflow' };

const GRPC_BITS = RetryOn.grpcCancelled | RetryOn.grpcDeadlineExceeded | RetryOn.grpcInternal | RetryOn.grpcResourceExhausted | RetryOn.grpcUnavailable;
/** gRPC status codes by their retry_on bit. */
const GRPC_CODES: readonly (readonly [number, number])[] = [
  [1, RetryOn.grpcCancelled],
  [4, RetryOn.grpcDeadlineExceeded],
  [8, RetryOn.grpcResourceExhausted],
  [13, RetryOn.grpcInternal],
  [14, RetryOn.grpcUnavailable],
];

/** Envoy's JitteredExponentialBackOffStrategy: random in [0, (2^n - 1) × base), capped at max. */
export class JitteredBackOff {
  readonly #base: number;
  readonly #max: number;
  readonly #random: () => number;
  #n = 1;

  constructor(baseMs: number, maxMs: number, random: () => number = Math.random) {
    this.#base = baseMs;
    this.#max = maxMs;
    this.#random = random;
  }

  nextMs(): number {
    const ceiling = (2 ** this.#n - 1) * this.#base;
    if (ceiling <= this.#max) this.#n++;
    return Math.min(Math.floor(this.#random() * ceiling), this.#max);
  }
}

export interface RetryStateDeps {
  readonly stats: ClusterRouterStats;
  /** The request's virtual cluster, counted alongside (vhost.<vh>.vcluster.<vc>.upstream_rq_retry...). */
  readonly vstats?: VirtualClusterStats;
  /** The cluster's retries breaker (max_retries / retry_budget) for the route's priority. */
  readonly retries: ResourceLimit;
  readonly random?: () => number;
  readonly now?: () => number;
}

export class RetryState {
  readonly #policy: RetryPolicy;
  readonly #retryOn: number;
  readonly #statusCodes: readonly number[];
  readonly #headerMatchers: readonly HeaderPredicate[];
  readonly #deps: RetryStateDeps;
  readonly #backOff: JitteredBackOff;
  #remaining: number;
  /** A retry was scheduled and its breaker slot is held until the next decision (Envoy's backoff_callback_). */
  #holding = false;
  /** The back-off interval the last rate-limited response asked for, ms. */
  #rateLimitedMs: number | undefined;

  constructor(policy: RetryPolicy, retryOn: number, remaining: number, codes: readonly number[], matchers: readonly HeaderPredicate[], deps: RetryStateDeps) {
    this.#policy = policy;
    this.#retryOn = retryOn;
    this.#remaining = remaining;
    this.#statusCodes = codes;
    this.#headerMatchers = matchers;
    this.#deps = deps;
    this.#backOff = new JitteredBackOff(policy.baseIntervalMs, policy.maxIntervalMs, deps.random);
  }

  /**
   * undefined when nothing asks for retries (no retry_on from the route nor the headers) or
   * retriable_request_headers don't match. `readHeaders` false: the request holds no x-envoy-*
   * header (the caller knows), so only the policy counts.
   */
  static create(policy: RetryPolicy, request: HeaderMap, deps: RetryStateDeps, readHeaders = true): RetryState | undefined {
    if (!readHeaders) {
      if (policy.retryOn === 0) return undefined;
      if (policy.retriableRequestHeaders.length > 0 && !policy.retriableRequestHeaders.some((m) => m(request))) return undefined;
      return new RetryState(policy, policy.retryOn, policy.numRetries, policy.retriableStatusCodes, policy.retriableHeaders, deps);
    }
    const retryOn = policy.retryOn | parseRetryOn(request.get('x-envoy-retry-on'), 'http') | parseRetryOn(request.get('x-envoy-retry-grpc-on'), 'grpc');
    if (retryOn === 0) return undefined;
    if (policy.retriableRequestHeaders.length > 0 && !policy.retriableRequestHeaders.some((m) => m(request))) return undefined;
    let remaining = policy.numRetries;
    const max = request.get('x-envoy-max-retries');
    if (max !== undefined && /^\d+$/.test(max.trim())) remaining = Number(max.trim());
    let codes = policy.retriableStatusCodes;
    const codeHeader = request.get('x-envoy-retriable-status-codes');
    if (codeHeader) {
      const extra = codeHeader.split(',').map((c) => c.trim()).filter((c) => /^\d{3}$/.test(c)).map(Number);
      if (extra.length > 0) codes = [...codes, ...extra];
    }
    let matchers = policy.retriableHeaders;
    const nameHeader = request.get('x-envoy-retriable-header-names');
    if (nameHeader) {
      const names = nameHeader.split(',').map((n) => n.trim().toLowerCase()).filter((n) => n.length > 0);
      if (names.length > 0) matchers = [...matchers, ...names.map((n): HeaderPredicate => (h) => h.has(n))];
    }
    return new RetryState(policy, retryOn, remaining, codes, matchers, deps);
  }

  get policy(): RetryPolicy {
    return this.#policy;
  }

  /** Decision on response headers (never on trailers: Envoy retries gRPC only on a trailers-only response). */
  shouldRetryHeaders(headers: HeaderMap): RetryStatus {
    const would = this.#wouldRetryFromHeaders(headers);
    if (would) this.#rateLimitedMs = this.#rateLimitedInterval(headers);
    return this.#shouldRetry(would);
  }

  /** Would these headers be retried (for an attempt that may not retry again, e.g. one already hedged)? */
  wouldRetryHeaders(headers: HeaderMap): boolean {
    return this.#wouldRetryFromHeaders(headers);
  }

  /** Decision after an attempt ended without response headers. */
  shouldRetryReset(kind: ResetKind): RetryStatus {
    return this.#shouldRetry(this.#wouldRetryFromReset(kind));
  }

  /** Hedging on per-try timeout: another attempt whenever retries are left, whatever retry_on says. */
  shouldHedgeRetryPerTryTimeout(): RetryStatus {
    return this.#shouldRetry(true);
  }

  /** Releases the breaker slot held by a scheduled retry (the stream ended). */
  destroy(): void {
    this.#release();
  }

  #wouldRetryFromHeaders(headers: HeaderMap): boolean {
    const on = this.#retryOn;
    // A response rate limited by an upstream Envoy is retried only under envoy-ratelimited.
    if (headers.has('x-envoy-ratelimited')) return (on & RetryOn.envoyRateLimited) !== 0;
    const status = Number(headers.get(':status'));
    if (on & RetryOn.x5xx && status >= 500 && status < 600) return true;
    if (on & RetryOn.gatewayError && status >= 502 && status <= 504) return true;
    if (on & RetryOn.retriable4xx && status === 409) return true;
    if (on & RetryOn.retriableStatusCodes && this.#statusCodes.includes(status)) return true;
    if (on & RetryOn.retriableHeaders && this.#headerMatchers.some((m) => m(headers))) return true;
    if (on & GRPC_BITS) {
      const g = headers.get('grpc-status');
      if (g !== undefined && /^\d+$/.test(g)) {
        const code = Number(g);
        for (const [c, bit] of GRPC_CODES) if (c === code && on & bit) return true;
      }
    }
    return false;
  }

  #wouldRetryFromReset(kind: ResetKind): boolean {
    const on = this.#retryOn;
    if (kind === 'overflow') return false;
    if (on & (RetryOn.reset | RetryOn.x5xx | RetryOn.gatewayError)) return true;
    if (on & RetryOn.refusedStream && kind === 'refused_stream') return true;
    if (on & (RetryOn.connectFailure | RetryOn.resetBeforeRequest) && kind === 'connect_failure') return true;
    return false;
  }

  /** rate_limited_retry_back_off: the first configured reset header with a usable interval, jittered up to +50%. */
  #rateLimitedInterval(headers: HeaderMap): number | undefined {
    const rl = this.#policy.rateLimited;
    if (!rl) return undefined;
    for (const h of rl.resetHeaders) {
      const v = headers.get(h.name)?.trim();
      if (v === undefined || !/^\d+$/.test(v)) continue;
      const ms = h.format === 'SECONDS' ? Number(v) * 1000 : Number(v) * 1000 - (this.#deps.now ?? Date.now)();
      if (ms > 0 && ms <= rl.maxIntervalMs) return ms;
    }
    return undefined;
  }

  #shouldRetry(would: boolean): RetryStatus {
    const { stats, vstats } = this.#deps;
    // A retry was made earlier and this attempt needs none: it succeeded.
    if (this.#holding && !would) {
      stats.rqRetrySuccess.inc();
      vstats?.rqRetrySuccess.inc();
    }
    this.#release();
    if (!would) return NO;
    if (this.#remaining <= 0) {
      stats.rqRetryLimitExceeded.inc();
      vstats?.rqRetryLimitExceeded.inc();
      return LIMIT;
    }
    this.#remaining--;
    if (!this.#deps.retries.tryAcquire()) {
      stats.rqRetryOverflow.inc();
      vstats?.rqRetryOverflow.inc();
      return OVERFLOW;
    }
    this.#holding = true;
    stats.rqRetry.inc();
    vstats?.rqRetry.inc();
    let delayMs: number;
    const rl = this.#rateLimitedMs;
    this.#rateLimitedMs = undefined;
    if (rl !== undefined) {
      delayMs = rl + Math.floor((this.#deps.random ?? Math.random)() * (rl / 2));
      stats.rqRetryBackoffRatelimited.inc();
    } else {
      delayMs = this.#backOff.nextMs();
      stats.rqRetryBackoffExponential.inc();
    }
    return { kind: 'yes', delayMs };
  }

  #release(): void {
    if (!this.#holding) return;
    this.#holding = false;
    this.#deps.retries.release();
  }
}
