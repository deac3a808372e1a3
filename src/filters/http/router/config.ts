// Parses envoy.extensions.filters.http.router.v3.Router into a frozen RouterConfig. Fails only
// on fields legate cannot honour (upstream_http_filters); everything else takes Envoy's defaults.

import { deepFreeze, fail, ok, type Result } from '../../../config/result.ts';
import { wrapped } from '../../../config/values.ts';
import type { ParseContext } from '../../registry.ts';
import type { Router__Output } from '../../../generated/envoy/extensions/filters/http/router/v3/Router.ts';

export interface RouterConfig {
  /** Don't add x-envoy-upstream-service-time / x-envoy-expected-rq-timeout-ms. */
  readonly suppressEnvoyHeaders: boolean;
  /** Charge upstream_rq_<code>, upstream_rq_<N>xx, upstream_rq_completed and upstream_rq_time (default true). */
  readonly dynamicStats: boolean;
  /** Read the timeout from x-envoy-expected-rq-timeout-ms instead of x-envoy-upstream-rq-timeout-ms. */
  readonly respectExpectedRqTimeout: boolean;
  /** strict_check_headers: these x-envoy-* request headers must be valid, or the request gets 400 IH. */
  readonly strictCheckHeaders: readonly StrictHeader[];
}

/** The headers strict_check_headers may name (Envoy's list, enforced by the proto's validation). */
export type StrictHeader = 'x-envoy-upstream-rq-timeout-ms' | 'x-envoy-upstream-rq-per-try-timeout-ms' | 'x-envoy-max-retries' | 'x-envoy-retry-grpc-on' | 'x-envoy-retry-on';

export const DEFAULT_ROUTER_CONFIG: RouterConfig = deepFreeze({ suppressEnvoyHeaders: false, dynamicStats: true, respectExpectedRqTimeout: false, strictCheckHeaders: [] });

export function parseRouter(message: unknown, ctx: ParseContext): Result<RouterConfig> {
  const m = (message ?? {}) as Partial<Router__Output>;
  if (m.upstream_http_filters && m.upstream_http_filters.length > 0) {
    return fail(`${ctx.path}.upstream_http_filters`, 'upstream HTTP filters are not supported by legate');
  }
  // start_child_span (tracing) and upstream_log are accepted and ignored.
  return ok(
    deepFreeze({
      suppressEnvoyHeaders: m.suppress_envoy_headers ?? false,
      dynamicStats: wrapped(m.dynamic_stats ?? null, true),
      respectExpectedRqTimeout: m.respect_expected_rq_timeout ?? false,
      // The proto's validation (decode) admits only Envoy's five names.
      strictCheckHeaders: (m.strict_check_headers ?? []) as StrictHeader[],
    }),
  );
}
