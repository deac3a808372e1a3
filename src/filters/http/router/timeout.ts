// The route timeout for one request, as Envoy's FilterUtility::finalTimeout computes it: the route's
// timeout, overridden by grpc-timeout (when max_stream_duration.grpc_timeout_header_max is set) and
// by x-envoy-upstream-rq-timeout-ms, and the per-try timeout (retry policy, x-envoy-upstream-rq-per-try-timeout-ms);
// the consumed headers are removed. Never fails: bad values are ignored.

import { durationMs } from '../../../config/values.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction } from '../../../proxy/http/route-types.ts';
import type { RouteAction__Output } from '../../../generated/envoy/config/route/v3/RouteAction.ts';
import type { RouterConfig } from './config.ts';

export interface RequestTimeout {
  /** ms; 0 = no timeout. */
  readonly timeoutMs: number;
  /** x-envoy-upstream-rq-timeout-alt-response: answer 204 instead of 504 on expiry. */
  readonly altResponse: boolean;
  /** ms; 0 = none (also when not below the route timeout, as Envoy ignores it then). */
  readonly perTryTimeoutMs: number;
}

interface GrpcTimeoutLimits {
  readonly maxMs: number;
  readonly offsetMs: number;
}

/** Parsed once per route action (raw is frozen and shared). null = grpc-timeout is not honoured. */
const grpcLimitsCache = new WeakMap<object, GrpcTimeoutLimits | null>();

function grpcLimits(action: ClusterRouteAction): GrpcTimeoutLimits | null {
  const raw = action.raw as RouteAction__Output | undefined;
  if (!raw || typeof raw !== 'object') return null;
  let v = grpcLimitsCache.get(raw);
  if (v !== undefined) return v;
  const msd = raw.max_stream_duration;
  if (msd?.grpc_timeout_header_max) v = { maxMs: durationMs(msd.grpc_timeout_header_max, 0), offsetMs: durationMs(msd.grpc_timeout_header_offset, 0) };
  else if (raw.max_grpc_timeout) v = { maxMs: durationMs(raw.max_grpc_timeout, 0), offsetMs: durationMs(raw.grpc_timeout_offset, 0) };
  else v = null;
  grpcLimitsCache.set(raw, v);
  return v;
}

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout: 200m` → 200 (ms); undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v || v.length < 2 || v.length > 9) return undefined;
  const unit = GRPC_UNIT_MS[v[v.length - 1]!];
  const digits = v.slice(0, -1);
  if (unit === undefined || !/^\d+$/.test(digits)) return undefined;
  return Math.ceil(Number(digits) * unit);
}

/** Milliseconds → a grpc-timeout value (`1234m`). */
export function formatGrpcTimeout(ms: number): string {
  return ms < 1e8 ? `${ms}m` : `${Math.ceil(ms / 1000)}S`;
}

function headerMs(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** `policyPerTryMs`: the retry policy's per_try_timeout (0 = none). */
export function computeTimeout(headers: HeaderMap, action: ClusterRouteAction, config: RouterConfig, grpc: boolean, policyPerTryMs = 0): RequestTimeout {
  let timeoutMs = action.timeoutMs;
  let grpcHeaderUsed = false;
  if (grpc) {
    const limits = grpcLimits(action);
    if (limits) {
      const g = parseGrpcTimeout(headers.get('grpc-timeout'));
      // Envoy: no grpc-timeout header → infinite (0), capped by grpc_timeout_header_max when set.
      timeoutMs = g ?? 0;
      if (limits.maxMs > 0 && (timeoutMs === 0 || timeoutMs > limits.maxMs)) timeoutMs = limits.maxMs;
      if (limits.offsetMs > 0 && timeoutMs > limits.offsetMs) timeoutMs -= limits.offsetMs;
      grpcHeaderUsed = true;
    }
  }
  let altResponse = false;
  let perTryTimeoutMs = policyPerTryMs;
  // Most requests carry no x-envoy-* header (external requests have them removed): one pass says
  // so, and the lookups and removals below are skipped.
  if (headers.hasPrefix('x-envoy-')) {
    const fromHeader = headerMs(headers.get(config.respectExpectedRqTimeout ? 'x-envoy-expected-rq-timeout-ms' : 'x-envoy-upstream-rq-timeout-ms'));
    if (fromHeader !== undefined) timeoutMs = fromHeader;
    altResponse = headers.has('x-envoy-upstream-rq-timeout-alt-response');
    perTryTimeoutMs = headerMs(headers.get('x-envoy-upstream-rq-per-try-timeout-ms')) ?? policyPerTryMs;
    headers.remove('x-envoy-upstream-rq-timeout-ms');
    headers.remove('x-envoy-upstream-rq-timeout-alt-response');
    headers.remove('x-envoy-upstream-rq-per-try-timeout-ms');
  }
  if (timeoutMs > 0 && perTryTimeoutMs >= timeoutMs) perTryTimeoutMs = 0;
  if (timeoutMs > 0) {
    // Envoy tells the upstream the time this try has: the per-try timeout when set.
    if (!config.suppressEnvoyHeaders) headers.set('x-envoy-expected-rq-timeout-ms', String(perTryTimeoutMs > 0 ? perTryTimeoutMs : timeoutMs));
    if (grpcHeaderUsed) headers.set('grpc-timeout', formatGrpcTimeout(timeoutMs));
  }
  return { timeoutMs, altResponse, perTryTimeoutMs };
}
