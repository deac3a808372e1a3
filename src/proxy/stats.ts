// Worker-local stats with Envoy's names. Increments are plain number adds; the main thread
// merges every worker's snapshot on scrape (counters and gauges summed, histograms merged).

export interface Counter {
  inc(n?: number): void;
  readonly value: number;
}
export interface Gauge {
  inc(n?: number): void;
  dec(n?: number): void;
  set(v: number): void;
  readonly value: number;
}
export interface Histogram {
  /** Records one sample (milliseconds for durations, as Envoy's `_ms` histograms). */
  record(v: number): void;
}

/** Envoy's default histogram bucket bounds. */
export const HISTOGRAM_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;

export interface HistogramSnapshot {
  /** Counts per bucket of HISTOGRAM_BUCKETS (non-cumulative), plus one overflow bucket at the end. */
  buckets: number[];
  count: number;
  sum: number;
}

export interface StatsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, HistogramSnapshot>;
  /** Names that were ever touched (for `/stats?usedonly`). */
  used: string[];
  /** Gauges that are per-worker copies of one value (merged with max, not summed). */
  maxGauges?: string[];
  /** Stats made from a base name and tags (StatsStore.taggedName), by full name. */
  tagged?: Record<string, TaggedName>;
}

/**
 * A stat named by a base and tags, as Envoy's StatNameTagVector stats (Istio's standard metrics):
 * the full name joins them (`base.k1.v1.k2.v2`) and the tags are known, not extracted from it.
 */
export interface TaggedName {
  readonly base: string;
  readonly tags: ReadonlyArray<readonly [string, string]>;
}

/** How a gauge combines across workers: summed (connections active) or taken from one (server.live). */
export type GaugeMode = 'sum' | 'max';

class CounterImpl implements Counter {
  value = 0;
  used = false;
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
}

class GaugeImpl implements Gauge {
  value = 0;
  used = false;
  readonly mode: GaugeMode;
  constructor(mode: GaugeMode) {
    this.mode = mode;
  }
  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }
  set(v: number): void {
    this.value = v;
    this.used = true;
  }
}

class HistogramImpl implements Histogram {
  readonly buckets: number[] = new Array<number>(HISTOGRAM_BUCKETS.length + 1).fill(0);
  count = 0;
  sum = 0;
  record(v: number): void {
    let i = 0;
    while (i < HISTOGRAM_BUCKETS.length && v > HISTOGRAM_BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.count++;
    this.sum += v;
  }
}

export class StatsStore {
  readonly #counters = new Map<string, CounterImpl>();
  readonly #gauges = new Map<string, GaugeImpl>();
  readonly #histograms = new Map<string, HistogramImpl>();
  readonly #tagged = new Map<string, TaggedName>();

  /** The full name of the stat `base` with `tags` (in order), remembered with its tags for exposition. */
  taggedName(base: string, tags: ReadonlyArray<readonly [string, string]>): string {
    let name = base;
    for (let i = 0; i < tags.length; i++) name += `.${tags[i]![0]}.${tags[i]![1]}`;
    if (!this.#tagged.has(name)) this.#tagged.set(name, { base, tags: tags.map(([k, v]) => [k, v] as const) });
    return name;
  }

  counter(name: string): Counter {
    let c = this.#counters.get(name);
    if (!c) this.#counters.set(name, (c = new CounterImpl()));
    return c;
  }

  gauge(name: string, mode: GaugeMode = 'sum'): Gauge {
    let g = this.#gauges.get(name);
    if (!g) this.#gauges.set(name, (g = new GaugeImpl(mode)));
    return g;
  }

  histogram(name: string): Histogram {
    let h = this.#histograms.get(name);
    if (!h) this.#histograms.set(name, (h = new HistogramImpl()));
    return h;
  }

  gaugeModes(): Record<string, GaugeMode> {
    const out: Record<string, GaugeMode> = {};
    for (const [k, g] of this.#gauges) out[k] = g.mode;
    return out;
  }

  snapshot(): StatsSnapshot {
    const snap: StatsSnapshot = { counters: {}, gauges: {}, histograms: {}, used: [] };
    for (const [k, c] of this.#counters) {
      snap.counters[k] = c.value;
      if (c.used) snap.used.push(k);
    }
    const maxGauges: string[] = [];
    for (const [k, g] of this.#gauges) {
      snap.gauges[k] = g.value;
      if (g.used) snap.used.push(k);
      if (g.mode === 'max') maxGauges.push(k);
    }
    if (maxGauges.length) snap.maxGauges = maxGauges;
    if (this.#tagged.size > 0) snap.tagged = Object.fromEntries(this.#tagged);
    for (const [k, h] of this.#histograms) {
      snap.histograms[k] = { buckets: [...h.buckets], count: h.count, sum: h.sum };
      if (h.count > 0) snap.used.push(k);
    }
    return snap;
  }
}

/** Merges worker snapshots: counters and 'sum' gauges add; 'max' gauges take the largest. */
export function mergeSnapshots(snaps: readonly StatsSnapshot[], modes: Record<string, GaugeMode> = {}): StatsSnapshot {
  const out: StatsSnapshot = { counters: {}, gauges: {}, histograms: {}, used: [] };
  const used = new Set<string>();
  const max = new Set<string>(Object.entries(modes).flatMap(([k, m]) => (m === 'max' ? [k] : [])));
  for (const s of snaps) for (const k of s.maxGauges ?? []) max.add(k);
  for (const s of snaps) {
    for (const [k, v] of Object.entries(s.counters)) out.counters[k] = (out.counters[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.gauges)) {
      const prev = out.gauges[k];
      out.gauges[k] = prev === undefined ? v : max.has(k) ? Math.max(prev, v) : prev + v;
    }
    for (const [k, h] of Object.entries(s.histograms)) {
      const prev = out.histograms[k];
      if (!prev) out.histograms[k] = { buckets: [...h.buckets], count: h.count, sum: h.sum };
      else {
        h.buckets.forEach((b, i) => (prev.buckets[i] = (prev.buckets[i] ?? 0) + b));
        prev.count += h.count;
        prev.sum += h.sum;
      }
    }
    for (const u of s.used) used.add(u);
    if (s.tagged) out.tagged = { ...s.tagged, ...out.tagged };
  }
  out.used = [...used];
  return out;
}
