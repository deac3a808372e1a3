// Parses envoy.extensions.filters.http.health_check.v3.HealthCheck: which requests are health checks
// (`headers`, route header matchers), whether they go on to the upstream (pass_through_mode, with
// cache_time) and the clusters whose health the answer depends on (cluster_min_healthy_percentages).

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import { compileHeaderMatchers, type HeaderPredicate } from '../../../proxy/http/matchers.ts';
import type { ParseContext } from '../../registry.ts';
import type { HeaderMatcher__Output } from '../../../generated/envoy/config/route/v3/HeaderMatcher.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';

export const HEALTH_CHECK_NAME = 'envoy.filters.http.health_check';
export const HEALTH_CHECK_TYPE = 'envoy.extensions.filters.http.health_check.v3.HealthCheck';

/** The decoded message (proto-loader object form; src/generated has no type for this proto). */
export interface HealthCheck__Output {
  readonly pass_through_mode: { readonly value: boolean } | null;
  readonly cache_time: Duration__Output | null;
  readonly cluster_min_healthy_percentages: Readonly<Record<string, { readonly value: number }>>;
  readonly headers: readonly HeaderMatcher__Output[];
}

export interface HealthCheckConfig {
  readonly passThrough: boolean;
  /** cache_time in ms (pass-through mode only); 0: no cache. */
  readonly cacheTimeMs: number;
  /** Cluster name -> minimum % of its hosts available (healthy or degraded), Envoy's integer truncation applied. */
  readonly minHealthy: ReadonlyArray<readonly [string, number]>;
  /** Matches a health check request; undefined: every request is one. */
  readonly matches: HeaderPredicate | undefined;
}

export function parseHealthCheck(message: unknown, ctx: ParseContext): Result<HealthCheckConfig> {
  const m = message as HealthCheck__Output;
  const errors: ConfigError[] = [];
  if (!m.pass_through_mode) errors.push({ path: joinPath(ctx.path, 'pass_through_mode'), reason: 'value is required' });
  const passThrough = m.pass_through_mode?.value ?? false;
  const cacheTimeMs = m.cache_time ? durationMs(m.cache_time, 0) : 0;
  if (cacheTimeMs > 0 && !passThrough) errors.push({ path: joinPath(ctx.path, 'cache_time'), reason: 'cache_time is only valid in pass_through_mode' });
  const minHealthy: Array<readonly [string, number]> = [];
  for (const [name, pct] of Object.entries(m.cluster_min_healthy_percentages ?? {})) {
    const v = pct?.value ?? 0;
    if (!(v >= 0 && v <= 100)) errors.push({ path: joinPath(ctx.path, `cluster_min_healthy_percentages["${name}"].value`), reason: 'value must be inside range [0, 100]' });
    minHealthy.push([name, Math.trunc(v)]);
  }
  const matches = compileHeaderMatchers(m.headers ?? [], joinPath(ctx.path, 'headers'));
  if (!matches.ok) errors.push(...matches.errors);
  if (errors.length > 0) return { ok: false, errors };
  if (!matches.ok) return fail(ctx.path, 'unreachable');
  return ok(Object.freeze({ passThrough, cacheTimeMs, minHealthy: Object.freeze(minHealthy), matches: matches.value }));
}
