// original_dst config: OriginalDst has one field, traffic_direction, which Envoy reads on Windows
// only; parsing checks nothing else and says once when the addon that reads SO_ORIGINAL_DST is missing.

import { type Result, deepFreeze, ok } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';
import { originalDstUnavailable } from '../../../native/original-dst/index.ts';

/** Nothing to configure on Linux. */
export type OriginalDstConfig = Readonly<Record<string, never>>;

export function parseOriginalDst(_message: unknown, ctx: ParseContext): Result<OriginalDstConfig> {
  const value: OriginalDstConfig = deepFreeze({});
  const missing = originalDstUnavailable();
  return missing ? { ok: true, value, warnings: [`${ctx.path}: ${missing}; connections keep their own local address`] } : ok(value);
}
