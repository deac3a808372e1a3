// Parses envoy.extensions.filters.http.rbac.v3.RBAC (the filter config) and RBACPerRoute (a route's
// `typed_per_filter_config`) into frozen configs holding the compiled enforced and shadow engines.
// Problems are Result errors with field paths (unsupported rule kinds name their field); no throws.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { parseRbacEngines, type RbacEngines } from '../../common/rbac/index.ts';
import type { RBAC__Output } from '../../../generated/envoy/extensions/filters/http/rbac/v3/RBAC.ts';
import type { RBACPerRoute__Output } from '../../../generated/envoy/extensions/filters/http/rbac/v3/RBACPerRoute.ts';

export const HTTP_RBAC_NAME = 'envoy.filters.http.rbac';
export const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const HTTP_RBAC_PER_ROUTE_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

export interface HttpRbacConfig extends RbacEngines {
  /** Inserted after `rbac.` in the allowed/denied counter names. */
  readonly rulesStatPrefix: string;
  /** Inserted after `rbac.` in the shadow_allowed/shadow_denied counter names. */
  readonly shadowRulesStatPrefix: string;
  /** Count per policy too (`...rbac.policy.<name>.allowed`...). */
  readonly trackPerRuleStats: boolean;
}

function parseBody(msg: RBAC__Output, path: string, errors: ConfigError[]): HttpRbacConfig {
  const engines = parseRbacEngines(msg, path, errors);
  return Object.freeze({
    ...engines,
    rulesStatPrefix: msg.rules_stat_prefix ?? '',
    shadowRulesStatPrefix: msg.shadow_rules_stat_prefix ?? '',
    trackPerRuleStats: msg.track_per_rule_stats ?? false,
  });
}

/** The registry's parse hook: the filter config in an HCM's http_filters. */
export function parseHttpRbac(message: unknown, ctx: { readonly path: string }): Result<HttpRbacConfig> {
  if (!message || typeof message !== 'object') return fail(ctx.path, 'expected an RBAC message');
  const errors: ConfigError[] = [];
  const c = parseBody(message as RBAC__Output, ctx.path, errors);
  return errors.length > 0 ? { ok: false, errors } : ok(c);
}

/**
 * A route's RBACPerRoute: its `rbac` replaces the filter's rules and shadow rules for that route;
 * without `rbac` the route has no engines, so RBAC lets every request through there (as Envoy).
 */
export function parseHttpRbacPerRoute(message: unknown, path: string): Result<HttpRbacConfig> {
  if (!message || typeof message !== 'object') return fail(path, 'expected an RBACPerRoute message');
  // The route table keeps only the unpacked message: a filter-level RBAC here is a type mismatch.
  if (!('rbac' in message) && 'rules' in message) return fail(path, `expected ${HTTP_RBAC_PER_ROUTE_TYPE}, got ${HTTP_RBAC_TYPE}`);
  const m = message as RBACPerRoute__Output;
  const errors: ConfigError[] = [];
  if (!m.rbac) return ok(Object.freeze({ engine: undefined, shadowEngine: undefined, rulesStatPrefix: '', shadowRulesStatPrefix: '', trackPerRuleStats: false }));
  const c = parseBody(m.rbac, joinPath(path, 'rbac'), errors);
  return errors.length > 0 ? { ok: false, errors } : ok(c);
}
