// Parses envoy.extensions.filters.http.ratelimit.v3.RateLimit (the global rate limit filter: a
// domain, a stage, the rate limit service over an envoy_grpc cluster) and RateLimitPerRoute.
// What legate does not implement is a config error naming the field.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import { httpStatusCode } from '../../../config/http-status.ts';
import type { ParseContext } from '../../registry.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';
import { checkTransportApi, parseGrpcService, type GrpcService__Output } from '../../common/grpc-service-config.ts';
import type { GrpcServiceTarget } from '../../common/grpc-unary.ts';
import type { VhRateLimits } from '../../common/rate-limit-descriptors.ts';

export const RATELIMIT_NAME = 'envoy.filters.http.ratelimit';
export const RATELIMIT_TYPE = 'envoy.extensions.filters.http.ratelimit.v3.RateLimit';

// The decoded messages (proto-loader object form; src/generated has no types for these protos).
interface RateLimit__Output {
  readonly domain: string;
  readonly stage: number;
  readonly request_type: string;
  readonly timeout: Duration__Output | null;
  readonly failure_mode_deny: boolean;
  readonly rate_limited_as_resource_exhausted: boolean;
  readonly rate_limit_service: { readonly grpc_service: GrpcService__Output | null; readonly transport_api_version: string | number } | null;
  readonly enable_x_ratelimit_headers: string | number;
  readonly disable_x_envoy_ratelimited_header: boolean;
  readonly rate_limited_status: { readonly code: string | number } | null;
  readonly response_headers_to_add: ReadonlyArray<{ readonly header: { readonly key: string; readonly value: string } | null }>;
  readonly status_on_error: { readonly code: string | number } | null;
  readonly stat_prefix: string;
}
interface RateLimitPerRoute__Output {
  readonly vh_rate_limits: string | number;
  readonly override_option: string | number;
  readonly rate_limits: readonly unknown[];
  readonly domain: string;
}

export interface RateLimitConfig {
  readonly domain: string;
  readonly stage: number;
  /** request_type: which requests are checked, by x-envoy-internal. */
  readonly requestType: 'internal' | 'external' | 'both';
  readonly service: GrpcServiceTarget;
  readonly failureModeDeny: boolean;
  /** gRPC requests that are limited get RESOURCE_EXHAUSTED instead of UNAVAILABLE. */
  readonly asResourceExhausted: boolean;
  readonly xRateLimitHeaders: boolean;
  readonly xEnvoyRateLimitedHeader: boolean;
  readonly limitedStatus: number;
  readonly errorStatus: number;
  /** Added to rate limited responses. */
  readonly responseHeadersToAdd: ReadonlyArray<readonly [string, string]>;
  /** `ratelimit.` or `ratelimit.<stat_prefix>.`, under the route's cluster. */
  readonly statInfix: string;
}

export interface RateLimitPerRouteConfig {
  readonly vhRateLimits: VhRateLimits;
  readonly domain: string | undefined;
}

/** Envoy's default: the service has 20 ms to answer. */
const DEFAULT_TIMEOUT_MS = 20;

function httpStatus(s: { readonly code: string | number } | null, fallback: number): number {
  return httpStatusCode(s?.code) ?? fallback;
}

export function parseRateLimit(message: unknown, ctx: ParseContext): Result<RateLimitConfig> {
  const m = message as RateLimit__Output;
  const errors: ConfigError[] = [];
  const rls = m.rate_limit_service;
  const spath = joinPath(ctx.path, 'rate_limit_service');
  let service: GrpcServiceTarget = { cluster: '', authority: '', timeoutMs: DEFAULT_TIMEOUT_MS, initialMetadata: [] };
  if (!rls?.grpc_service) errors.push({ path: joinPath(spath, 'grpc_service'), reason: 'value is required' });
  else service = { ...parseGrpcService(rls.grpc_service, joinPath(spath, 'grpc_service'), ctx, errors), timeoutMs: durationMs(m.timeout, DEFAULT_TIMEOUT_MS) };
  if (rls) checkTransportApi(rls.transport_api_version, joinPath(spath, 'transport_api_version'), errors);
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      domain: m.domain,
      stage: m.stage,
      requestType: m.request_type === 'internal' || m.request_type === 'external' ? m.request_type : 'both',
      service,
      failureModeDeny: m.failure_mode_deny,
      asResourceExhausted: m.rate_limited_as_resource_exhausted,
      xRateLimitHeaders: String(m.enable_x_ratelimit_headers) === 'DRAFT_VERSION_03' || String(m.enable_x_ratelimit_headers) === '1',
      xEnvoyRateLimitedHeader: !m.disable_x_envoy_ratelimited_header,
      limitedStatus: httpStatus(m.rate_limited_status, 429),
      errorStatus: httpStatus(m.status_on_error, 500),
      responseHeadersToAdd: m.response_headers_to_add.flatMap((h) => (h.header ? [[h.header.key.toLowerCase(), h.header.value] as const] : [])),
      statInfix: m.stat_prefix ? `ratelimit.${m.stat_prefix}.` : 'ratelimit.',
    }),
  );
}

const VH: Record<string, VhRateLimits> = { OVERRIDE: 'OVERRIDE', '0': 'OVERRIDE', INCLUDE: 'INCLUDE', '1': 'INCLUDE', IGNORE: 'IGNORE', '2': 'IGNORE' };
const OVERRIDE_OPTION: Record<string, VhRateLimits | undefined> = { OVERRIDE_POLICY: 'OVERRIDE', '1': 'OVERRIDE', INCLUDE_POLICY: 'INCLUDE', '2': 'INCLUDE', IGNORE_POLICY: 'IGNORE', '3': 'IGNORE' };

export function parseRateLimitPerRoute(message: object, path: string): Result<RateLimitPerRouteConfig> {
  const m = message as RateLimitPerRoute__Output;
  if (m.rate_limits.length > 0) return { ok: false, errors: [{ path: joinPath(path, 'rate_limits'), reason: 'per-route rate_limits are not supported; put them on the route' }] };
  // override_option (when not DEFAULT) wins over the older vh_rate_limits, as in Envoy.
  const vhRateLimits = OVERRIDE_OPTION[String(m.override_option)] ?? VH[String(m.vh_rate_limits)] ?? 'OVERRIDE';
  return ok(Object.freeze({ vhRateLimits, domain: m.domain || undefined }));
}
