// A RuntimeFractionalPercent (`filter_enabled`, `filter_enforced`, `shadow_enabled`...) read for
// Runtime.featureEnabled: the runtime key that may override the share, and the default share.

import { joinPath, type ConfigError } from './result.ts';
import type { FractionalPercentValue } from '../proxy/runtime.ts';
import type { RuntimeFractionalPercent__Output } from '../generated/envoy/config/core/v3/RuntimeFractionalPercent.ts';

export interface RuntimeFraction {
  readonly runtimeKey: string | undefined;
  readonly dflt: FractionalPercentValue;
}

/** undefined when unset; a missing default_value is an error at `path`. */
export function parseRuntimeFraction(f: RuntimeFractionalPercent__Output | null | undefined, path: string, errors: ConfigError[]): RuntimeFraction | undefined {
  if (!f) return undefined;
  if (!f.default_value) {
    errors.push({ path: joinPath(path, 'default_value'), reason: 'value is required' });
    return undefined;
  }
  const d = f.default_value.denominator;
  const denominator = d === 'TEN_THOUSAND' || d === 'MILLION' ? d : 'HUNDRED';
  return Object.freeze({ runtimeKey: f.runtime_key || undefined, dflt: Object.freeze({ numerator: f.default_value.numerator, denominator }) });
}
