// Parses envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit: stat_prefix, the token
// bucket (one token per connection), runtime_enabled and share_key. Errors carry field paths.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { parseTokenBucket, type TokenBucketSpec } from '../../../proxy/token-bucket.ts';
import type { LocalRateLimit__Output } from '../../../generated/envoy/extensions/filters/network/local_ratelimit/v3/LocalRateLimit.ts';

export const NETWORK_LOCAL_RATELIMIT_NAME = 'envoy.filters.network.local_ratelimit';
export const NETWORK_LOCAL_RATELIMIT_TYPE = 'envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit';

export interface NetworkLocalRateLimitConfig {
  readonly statPrefix: string;
  readonly tokenBucket: TokenBucketSpec;
  /** runtime_enabled: read per connection; undefined -> always enabled. */
  readonly runtimeEnabled: { readonly runtimeKey: string; readonly dflt: boolean } | undefined;
  /** Names the process-wide bucket: the share_key when set (filters sharing it share tokens), else the config's path. */
  readonly bucketKey: string;
}

export function parseNetworkLocalRateLimit(message: unknown, ctx: { readonly path: string }): Result<NetworkLocalRateLimitConfig> {
  if (!message || typeof message !== 'object') return fail(ctx.path, 'expected a LocalRateLimit message');
  const msg = message as LocalRateLimit__Output;
  const errors: ConfigError[] = [];
  const at = (f: string): string => joinPath(ctx.path, f);
  if (!msg.stat_prefix) errors.push({ path: at('stat_prefix'), reason: 'value length must be at least 1 characters' });
  const tb = parseTokenBucket(msg.token_bucket, at('token_bucket'));
  if (!tb.ok) errors.push(...tb.errors);
  let runtimeEnabled: NetworkLocalRateLimitConfig['runtimeEnabled'];
  if (msg.runtime_enabled) {
    const r = msg.runtime_enabled;
    if (!r.default_value) errors.push({ path: at('runtime_enabled.default_value'), reason: 'value is required' });
    if (!r.runtime_key) errors.push({ path: at('runtime_enabled.runtime_key'), reason: 'value length must be at least 1 characters' });
    runtimeEnabled = Object.freeze({ runtimeKey: r.runtime_key, dflt: r.default_value?.value ?? true });
  }
  if (errors.length > 0 || !tb.ok) return { ok: false, errors };
  return ok(
    Object.freeze({
      statPrefix: msg.stat_prefix,
      tokenBucket: tb.value,
      runtimeEnabled,
      bucketKey: msg.share_key ? `network_local_rate_limit.share.${msg.share_key}` : `network_local_rate_limit.${ctx.path}`,
    }),
  );
}
