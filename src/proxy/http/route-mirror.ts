// Compiles RouteAction.request_mirror_policies (and the virtual-host-level default) into frozen
// MirrorPolicy objects the router's shadow writer reads. Errors name the field path, with Envoy's wording.

import { deepFreeze, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import type { FractionalPercentValue } from '../runtime.ts';
import type { MirrorPolicy } from './route-types.ts';
import type { _envoy_config_route_v3_RouteAction_RequestMirrorPolicy__Output as RequestMirrorPolicy__Output } from '../../generated/envoy/config/route/v3/RouteAction.ts';

const DENOMINATORS: ReadonlySet<string> = new Set(['HUNDRED', 'TEN_THOUSAND', 'MILLION']);
/** No runtime_fraction: every request is mirrored (Envoy's ShadowPolicyImpl default). */
const ALWAYS: FractionalPercentValue = Object.freeze({ numerator: 100, denominator: 'HUNDRED' });
export const EMPTY_POLICIES: readonly MirrorPolicy[] = Object.freeze([]);

/**
 * `known` is the set of cluster names a fixed `cluster` must be in (validate_clusters); undefined skips
 * the check, as for the route's own clusters. `cluster_header` policies are resolved per request.
 */
export function compileMirrorPolicies(
  policies: readonly RequestMirrorPolicy__Output[] | undefined,
  path: string,
  known: ReadonlySet<string> | undefined,
): Result<readonly MirrorPolicy[]> {
  if (!policies || policies.length === 0) return ok(EMPTY_POLICIES);
  const errors: ConfigError[] = [];
  const out: MirrorPolicy[] = [];
  policies.forEach((p, i) => {
    const pp = joinPath(path, `request_mirror_policies[${i}]`);
    const cluster = p.cluster ?? '';
    const header = (p.cluster_header ?? '').toLowerCase();
    if (cluster && header) {
      errors.push({ path: pp, reason: `Only one of cluster '${cluster}' or cluster_header '${header}' in request mirror policy can be specified` });
      return;
    }
    if (!cluster && !header) {
      errors.push({ path: pp, reason: 'Exactly one of cluster or cluster_header in request mirror policy need to be specified' });
      return;
    }
    if (cluster && known && !known.has(cluster)) {
      errors.push({ path: joinPath(pp, 'cluster'), reason: `route: unknown shadow cluster '${cluster}'` });
      return;
    }
    let runtimeKey: string | undefined;
    let defaultValue = ALWAYS;
    const rf = p.runtime_fraction;
    if (rf) {
      const dv = rf.default_value;
      if (!dv) {
        errors.push({ path: joinPath(pp, 'runtime_fraction.default_value'), reason: 'value is required' });
        return;
      }
      if (!DENOMINATORS.has(dv.denominator)) {
        errors.push({ path: joinPath(pp, 'runtime_fraction.default_value.denominator'), reason: `unknown denominator ${dv.denominator}` });
        return;
      }
      defaultValue = { numerator: dv.numerator, denominator: dv.denominator as FractionalPercentValue['denominator'] };
      runtimeKey = rf.runtime_key || undefined;
    }
    // trace_sampled is accepted and ignored (legate does not trace).
    out.push({
      cluster: cluster || undefined,
      clusterHeader: header || undefined,
      runtimeKey,
      defaultValue,
      disableShadowHostSuffixAppend: p.disable_shadow_host_suffix_append,
    });
  });
  if (errors.length > 0) return { ok: false, errors };
  return ok(deepFreeze(out));
}
