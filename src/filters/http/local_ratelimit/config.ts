// Parses envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit into a frozen config: the
// default token bucket, descriptor buckets, runtime fractions, status and header mutations. The
// same parser reads per-route overrides (`typed_per_filter_config`), which must carry a bucket.
// Problems are Result errors with field paths; nothing here throws.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { wrapped } from '../../../config/values.ts';
import { httpStatusCode } from '../../../config/http-status.ts';
import { compileHeaderParser, type HeaderParser } from '../../../proxy/http/header-mutation.ts';
import { parseTokenBucket, type TokenBucketSpec } from '../../../proxy/token-bucket.ts';
import type { LocalRateLimit__Output } from '../../../generated/envoy/extensions/filters/http/local_ratelimit/v3/LocalRateLimit.ts';
import { parseRuntimeFraction, type RuntimeFraction } from '../../../config/runtime-fraction.ts';
import type { VhRateLimits } from '../../common/rate-limit-descriptors.ts';

export type { RuntimeFraction } from '../../../config/runtime-fraction.ts';

export const LOCAL_RATELIMIT_NAME = 'envoy.filters.http.local_ratelimit';
export const LOCAL_RATELIMIT_TYPE = 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

const DEFAULT_STATUS = 429; // TooManyRequests


export interface DescriptorConfig {
  /** `key=value` entries joined, the identity a request descriptor must match exactly. */
  readonly id: string;
  readonly entries: readonly (readonly [string, string])[];
  readonly bucket: TokenBucketSpec;
}

export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** Names this config's process-wide buckets (the config's field path, or the route for overrides). */
  readonly bucketKey: string;
  /** The default bucket; undefined when unset (allowed at filter level: routes carry their own). */
  readonly tokenBucket: TokenBucketSpec | undefined;
  /** filter_enabled / filter_enforced; undefined -> 0% (Envoy's default when the field is absent). */
  readonly filterEnabled: RuntimeFraction | undefined;
  readonly filterEnforced: RuntimeFraction | undefined;
  readonly status: number;
  readonly responseHeaders: HeaderParser;
  readonly requestHeadersWhenNotEnforced: HeaderParser;
  readonly xRateLimitHeaders: boolean;
  /** Sorted by fill rate, most restrictive first (Envoy consumes them in that order). */
  readonly descriptors: readonly DescriptorConfig[];
  /** Route `rate_limits` entries whose stage equals this one produce the request's descriptors. */
  readonly stage: number;
  readonly perConnection: boolean;
  readonly alwaysConsumeDefaultBucket: boolean;
  /** gRPC requests get RESOURCE_EXHAUSTED instead of UNAVAILABLE. */
  readonly grpcResourceExhausted: boolean;
  /** Whether the virtual host's rate_limits produce descriptors too (descriptors.ts). */
  readonly vhRateLimits: VhRateLimits;
}

export type { VhRateLimits } from '../../common/rate-limit-descriptors.ts';

export function descriptorId(entries: readonly (readonly [string, string])[]): string {
  return entries.map(([k, v]) => `${k}=${v}`).join('\u0000');
}

function statusCode(code: string | number, path: string, errors: ConfigError[]): number {
  const n = httpStatusCode(code);
  if (n === undefined) {
    errors.push({ path, reason: `unknown HTTP status code ${String(code)}` });
    return DEFAULT_STATUS;
  }
  // Envoy's toErrorCode: anything below 400 falls back to 429.
  return n >= 400 ? n : DEFAULT_STATUS;
}

function renamePaths(errors: readonly ConfigError[], from: string, to: string): ConfigError[] {
  return errors.map((e) => ({ path: e.path.replace(from, to), reason: e.reason }));
}

/** Parses the filter config (`override` false) or a per-route override (`override` true: token_bucket required). */
export function parseLocalRateLimit(msg: LocalRateLimit__Output, path: string, bucketKey: string, override = false): Result<LocalRateLimitConfig> {
  const errors: ConfigError[] = [];
  const at = (f: string): string => joinPath(path, f);
  if (!msg.stat_prefix) errors.push({ path: at('stat_prefix'), reason: 'value length must be at least 1 characters' });
  let tokenBucket: TokenBucketSpec | undefined;
  if (msg.token_bucket) {
    const tb = parseTokenBucket(msg.token_bucket, at('token_bucket'));
    if (tb.ok) tokenBucket = tb.value;
    else errors.push(...tb.errors);
  } else if (override) {
    errors.push({ path: at('token_bucket'), reason: 'must set token bucket for per route config' });
  }
  const filterEnabled = parseRuntimeFraction(msg.filter_enabled, at('filter_enabled'), errors);
  const filterEnforced = parseRuntimeFraction(msg.filter_enforced, at('filter_enforced'), errors);
  const status = msg.status ? statusCode(msg.status.code, at('status.code'), errors) : DEFAULT_STATUS;
  const resp = compileHeaderParser(msg.response_headers_to_add, [], path, 'response');
  if (!resp.ok) errors.push(...resp.errors);
  if (msg.response_headers_to_add.length > 10) errors.push({ path: at('response_headers_to_add'), reason: 'value must contain no more than 10 item(s)' });
  const req = compileHeaderParser(msg.request_headers_to_add_when_not_enforced, [], path, 'request');
  if (!req.ok) errors.push(...renamePaths(req.errors, 'request_headers_to_add[', 'request_headers_to_add_when_not_enforced['));
  if (msg.request_headers_to_add_when_not_enforced.length > 10) {
    errors.push({ path: at('request_headers_to_add_when_not_enforced'), reason: 'value must contain no more than 10 item(s)' });
  }
  const descriptors: DescriptorConfig[] = [];
  const seen = new Set<string>();
  msg.descriptors.forEach((d, i) => {
    const p = at(`descriptors[${i}]`);
    if (d.entries.length === 0) return void errors.push({ path: joinPath(p, 'entries'), reason: 'value must contain at least 1 item(s)' });
    const entries = d.entries.map((e, j) => {
      if (!e.key) errors.push({ path: joinPath(p, `entries[${j}].key`), reason: 'value length must be at least 1 characters' });
      if (!e.value) errors.push({ path: joinPath(p, `entries[${j}].value`), reason: 'value length must be at least 1 characters (wildcard descriptor values are not supported)' });
      return Object.freeze([e.key, e.value] as const);
    });
    const tb = parseTokenBucket(d.token_bucket, joinPath(p, 'token_bucket'));
    if (!tb.ok) return void errors.push(...tb.errors);
    const id = descriptorId(entries);
    if (seen.has(id)) return void errors.push({ path: p, reason: 'duplicate descriptor in the local rate descriptor' });
    seen.add(id);
    descriptors.push(Object.freeze({ id, entries: Object.freeze(entries), bucket: tb.value }));
  });
  // Lowest fill rate first: a request matching several descriptors spends the scarcest one first.
  descriptors.sort((a, b) => a.bucket.tokensPerFill / a.bucket.fillIntervalMs - b.bucket.tokensPerFill / b.bucket.fillIntervalMs);
  if (msg.stage > 10) errors.push({ path: at('stage'), reason: 'value must be less than or equal to 10' });
  if (msg.local_cluster_rate_limit) {
    errors.push({ path: at('local_cluster_rate_limit'), reason: 'local_cluster_rate_limit (sharing the limit across a local cluster) is not supported' });
  }
  if (errors.length > 0 || !resp.ok || !req.ok) return { ok: false, errors };
  return ok(
    Object.freeze({
      statPrefix: msg.stat_prefix,
      bucketKey,
      tokenBucket,
      filterEnabled,
      filterEnforced,
      status,
      responseHeaders: resp.value,
      requestHeadersWhenNotEnforced: req.value,
      xRateLimitHeaders: msg.enable_x_ratelimit_headers === 'DRAFT_VERSION_03',
      descriptors: Object.freeze(descriptors),
      stage: msg.stage,
      perConnection: msg.local_rate_limit_per_downstream_connection,
      alwaysConsumeDefaultBucket: wrapped(msg.always_consume_default_token_bucket, true),
      grpcResourceExhausted: msg.rate_limited_as_resource_exhausted,
      vhRateLimits: msg.vh_rate_limits === 'INCLUDE' || msg.vh_rate_limits === 'IGNORE' ? msg.vh_rate_limits : 'OVERRIDE',
    }),
  );
}

/** The registry's parse hook: the filter-level config, its buckets named by the config's field path. */
export function parseLocalRateLimitFilter(message: unknown, ctx: { readonly path: string }): Result<LocalRateLimitConfig> {
  if (!message || typeof message !== 'object') return fail(ctx.path, 'expected a LocalRateLimit message');
  return parseLocalRateLimit(message as LocalRateLimit__Output, ctx.path, `http_local_rate_limit.${ctx.path}`);
}
