// Summarising the suite's runs: medians per (scenario, contestant) over the repetitions, ratios
// to direct, nginx and the minimal Node proxy (and to a scenario's baseline row, e.g. legate's plain
// route beside its filter route), latency added over direct, and the Markdown tables printed on
// stdout and written to bench/results/<timestamp>.md.

import { median } from './lib/measure.ts';
import type { Figures, Scenario } from './scenarios.ts';

export interface RunRecord {
  readonly scenario: string;
  readonly contestant: string;
  readonly rep: number;
  readonly figures: Figures;
}

export interface Ratios {
  readonly rpsVsDirect: number;
  readonly rpsVsNginx: number;
  readonly rpsVsMinimal: number;
  readonly cpuVsNginx: number;
  readonly cpuVsMinimal: number;
  /** Latency added over direct (ms). */
  readonly addedP50Ms: number;
  readonly addedP90Ms: number;
  readonly addedP99Ms: number;
  /** To the scenario's baseline row (NaN when it has none). */
  readonly rpsVsBaseline: number;
  readonly cpuVsBaseline: number;
}

export interface Summary {
  readonly figures: Figures;
  readonly ratios: Ratios;
  readonly reps: number;
}

export type Summaries = Record<string, Record<string, Summary>>;

const KEYS = ['requests', 'seconds', 'requestsPerSecond', 'p50Ms', 'p90Ms', 'p99Ms', 'cpuSeconds', 'cpuPer1k', 'vcpu', 'peakRssMB', 'errors'] as const;

function medianOf(runs: readonly Figures[]): Figures {
  const out: Record<string, number> = {};
  for (const k of KEYS) out[k] = median(runs.map((r) => r[k]));
  return out as unknown as Figures;
}

/** `baselines`: scenario id → the row the others are compared with (Scenario.baseline.row). */
export function summarise(runs: readonly RunRecord[], baselines: Readonly<Record<string, string>> = {}): Summaries {
  const grouped = new Map<string, Map<string, Figures[]>>();
  for (const r of runs) {
    const byC = grouped.get(r.scenario) ?? new Map<string, Figures[]>();
    grouped.set(r.scenario, byC);
    byC.set(r.contestant, [...(byC.get(r.contestant) ?? []), r.figures]);
  }
  const out: Summaries = {};
  for (const [scenario, byC] of grouped) {
    const med = new Map([...byC].map(([c, fs]) => [c, medianOf(fs)]));
    const ref = (c: string): Figures | undefined => med.get(c);
    const div = (a: number, b: number | undefined): number => (b === undefined || !Number.isFinite(b) || b === 0 ? Number.NaN : a / b);
    out[scenario] = {};
    const base = baselines[scenario] === undefined ? undefined : ref(baselines[scenario]);
    for (const [c, f] of med) {
      const d = ref('direct');
      out[scenario][c] = {
        figures: f,
        reps: byC.get(c)!.length,
        ratios: {
          rpsVsDirect: div(f.requestsPerSecond, d?.requestsPerSecond),
          rpsVsNginx: div(f.requestsPerSecond, ref('nginx')?.requestsPerSecond),
          rpsVsMinimal: div(f.requestsPerSecond, ref('minimal')?.requestsPerSecond),
          cpuVsNginx: div(f.cpuPer1k, ref('nginx')?.cpuPer1k),
          cpuVsMinimal: div(f.cpuPer1k, ref('minimal')?.cpuPer1k),
          addedP50Ms: d ? f.p50Ms - d.p50Ms : Number.NaN,
          addedP90Ms: d ? f.p90Ms - d.p90Ms : Number.NaN,
          addedP99Ms: d ? f.p99Ms - d.p99Ms : Number.NaN,
          rpsVsBaseline: div(f.requestsPerSecond, base?.requestsPerSecond),
          cpuVsBaseline: div(f.cpuPer1k, base?.cpuPer1k),
        },
      };
    }
  }
  return out;
}

const n = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const signed = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(2)}` : '–');

/** One Markdown table per scenario, in scenario order, contestants in the order given. */
export function tables(summaries: Summaries, scenarios: readonly Scenario[], order: readonly string[]): string {
  const parts: string[] = [];
  for (const s of scenarios) {
    const byC = summaries[s.id];
    if (!byC) continue;
    const rate = s.rate !== undefined;
    const b = s.baseline;
    const head = ['contestant', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU s/1k', 'vCPU', 'peak RSS MB', 'errors', 'req/s ÷ direct', '÷ nginx', '÷ minimal', 'CPU ÷ nginx', 'CPU ÷ minimal', ...(rate ? ['added p50/p90/p99 ms'] : []), ...(b ? [`req/s ÷ ${b.row}`, `CPU ÷ ${b.row}`] : [])];
    const rowOrder = order.flatMap((c) => (b && c === b.contestant ? [c, b.row] : [c]));
    const rows = rowOrder.filter((c) => byC[c]).map((c) => {
      const { figures: f, ratios: r } = byC[c]!;
      return [c, n(f.requestsPerSecond, 0), n(f.p50Ms, 2), n(f.p90Ms, 2), n(f.p99Ms, 2), n(f.cpuPer1k, 4), n(f.vcpu, 3), n(f.peakRssMB, 0), n(f.errors, 0), n(r.rpsVsDirect, 2), n(r.rpsVsNginx, 2), n(r.rpsVsMinimal, 2), n(r.cpuVsNginx, 2), n(r.cpuVsMinimal, 2), ...(rate ? [`${signed(r.addedP50Ms)} / ${signed(r.addedP90Ms)} / ${signed(r.addedP99Ms)}`] : []), ...(b ? [n(r.rpsVsBaseline, 2), n(r.cpuVsBaseline, 2)] : [])];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
    parts.push(`### ${s.id}: ${s.describe}`, '', line(head), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line), '');
  }
  return parts.join('\n');
}
