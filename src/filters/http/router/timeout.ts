// The route timeout for one request, as Envoy's FilterUtility::finalTimeout computes it: the route's
// timeout (none when the route has max_stream_duration: the connection manager bounds the stream
// then), or for gRPC with max_grpc_timeout the grpc-timeout header less grpc_timeout_offset, capped;
// overridden by x-envoy-upstream-rq-timeout-ms (or x-envoy-expected-rq-timeout-ms with
// respect_expected_rq_timeout); and the per-try timeout (retry policy, x-envoy-upstream-rq-per-try-timeout-ms).
// The consumed headers are removed and x-envoy-expected-rq-timeout-ms / grpc-timeout tell the
// upstream the time it has (setTimeoutHeaders, again on each retry). Never fails: bad values are ignored.

import { durationMs } from '../../../config/values.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction } from '../../../proxy/http/route-types.ts';
import { formatGrpcTimeout, parseGrpcTimeout } from '../../../proxy/http/grpc-timeout.ts';
import type { RouteAction__Output } from '../../../generated/envoy/config/route/v3/RouteAction.ts';
import type { RouterConfig } from './config.ts';

export interface RequestTimeout {
  /** ms; 0 = no timeout. */
  readonly timeoutMs: number;
  /** x-envoy-upstream-rq-timeout-alt-response: answer 204 instead of 504 on expiry. */
  readonly altResponse: boolean;
  /** ms; 0 = none (also when not below the route timeout, as Envoy ignores it then). */
  readonly perTryTimeoutMs: number;
  /** max_grpc_timeout applies: grpc-timeout is rewritten to the time each try has. */
  readonly rewriteGrpcTimeout: boolean;
}

interface GrpcTimeoutLimits {
  readonly maxMs: number;
  readonly offsetMs: number;
}

/** Parsed once per route action (raw is frozen and shared). null = max_grpc_timeout is unset. */
const grpcLimitsCache = new WeakMap<object, GrpcTimeoutLimits | null>();

function grpcLimits(action: ClusterRouteAction): GrpcTimeoutLimits | null {
  const raw = action.raw as RouteAction__Output | undefined;
  if (!raw || typeof raw !== 'object') return null;
  let v = grpcLimitsCache.get(raw);
  if (v !== undefined) return v;
  v = raw.max_grpc_timeout ? { maxMs: durationMs(raw.max_grpc_timeout, 0), offsetMs: durationMs(raw.grpc_timeout_offset, 0) } : null;
  grpcLimitsCache.set(raw, v);
  return v;
}

function headerMs(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * `policyPerTryMs`: the retry policy's per_try_timeout (0 = none); `hedgeOnPerTryTimeout`: the
 * upstream may use the whole route timeout, whatever the per-try timeout.
 */
export function computeTimeout(
  headers: HeaderMap,
  action: ClusterRouteAction,
  config: RouterConfig,
  grpc: boolean,
  policyPerTryMs = 0,
  hedgeOnPerTryTimeout = false,
  envoyHeaders = headers.hasPrefix('x-envoy-'),
): RequestTimeout {
  let timeoutMs = 0;
  let rewriteGrpcTimeout = false;
  if (action.streamDuration === undefined) {
    const limits = grpc ? grpcLimits(action) : null;
    if (limits) {
      // Envoy: no grpc-timeout header -> infinite (0); the offset first (unless it would reach 0),
      // then the cap (0 = none).
      let g = parseGrpcTimeout(headers.get('grpc-timeout')) ?? 0;
      if (limits.offsetMs > 0 && limits.offsetMs < g) g -= limits.offsetMs;
      if (limits.maxMs > 0 && (g === 0 || g > limits.maxMs)) g = limits.maxMs;
      timeoutMs = g;
      rewriteGrpcTimeout = true;
    } else timeoutMs = action.timeoutMs;
  }
  let altResponse = false;
  let perTryTimeoutMs = policyPerTryMs;
  // Most requests carry no x-envoy-* header (external requests have them removed): one pass says
  // so (`envoyHeaders`), and the lookups and removals below are skipped.
  if (envoyHeaders) {
    const expected = config.respectExpectedRqTimeout ? headers.get('x-envoy-expected-rq-timeout-ms') : undefined;
    if (expected !== undefined) {
      // Set by an egress Envoy, which consumed x-envoy-upstream-rq-timeout-ms already.
      timeoutMs = headerMs(expected) ?? timeoutMs;
    } else {
      const upstream = headers.get('x-envoy-upstream-rq-timeout-ms');
      if (upstream !== undefined) {
        timeoutMs = headerMs(upstream) ?? timeoutMs;
        headers.remove('x-envoy-upstream-rq-timeout-ms');
      }
    }
    const perTry = headers.get('x-envoy-upstream-rq-per-try-timeout-ms');
    if (perTry) {
      perTryTimeoutMs = headerMs(perTry) ?? perTryTimeoutMs;
      headers.remove('x-envoy-upstream-rq-per-try-timeout-ms');
    }
    if (headers.has('x-envoy-upstream-rq-timeout-alt-response')) {
      altResponse = true;
      headers.remove('x-envoy-upstream-rq-timeout-alt-response');
    }
  }
  if (timeoutMs > 0 && perTryTimeoutMs >= timeoutMs) perTryTimeoutMs = 0;
  const t = { timeoutMs, altResponse, perTryTimeoutMs, rewriteGrpcTimeout };
  setTimeoutHeaders(headers, t, 0, !config.suppressEnvoyHeaders, hedgeOnPerTryTimeout);
  return t;
}

/**
 * Envoy's FilterUtility::setTimeoutHeaders: x-envoy-expected-rq-timeout-ms (and grpc-timeout under
 * max_grpc_timeout) say how long this try has: the per-try timeout, or the route timeout when there
 * is none or when hedging on per-try timeout, less `elapsedMs` since the request was complete (at
 * least 1). Nothing is set when neither timeout is.
 */
export function setTimeoutHeaders(headers: HeaderMap, t: RequestTimeout, elapsedMs: number, insertExpected: boolean, hedgeOnPerTryTimeout: boolean): void {
  const global = t.timeoutMs;
  let expected = t.perTryTimeoutMs;
  if (hedgeOnPerTryTimeout || expected === 0) expected = global;
  if (expected <= 0) return;
  if (global > 0) expected = elapsedMs >= global ? 1 : Math.min(expected, global - elapsedMs);
  if (insertExpected) headers.set('x-envoy-expected-rq-timeout-ms', String(expected));
  if (t.rewriteGrpcTimeout) headers.set('grpc-timeout', formatGrpcTimeout(expected));
}
