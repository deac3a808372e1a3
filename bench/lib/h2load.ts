// nghttp2's h2load as an h2c load generator (Debian package nghttp2-client), run pinned on the load
// CPU. Written in C, one h2load keeps a proxy busy on a fraction of that CPU, so two can load two
// proxies at once (the paired runs); two of bench/h2-load.ts saturate it instead.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnPinned } from './procs.ts';

/** The h2load binary, when installed. */
export const H2LOAD: string | undefined = ['/usr/bin/h2load', '/usr/local/bin/h2load'].find((f) => existsSync(f));

export interface H2loadResult {
  /** Streams that completed with a response. */
  readonly requests: number;
  /** Streams that errored (failed ones are those still open when the time was up: not the proxy's doing). */
  readonly errors: number;
  readonly seconds: number;
}

/** `connections` × `streams` in flight to `url` for `seconds`, h2load pinned to `cpu`. */
export async function h2loadRun(url: string, connections: number, streams: number, seconds: number, cpu: number): Promise<H2loadResult> {
  if (!H2LOAD) throw new Error('h2load not installed (apt-get install nghttp2-client)');
  const t0 = performance.now();
  const child = spawnPinned(cpu, H2LOAD, ['-c', String(connections), '-m', String(streams), '-D', String(seconds), url]);
  // 'close', not 'exit': 'exit' may come before the last of its output has been read.
  const code = await new Promise<number | null>((r) => child.proc.once('close', (c) => r(c)));
  // "requests: 1000 total, 1000 started, 1000 done, 998 succeeded, 2 failed, 0 errored, 0 timeout"
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(child.output());
  // h2load may exit non-zero when streams were still open at the end of its run: its summary counts.
  if (!m || Number(m[1]) === 0) throw new Error(`h2load on ${url} failed (exit ${code}): ${child.output().trim().split('\n').slice(-4).join(' | ')}`);
  return { requests: Number(m[1]), errors: Number(m[3]), seconds: (performance.now() - t0) / 1000 };
}

/** What bench/h2-load.ts prints (one JSON line). */
export interface H2ScriptResult { requests: number; seconds: number; p50Ms: number; p90Ms: number; p99Ms: number; errors: number }

const H2_LOAD_SCRIPT = fileURLToPath(new URL('../h2-load.ts', import.meta.url));

/** bench/h2-load.ts (node:http2, latency samples too) against `origin` + `path`, pinned to `cpu`. */
export async function h2ScriptRun(origin: string, path: string, connections: number, streams: number, seconds: number, cpu: number): Promise<H2ScriptResult> {
  const child = spawnPinned(cpu, process.execPath, [H2_LOAD_SCRIPT, origin, path, String(connections), String(streams), String(seconds)]);
  const code = await new Promise<number | null>((r) => child.proc.once('close', (c) => r(c)));
  const line = child.output().trim().split('\n').find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`h2 load generator failed (${code}): ${child.output().slice(-300)}`);
  return JSON.parse(line) as H2ScriptResult;
}
