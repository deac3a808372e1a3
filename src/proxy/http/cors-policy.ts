// A CORS policy compiled for the CORS filter: envoy.extensions.filters.http.cors.v3.CorsPolicy (a
// virtual host's or route's typed_per_filter_config) or the older `cors` field of a VirtualHost or
// RouteAction (envoy.config.route.v3.CorsPolicy, the same fields). The route table compiles each
// once to reject a bad one with its field path; the filter compiles them again per worker, cached.

import { joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { compileStringMatcher, type StringPredicate } from './matchers.ts';
import { parseRuntimeFraction, type RuntimeFraction } from '../../config/runtime-fraction.ts';
import type { CorsPolicy__Output } from '../../generated/envoy/config/route/v3/CorsPolicy.ts';

/** The typed_per_filter_config message of envoy.filters.http.cors. */
export const CORS_POLICY_TYPE = 'envoy.extensions.filters.http.cors.v3.CorsPolicy';

/** One level's policy. Empty strings and undefined mean "not set here": a less specific level's applies. */
export interface CorsPolicy {
  /** allow_origin_string_match; empty: not set. */
  readonly allowOrigins: readonly StringPredicate[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean | undefined;
  readonly allowPrivateNetworkAccess: boolean | undefined;
  readonly forwardNotMatchingPreflights: boolean | undefined;
  /** filter_enabled; undefined: enabled for every request. */
  readonly filterEnabled: RuntimeFraction | undefined;
  /** shadow_enabled; undefined: no shadow evaluation. */
  readonly shadowEnabled: RuntimeFraction | undefined;
}

type Message = Partial<CorsPolicy__Output>;

const bool = (v: { value: boolean } | null | undefined): boolean | undefined => (v ? v.value : undefined);

/** Compiles one policy message (proto-loader form); errors name `path`'s fields. */
export function compileCorsPolicy(message: unknown, path: string): Result<CorsPolicy> {
  const m = (message ?? {}) as Message;
  const errors: ConfigError[] = [];
  const allowOrigins: StringPredicate[] = [];
  (m.allow_origin_string_match ?? []).forEach((sm, i) => {
    const r = compileStringMatcher(sm, joinPath(path, `allow_origin_string_match[${i}]`));
    if (r.ok) allowOrigins.push(r.value);
    else errors.push(...r.errors);
  });
  const filterEnabled = parseRuntimeFraction(m.filter_enabled, joinPath(path, 'filter_enabled'), errors);
  const shadowEnabled = parseRuntimeFraction(m.shadow_enabled, joinPath(path, 'shadow_enabled'), errors);
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      allowOrigins: Object.freeze(allowOrigins),
      allowMethods: m.allow_methods ?? '',
      allowHeaders: m.allow_headers ?? '',
      exposeHeaders: m.expose_headers ?? '',
      maxAge: m.max_age ?? '',
      allowCredentials: bool(m.allow_credentials),
      allowPrivateNetworkAccess: bool(m.allow_private_network_access),
      forwardNotMatchingPreflights: bool(m.forward_not_matching_preflights),
      filterEnabled,
      shadowEnabled,
    }),
  );
}

/** The config errors of a policy message, for the route table (empty when it compiles). */
export function corsPolicyErrors(message: unknown, path: string): readonly ConfigError[] {
  const r = compileCorsPolicy(message, path);
  return r.ok ? [] : r.errors;
}
