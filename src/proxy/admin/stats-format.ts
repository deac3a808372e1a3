// `/stats` in Envoy's text and JSON forms, from a merged StatsSnapshot: selection (filter, usedonly,
// type) and histogram quantiles estimated from bucket counts. Pure functions; nothing here throws.

import { HISTOGRAM_BUCKETS, type HistogramSnapshot, type StatsSnapshot, type TaggedName } from '../stats.ts';

/** Envoy's `/stats?type=` values. */
export type StatsType = 'All' | 'Counters' | 'Gauges' | 'Histograms' | 'TextReadouts';

export interface StatsSelection {
  /** Partial match against the full stat name (Envoy's `?filter=`). */
  readonly filter?: RegExp | undefined;
  readonly usedOnly?: boolean;
  readonly type?: StatsType;
}

export interface SelectedStats {
  /** Counters and gauges, sorted by name (Envoy interleaves them). */
  readonly scalars: ReadonlyArray<{ readonly name: string; readonly value: number; readonly kind: 'counter' | 'gauge' }>;
  readonly histograms: ReadonlyArray<{ readonly name: string; readonly h: HistogramSnapshot }>;
  /** Base names and tags of the stats made with tags (Prometheus labels them from these). */
  readonly tagged?: Readonly<Record<string, TaggedName>> | undefined;
}

/** Envoy's default supported quantiles, in percent. */
export const SUPPORTED_QUANTILES = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100] as const;

const STATS_TYPES: readonly StatsType[] = ['All', 'Counters', 'Gauges', 'Histograms', 'TextReadouts'];
export function parseStatsType(s: string | null): StatsType | undefined {
  if (s === null) return 'All';
  return STATS_TYPES.find((t) => t === s);
}

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function selectStats(snap: StatsSnapshot, sel: StatsSelection = {}): SelectedStats {
  const used = sel.usedOnly ? new Set(snap.used) : undefined;
  const type = sel.type ?? 'All';
  const keep = (name: string): boolean => (!used || used.has(name)) && (!sel.filter || sel.filter.test(name));
  const scalars: Array<{ name: string; value: number; kind: 'counter' | 'gauge' }> = [];
  if (type === 'All' || type === 'Counters')
    for (const [name, value] of Object.entries(snap.counters)) if (keep(name)) scalars.push({ name, value, kind: 'counter' });
  if (type === 'All' || type === 'Gauges')
    for (const [name, value] of Object.entries(snap.gauges)) if (keep(name)) scalars.push({ name, value, kind: 'gauge' });
  const histograms: Array<{ name: string; h: HistogramSnapshot }> = [];
  if (type === 'All' || type === 'Histograms')
    for (const [name, h] of Object.entries(snap.histograms)) if (keep(name)) histograms.push({ name, h });
  return { scalars: scalars.sort(byName), histograms: histograms.sort(byName), tagged: snap.tagged };
}

/**
 * Quantile `q` (0..1) estimated by linear interpolation inside the bucket that holds it
 * (Envoy uses a finer log-linear histogram; with these bounds the estimate is coarser).
 * NaN when there are no samples.
 */
export function quantile(h: HistogramSnapshot, q: number): number {
  if (h.count <= 0) return NaN;
  const target = q * h.count;
  let cum = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const c = h.buckets[i] ?? 0;
    if (c > 0 && cum + c >= target) {
      const lower = i === 0 ? 0 : HISTOGRAM_BUCKETS[i - 1]!;
      // The overflow bucket has no upper bound: report its lower bound.
      const upper = HISTOGRAM_BUCKETS[i] ?? lower;
      const v = lower + ((target - cum) / c) * (upper - lower);
      return Number(v.toPrecision(6));
    }
    cum += c;
  }
  return NaN;
}

function fmtNum(v: number): string {
  return Number.isNaN(v) ? 'nan' : String(v);
}

/** Envoy's text line value for a histogram: `P0(nan,1) P25(nan,2.5) ...` or `No recorded values`. */
export function histogramSummary(h: HistogramSnapshot): string {
  if (h.count === 0) return 'No recorded values';
  // The interval (last flush period) is not tracked by legate, hence nan as Envoy prints before a flush.
  return SUPPORTED_QUANTILES.map((p) => `P${p}(nan,${fmtNum(quantile(h, p / 100))})`).join(' ');
}

/** `/stats` text: `name: value` lines, counters and gauges sorted together, then histograms. */
export function statsText(sel: SelectedStats): string {
  const lines: string[] = [];
  for (const s of sel.scalars) lines.push(`${s.name}: ${s.value}`);
  for (const { name, h } of sel.histograms) lines.push(`${name}: ${histogramSummary(h)}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** `/stats?format=json`: `{"stats":[{"name","value"}...,{"histograms":{supported_quantiles, computed_quantiles}}]}`. */
export function statsJson(sel: SelectedStats): unknown {
  const stats: unknown[] = sel.scalars.map((s) => ({ name: s.name, value: s.value }));
  if (sel.histograms.length > 0) {
    stats.push({
      histograms: {
        supported_quantiles: SUPPORTED_QUANTILES,
        computed_quantiles: sel.histograms.map(({ name, h }) => ({
          name,
          values: SUPPORTED_QUANTILES.map((p) => {
            const v = quantile(h, p / 100);
            return { interval: null, cumulative: Number.isNaN(v) ? null : v };
          }),
        })),
      },
    });
  }
  return { stats };
}
