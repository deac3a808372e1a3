// Parses stats.PluginConfig (Istio's `istio.stats`, HTTP and network): who reports (by the listener's
// traffic_direction, or SERVER_GATEWAY), the host header fallback, the TCP reporting interval, and
// metric overrides (drop, tags_to_remove, dimensions as CEL expressions in legate's subset).
// Custom metric `definitions` are refused with their path.

import { joinPath, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import type { ParseContext } from '../../registry.ts';
import { compileTagExpression, type TagExpression } from './expressions.ts';
import { STANDARD_METRICS, STANDARD_TAGS } from './tags.ts';

export const ISTIO_STATS_NAME = 'istio.stats';
export const ISTIO_STATS_TYPE = 'stats.PluginConfig';

interface MetricConfig__Output {
  readonly dimensions: Readonly<Record<string, string>>;
  readonly name: string;
  readonly tags_to_remove: readonly string[];
  readonly match: string;
  readonly drop: boolean;
}
/** The decoded message (proto-loader object form; src/config/istio-protos). */
interface PluginConfig__Output {
  readonly disable_host_header_fallback: boolean;
  readonly tcp_reporting_duration: Parameters<typeof durationMs>[0];
  readonly metrics: readonly MetricConfig__Output[];
  readonly definitions: ReadonlyArray<{ readonly name: string }>;
  readonly reporter: 'UNSPECIFIED' | 'SERVER_GATEWAY';
}

export type Reporter = 'source' | 'destination' | 'waypoint';

/** One metric's changes to its standard tags: removed, or given by an expression; and tags added. */
export interface MetricOverride {
  /** Standard tag -> its expression, or null: the tag is removed. */
  readonly replaced: ReadonlyMap<string, TagExpression | null>;
  /** New tags in name order. */
  readonly added: ReadonlyArray<readonly [string, TagExpression]>;
}

export interface IstioStatsConfig {
  readonly reporter: Reporter;
  readonly disableHostHeaderFallback: boolean;
  /** Network filter: how often an open connection's byte counts are reported, ms. */
  readonly tcpReportingMs: number;
  /** Standard metrics (without `istio_`) not reported. */
  readonly dropped: ReadonlySet<string>;
  /** Overrides by standard metric (without `istio_`). */
  readonly overrides: ReadonlyMap<string, MetricOverride>;
}

interface MutableOverride {
  replaced: Map<string, TagExpression | null>;
  added: Map<string, TagExpression>;
}

export function parseIstioStats(message: unknown, ctx: ParseContext): Result<IstioStatsConfig> {
  const m = message as PluginConfig__Output;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const reporter: Reporter = m.reporter === 'SERVER_GATEWAY' ? 'waypoint' : ctx.trafficDirection === 'INBOUND' ? 'destination' : 'source';
  m.definitions.forEach((_d, i) => errors.push({ path: joinPath(ctx.path, `definitions[${i}]`), reason: 'custom metric definitions are not supported' }));
  const dropped = new Set<string>();
  const byMetric = new Map<string, MutableOverride>();
  const overrideOf = (metric: string): MutableOverride => {
    let o = byMetric.get(metric);
    if (!o) byMetric.set(metric, (o = { replaced: new Map(), added: new Map() }));
    return o;
  };
  m.metrics.forEach((mc, i) => {
    const p = joinPath(ctx.path, `metrics[${i}]`);
    if (mc.name !== '' && !STANDARD_METRICS.includes(mc.name)) {
      warnings.push(`${p}.name: '${mc.name}' is not a standard metric; ignored`);
      return;
    }
    const metrics = mc.name === '' ? STANDARD_METRICS : [mc.name];
    if (mc.match !== '') errors.push({ path: joinPath(p, 'match'), reason: 'conditional overrides are not supported' });
    if (mc.drop) {
      for (const name of metrics) dropped.add(name);
      return;
    }
    for (const tag of mc.tags_to_remove) {
      if (!STANDARD_TAGS.includes(tag)) warnings.push(`${p}.tags_to_remove: '${tag}' is not a standard tag; ignored`);
      else for (const name of metrics) overrideOf(name).replaced.set(tag, null);
    }
    for (const tag of Object.keys(mc.dimensions).sort()) {
      const expr = compileTagExpression(mc.dimensions[tag]!);
      if (typeof expr === 'string') {
        errors.push({ path: joinPath(p, `dimensions.${tag}`), reason: expr });
        continue;
      }
      for (const name of metrics) {
        if (STANDARD_TAGS.includes(tag)) overrideOf(name).replaced.set(tag, expr);
        else overrideOf(name).added.set(tag, expr);
      }
    }
  });
  if (errors.length > 0) return { ok: false, errors };
  const overrides = new Map<string, MetricOverride>();
  for (const [name, o] of byMetric) overrides.set(name, { replaced: o.replaced, added: [...o.added] });
  const config: IstioStatsConfig = {
    reporter,
    disableHostHeaderFallback: m.disable_host_header_fallback,
    tcpReportingMs: durationMs(m.tcp_reporting_duration, 5000),
    dropped,
    overrides,
  };
  return warnings.length > 0 ? { ok: true, value: config, warnings } : { ok: true, value: config };
}
