// Parses envoy.extensions.filters.http.grpc_stats.v3.FilterConfig: which gRPC methods get stats of
// their own (stats_for_all_methods, or individual_method_stats_allowlist; neither: none, every call
// counted under `cluster.<name>.grpc.`), and whether service names have their dots replaced.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export const GRPC_STATS_NAME = 'envoy.filters.http.grpc_stats';
export const GRPC_STATS_TYPE = 'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig';

/** The decoded message (proto-loader object form; src/generated has no type for this proto). */
interface FilterConfig__Output {
  readonly emit_filter_state: boolean;
  readonly individual_method_stats_allowlist?: { readonly services: ReadonlyArray<{ readonly name: string; readonly method_names: readonly string[] }> } | null;
  readonly stats_for_all_methods?: { readonly value: boolean } | null;
  readonly enable_upstream_stats: boolean;
  readonly replace_dots_in_grpc_service_name: boolean;
}

export interface GrpcStatsConfig {
  /** Every service/method gets its own stats. */
  readonly allMethods: boolean;
  /** Service -> methods with stats of their own (allowlist); undefined: none. */
  readonly allowlist: ReadonlyMap<string, ReadonlySet<string>> | undefined;
  readonly replaceDots: boolean;
  /** Keep the call's message counts in filter state (GrpcStatsObject) for later filters (Istio's stats). */
  readonly emitFilterState: boolean;
}

export function parseGrpcStats(message: unknown, ctx: ParseContext): Result<GrpcStatsConfig> {
  const m = message as FilterConfig__Output;
  const errors: ConfigError[] = [];
  if (m.enable_upstream_stats) errors.push({ path: joinPath(ctx.path, 'enable_upstream_stats'), reason: 'the upstream_rq_time histogram is not supported yet' });
  let allowlist: Map<string, ReadonlySet<string>> | undefined;
  if (m.individual_method_stats_allowlist) {
    allowlist = new Map();
    for (const s of m.individual_method_stats_allowlist.services) allowlist.set(s.name, new Set(s.method_names));
  }
  if (errors.length > 0) return { ok: false, errors };
  return ok(Object.freeze({ allMethods: m.stats_for_all_methods?.value ?? false, allowlist, replaceDots: m.replace_dots_in_grpc_service_name, emitFilterState: m.emit_filter_state }));
}
