// envoy.filters.http.cors: the filter config (envoy.extensions.filters.http.cors.v3.Cors) has no
// fields; the policies come from the route (typed_per_filter_config CorsPolicy, or the virtual
// host's and route's `cors`), compiled by src/proxy/http/cors-policy.ts.

import { ok, type Result } from '../../../config/result.ts';

export const CORS_NAME = 'envoy.filters.http.cors';
export const CORS_TYPE = 'envoy.extensions.filters.http.cors.v3.Cors';

/** The filter's own config: nothing to configure. */
export type CorsConfig = Readonly<Record<string, never>>;

const EMPTY: CorsConfig = Object.freeze({});

export function parseCors(): Result<CorsConfig> {
  return ok(EMPTY);
}
