// Shared bench plumbing: run autocannon against a URL while sampling a process's CPU time from
// /proc/<pid>/stat (user + system, all threads), and summarise repetitions by their median.

import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export interface RunFigures {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Proxy CPU seconds per 1,000 requests. */
  readonly cpuPer1k: number;
  readonly errors: number;
  readonly requests: number;
}

export async function run(url: string, pid: number, o: { connections: number; durationS: number; headers?: Record<string, string> }): Promise<RunFigures> {
  const cpu0 = cpuSeconds(pid);
  const r = await autocannon({ url, connections: o.connections, duration: o.durationS, ...(o.headers ? { headers: o.headers } : {}) });
  const cpu = cpuSeconds(pid) - cpu0;
  const requests = r.requests.total;
  return {
    requestsPerSecond: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    cpuPer1k: requests > 0 ? (cpu / requests) * 1000 : Number.NaN,
    errors: r.errors + r.non2xx,
    requests,
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function medianFigures(runs: readonly RunFigures[]): RunFigures {
  const pick = (k: keyof RunFigures): number => median(runs.map((r) => r[k]));
  return { requestsPerSecond: pick('requestsPerSecond'), p50Ms: pick('p50Ms'), p99Ms: pick('p99Ms'), cpuPer1k: pick('cpuPer1k'), errors: pick('errors'), requests: pick('requests') };
}
