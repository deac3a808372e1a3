// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, encoded and decoded with Envoy's own
// protos: the request's domain and descriptors in; the overall code, the descriptor statuses (for
// the x-ratelimit-* headers), headers to add both ways and a body out. OVER_LIMIT limits; any other
// code (UNKNOWN included) lets the request go on, as in Envoy.

import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import { lookupMessageType } from '../../../config/protos.ts';
import { logger } from '../../../proxy/log.ts';
import { unaryGrpc, type GrpcServiceTarget } from '../../common/grpc-unary.ts';
import type { Entry } from '../../common/rate-limit-descriptors.ts';

const log = logger('filter');

export interface DescriptorStatus {
  readonly limit: { readonly requestsPerUnit: number; readonly windowS: number; readonly name: string } | undefined;
  readonly remaining: number;
  readonly resetS: number | undefined;
}

export interface RlsAnswer {
  readonly overLimit: boolean;
  readonly statuses: readonly DescriptorStatus[];
  readonly responseHeaders: ReadonlyArray<readonly [string, string]>;
  readonly requestHeaders: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
}

/** RateLimitResponse.RateLimit.Unit -> seconds. */
const UNIT_S: Record<number, number> = { 1: 1, 2: 60, 3: 3600, 4: 86_400, 5: 30 * 86_400, 6: 365 * 86_400 };

interface RawResponse {
  overall_code?: number;
  statuses?: Array<{ current_limit?: { requests_per_unit?: number; unit?: number; name?: string }; limit_remaining?: number; duration_until_reset?: { seconds?: number } }>;
  response_headers_to_add?: Array<{ key: string; value: string }>;
  request_headers_to_add?: Array<{ key: string; value: string }>;
  raw_body?: Uint8Array;
}

function decode(buf: Buffer): RlsAnswer {
  const type = lookupMessageType('envoy.service.ratelimit.v3.RateLimitResponse')!;
  const r = type.toObject(type.decode(buf), { enums: Number, longs: Number, defaults: false }) as RawResponse;
  const pairs = (l: RawResponse['response_headers_to_add']): Array<readonly [string, string]> => (l ?? []).map((h) => [h.key.toLowerCase(), h.value] as const);
  return {
    overLimit: r.overall_code === 2,
    statuses: (r.statuses ?? []).map((s) => ({
      limit: s.current_limit ? { requestsPerUnit: s.current_limit.requests_per_unit ?? 0, windowS: UNIT_S[s.current_limit.unit ?? 0] ?? 0, name: s.current_limit.name ?? '' } : undefined,
      remaining: s.limit_remaining ?? 0,
      resetS: s.duration_until_reset ? (s.duration_until_reset.seconds ?? 0) : undefined,
    })),
    responseHeaders: pairs(r.response_headers_to_add),
    requestHeaders: pairs(r.request_headers_to_add),
    body: r.raw_body ? Buffer.from(r.raw_body).toString('utf8') : '',
  };
}

/** Asks the service; `done` gets its answer, or undefined when the call failed. */
export function shouldRateLimit(cm: ClusterManager, t: GrpcServiceTarget, domain: string, descriptors: readonly (readonly Entry[])[], done: (a: RlsAnswer | undefined) => void): { cancel(): void } {
  const type = lookupMessageType('envoy.service.ratelimit.v3.RateLimitRequest')!;
  const message = type.fromObject({ domain, descriptors: descriptors.map((d) => ({ entries: d.map(([key, value]) => ({ key, value })) })) });
  return unaryGrpc(cm, t, 'envoy.service.ratelimit.v3.RateLimitService', 'ShouldRateLimit', Buffer.from(type.encode(message).finish()), (reply) => {
    if (reply === undefined) return done(undefined);
    try {
      done(decode(reply));
    } catch (e) {
      log.debug(`ratelimit: undecodable RateLimitResponse: ${e instanceof Error ? e.message : String(e)}`);
      done(undefined);
    }
  });
}

/**
 * Envoy's XRateLimitHeaderUtils (draft 03): from the status with the fewest requests left,
 * x-ratelimit-limit (its quota, then every limit's quota;w=window[;name="..."]), -remaining, -reset.
 */
export function xRateLimitHeaders(statuses: readonly DescriptorStatus[]): Array<readonly [string, string]> {
  const limited = statuses.filter((s) => s.limit !== undefined);
  if (limited.length === 0) return [];
  const min = limited.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  const quotas = limited.map((s) => `${s.limit!.requestsPerUnit};w=${s.limit!.windowS}${s.limit!.name ? `;name="${s.limit!.name}"` : ''}`);
  const out: Array<readonly [string, string]> = [
    ['x-ratelimit-limit', [String(min.limit!.requestsPerUnit), ...quotas].join(', ')],
    ['x-ratelimit-remaining', String(min.remaining)],
  ];
  if (min.resetS !== undefined) out.push(['x-ratelimit-reset', String(min.resetS)]);
  return out;
}
