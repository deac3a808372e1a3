// Parses envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit: stat_prefix,
// max_connections (process-wide), delay before a refused connection is closed, runtime_enabled.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs, int64 } from '../../../config/values.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';

export const CONNECTION_LIMIT_NAME = 'envoy.filters.network.connection_limit';
export const CONNECTION_LIMIT_TYPE = 'envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit';

interface ConnectionLimit__Output {
  readonly stat_prefix: string;
  readonly max_connections: { readonly value: string | number } | null;
  readonly delay: Duration__Output | null;
  readonly runtime_enabled: { readonly default_value: { readonly value: boolean } | null; readonly runtime_key: string } | null;
}

export interface ConnectionLimitConfig {
  readonly statPrefix: string;
  readonly maxConnections: number;
  /** How long a connection over the limit is held before it is closed, ms (0: at once). */
  readonly delayMs: number;
  readonly runtimeEnabled: { readonly runtimeKey: string; readonly dflt: boolean } | undefined;
  /** Names the process-wide count: the filter's config path (every worker's copy shares it). */
  readonly counterKey: string;
}

export function parseConnectionLimit(message: unknown, ctx: { readonly path: string }): Result<ConnectionLimitConfig> {
  const m = message as ConnectionLimit__Output;
  const errors: ConfigError[] = [];
  const at = (f: string): string => joinPath(ctx.path, f);
  if (!m.stat_prefix) errors.push({ path: at('stat_prefix'), reason: 'value length must be at least 1 characters' });
  const max = m.max_connections ? int64(m.max_connections.value, 0) : 0;
  if (max < 1) errors.push({ path: at('max_connections'), reason: 'value must be greater than or equal to 1' });
  const r = m.runtime_enabled;
  if (r && !r.runtime_key) errors.push({ path: at('runtime_enabled.runtime_key'), reason: 'value length must be at least 1 characters' });
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      statPrefix: m.stat_prefix,
      // The shared counter is 32-bit: more than 2^31 - 1 connections is no limit at all.
      maxConnections: Math.min(max, 2 ** 31 - 1),
      delayMs: durationMs(m.delay, 0),
      runtimeEnabled: r ? Object.freeze({ runtimeKey: r.runtime_key, dflt: r.default_value?.value ?? true }) : undefined,
      counterKey: `connection_limit.${ctx.path}`,
    }),
  );
}
