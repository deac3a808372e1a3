// Route and virtual host `rate_limits` checked when the route table is built: a header or query
// parameter matcher that cannot compile (a bad RE2 regex, an empty name) rejects the route
// configuration, as Envoy's RateLimitPolicy does. The actions themselves become descriptors per
// request in the rate limit filters (filters/common/rate-limit-descriptors.ts).

import { joinPath, type ConfigError } from '../../config/result.ts';
import type { RateLimit__Output } from '../../generated/envoy/config/route/v3/RateLimit.ts';
import { compileHeaderMatchers, compileQueryParameterMatcher } from './matchers.ts';

export function rateLimitErrors(list: readonly RateLimit__Output[] | undefined, path: string): ConfigError[] {
  const errors: ConfigError[] = [];
  for (const [i, rl] of (list ?? []).entries()) {
    for (const [j, a] of rl.actions.entries()) {
      const p = joinPath(path, `[${i}].actions[${j}]`);
      if (a.action_specifier === 'header_value_match' && a.header_value_match) {
        const r = compileHeaderMatchers(a.header_value_match.headers, joinPath(p, 'header_value_match.headers'));
        if (!r.ok) errors.push(...r.errors);
      } else if (a.action_specifier === 'query_parameter_value_match' && a.query_parameter_value_match) {
        for (const [k, q] of a.query_parameter_value_match.query_parameters.entries()) {
          const r = compileQueryParameterMatcher(q, joinPath(p, `query_parameter_value_match.query_parameters[${k}]`));
          if (!r.ok) errors.push(...r.errors);
        }
      }
    }
  }
  return errors;
}
