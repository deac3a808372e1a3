// Parses envoy.extensions.filters.network.rbac.v3.RBAC: the required stat_prefix, the enforced and
// shadow rule sets (compiled by the shared engine), shadow_rules_stat_prefix and enforcement_type.
// Problems are Result errors with field paths; nothing here throws.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { parseRbacEngines, type RbacEngines } from '../../common/rbac/index.ts';
import type { RBAC__Output } from '../../../generated/envoy/extensions/filters/network/rbac/v3/RBAC.ts';

export const NETWORK_RBAC_NAME = 'envoy.filters.network.rbac';
export const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';

export interface NetworkRbacConfig extends RbacEngines {
  /** Counters go under `<stat_prefix>.rbac.` (joined as Envoy's statPrefixJoin does). */
  readonly statPrefix: string;
  readonly shadowRulesStatPrefix: string;
  /**
   * Envoy checks once on the first byte (ONE_TIME_ON_FIRST_BYTE) or on every read (CONTINUOUS, for
   * protocol filters that add dynamic metadata as they parse). legate's engine sees connection
   * properties only, which cannot change, so both check once, when the connection is set up.
   */
  readonly enforcementType: 'ONE_TIME_ON_FIRST_BYTE' | 'CONTINUOUS';
}

export function parseNetworkRbac(message: unknown, ctx: { readonly path: string }): Result<NetworkRbacConfig> {
  if (!message || typeof message !== 'object') return fail(ctx.path, 'expected an RBAC message');
  const msg = message as RBAC__Output;
  const errors: ConfigError[] = [];
  if (!msg.stat_prefix) errors.push({ path: joinPath(ctx.path, 'stat_prefix'), reason: 'value length must be at least 1 characters' });
  const engines = parseRbacEngines(msg, ctx.path, errors);
  const e = msg.enforcement_type as unknown;
  const enforcementType = e === 'CONTINUOUS' || e === 1 ? 'CONTINUOUS' : 'ONE_TIME_ON_FIRST_BYTE';
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      ...engines,
      statPrefix: msg.stat_prefix,
      shadowRulesStatPrefix: msg.shadow_rules_stat_prefix ?? '',
      enforcementType,
    }),
  );
}
