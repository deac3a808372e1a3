// `/stats/prometheus`: a merged StatsSnapshot in Prometheus text form through prom-client, with
// Envoy's tag extraction and names (`envoy_cluster_upstream_rq_total{envoy_cluster_name="a"}`).
// A name clash between metric types keeps the first family and skips the other (Envoy would emit both).

import type { Histogram, MetricType, Registry } from 'prom-client';
import { HISTOGRAM_BUCKETS, type HistogramSnapshot, type TaggedName } from '../stats.ts';
import type { SelectedStats } from './stats-format.ts';
import { extractTags, sanitizeName } from './tags.ts';

type Labels = Record<string, string>;

interface Series<V> {
  readonly labels: Labels;
  readonly value: V;
}

interface Family<V> {
  readonly labelNames: Set<string>;
  readonly series: Array<Series<V>>;
}

interface PromName {
  readonly metric: string;
  readonly labels: Readonly<Labels>;
}

// Stat names are stable: the Prometheus name and labels of each are computed once (bounded).
const MAX_CACHED = 100_000;
const promNames = new Map<string, PromName>();

/** Envoy's custom stat namespace for Proxy-Wasm plugin metrics: exported without `envoy_` or tags. */
const WASM_CUSTOM = 'wasmcustom.';
/** Custom stat namespaces (Envoy's customStatNamespaces): exported without the namespace or `envoy_`. */
const CUSTOM_NAMESPACES = ['wasmcustom.', 'istiocustom.'];

/** A stat made with tags: its base name (custom namespace stripped, else `envoy_`) and its own tags. */
function taggedPromName(t: TaggedName): PromName {
  const ns = CUSTOM_NAMESPACES.find((n) => t.base.startsWith(n));
  const labels: Labels = {};
  for (const [k, v] of t.tags) labels[sanitizeName(k)] = v;
  return { metric: ns ? sanitizeName(t.base.slice(ns.length)) : `envoy_${sanitizeName(t.base)}`, labels };
}

function promName(stat: string, tagged: Readonly<Record<string, TaggedName>> | undefined): PromName {
  let p = promNames.get(stat);
  const t = p ? undefined : tagged?.[stat];
  if (t) {
    p = taggedPromName(t);
    if (promNames.size >= MAX_CACHED) promNames.clear();
    promNames.set(stat, p);
  }
  if (!p && stat.startsWith(WASM_CUSTOM)) {
    p = { metric: sanitizeName(stat.slice(WASM_CUSTOM.length)), labels: {} };
    promNames.set(stat, p);
  }
  if (!p) {
    const tagged = extractTags(stat);
    const labels: Labels = {};
    for (const t of tagged.tags) labels[sanitizeName(t.name)] = t.value;
    if (promNames.size >= MAX_CACHED) promNames.clear();
    promNames.set(stat, (p = { metric: `envoy_${sanitizeName(tagged.name)}`, labels }));
  }
  return p;
}

function group<V>(items: ReadonlyArray<{ name: string; value: V }>, tagged: Readonly<Record<string, TaggedName>> | undefined): Map<string, Family<V>> {
  const families = new Map<string, Family<V>>();
  for (const { name, value } of items) {
    const { metric, labels } = promName(name, tagged);
    let fam = families.get(metric);
    if (!fam) families.set(metric, (fam = { labelNames: new Set(), series: [] }));
    for (const l in labels) fam.labelNames.add(l);
    fam.series.push({ labels, value });
  }
  return families;
}

function sortedKeys<V>(m: Map<string, V>): string[] {
  return [...m.keys()].sort();
}

type PromClient = typeof import('prom-client');

/** A prom-client Histogram class whose series come straight from snapshot bucket counts. */
function snapshotHistogramClass(prom: PromClient) {
  return class SnapshotHistogram extends prom.Histogram {
    readonly #series: ReadonlyArray<Series<HistogramSnapshot>>;
    readonly #name: string;

    constructor(name: string, series: ReadonlyArray<Series<HistogramSnapshot>>, registry: Registry) {
      super({ name, help: name, buckets: [...HISTOGRAM_BUCKETS], registers: [registry] });
      this.#name = name;
      this.#series = series;
    }

    override async get(): ReturnType<Histogram['get']> {
      const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
      for (const { labels, value: h } of this.#series) {
        let cum = 0;
        HISTOGRAM_BUCKETS.forEach((le, i) => {
          cum += h.buckets[i] ?? 0;
          values.push({ labels: { ...labels, le }, value: cum, metricName: `${this.#name}_bucket` });
        });
        values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.#name}_bucket` });
        values.push({ labels, value: h.sum, metricName: `${this.#name}_sum` });
        values.push({ labels, value: h.count, metricName: `${this.#name}_count` });
      }
      // prom-client's typings declare MetricType as a numeric enum; at runtime the registry prints this string.
      const type = 'histogram' as unknown as MetricType;
      return { name: this.#name, help: this.#name, type, values, aggregator: 'sum', collect: () => {} };
    }

    /** prom-client's registry prefers this over get(); both give the snapshot's series. */
    async getForPromString(): ReturnType<Histogram['get']> {
      return this.get();
    }
  };
}

/**
 * prom-client, loaded on the first scrape: a process nobody scrapes (or a main thread that also
 * serves traffic) does not carry its ~2 MB of heap.
 */
let prom: { readonly client: PromClient; readonly SnapshotHistogram: ReturnType<typeof snapshotHistogramClass> } | undefined;
async function promClient(): Promise<NonNullable<typeof prom>> {
  if (!prom) {
    const client = await import('prom-client');
    prom ??= { client, SnapshotHistogram: snapshotHistogramClass(client) };
  }
  return prom;
}

/**
 * Renders counters, gauges and histograms (in that order, families sorted by name, as Envoy does)
 * through a fresh prom-client Registry. Envoy prints no `# HELP` lines, so they are dropped.
 */
export async function prometheusText(sel: SelectedStats): Promise<string> {
  const { client: { Counter, Gauge, Registry }, SnapshotHistogram } = await promClient();
  const registry = new Registry();
  const taken = new Set<string>();

  const counters = group(sel.scalars.filter((s) => s.kind === 'counter'), sel.tagged);
  for (const name of sortedKeys(counters)) {
    const fam = counters.get(name)!;
    taken.add(name);
    const c = new Counter({ name, help: name, labelNames: [...fam.labelNames], registers: [registry] });
    for (const s of fam.series) c.inc(s.labels, s.value);
  }

  const gauges = group(sel.scalars.filter((s) => s.kind === 'gauge'), sel.tagged);
  for (const name of sortedKeys(gauges)) {
    if (taken.has(name)) continue;
    const fam = gauges.get(name)!;
    taken.add(name);
    const g = new Gauge({ name, help: name, labelNames: [...fam.labelNames], registers: [registry] });
    // Summed: two stats may sanitise to one series (`a-b`, `a_b`), as counters are.
    for (const s of fam.series) g.inc(s.labels, s.value);
  }

  const histograms = group(sel.histograms.map(({ name, h }) => ({ name, value: h })), sel.tagged);
  for (const name of sortedKeys(histograms)) {
    if (taken.has(name)) continue;
    taken.add(name);
    new SnapshotHistogram(name, histograms.get(name)!.series, registry);
  }

  if (taken.size === 0) return '';
  const text = await registry.metrics();
  return text.replace(/^# HELP .*\n/gm, '').replace(/\n\n/g, '\n');
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; charset=UTF-8';
