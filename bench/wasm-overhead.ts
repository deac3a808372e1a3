// The cost of one Proxy-Wasm filter on the hot path (`npm run bench:wasm`): one legate process
// (1 worker) with two listeners on the same route to one upstream — plain, and with the
// header-filter example plugin (adds a header each way) before the router. autocannon alternates
// between them (3 repetitions each, medians); the table gives req/s, latency and legate's CPU
// seconds per 1,000 requests, and the ratios; JSON goes to bench/results/wasm-overhead-<time>.json.
// Flags: --quick (1 repetition of 3 s), --connections N (default 50), --duration S (default 8).

import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startLegate } from '../test/helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../test/helpers/wasm.ts';
import { medianFigures, rssBytes, run, type RunFigures } from './lib/measure.ts';
import { hasTaskset } from './lib/procs.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const connections = flag('--connections', 50);
const durationS = quick ? 3 : flag('--duration', 8);
const reps = quick ? 1 : 3;

const body = Buffer.from('hello world\n'); // 12 B
const upstream = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
upstream.keepAliveTimeout = 60_000;
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = (upstream.address() as net.AddressInfo).port;

const withWasm = wasmBootstrap([{ name: 'header-filter', rootId: 'header_filter', file: examplePlugin('header-filter'), configuration: 'bench' }], { app: upPort });
const plain = wasmBootstrap([], { app: upPort });
// One process, two listeners: `ingress` with the plugin, `plain` without.
const listeners = (withWasm.static_resources as { listeners: Array<Record<string, unknown>> }).listeners;
listeners.push({ ...(plain.static_resources as { listeners: Array<Record<string, unknown>> }).listeners[0]!, name: 'plain' });
const legate = await startLegate(withWasm, { concurrency: 1, args: ['-l', 'warning'] });
const pid = legate.proc.pid!;
// Pinned as the suite pins: legate (all its threads) on CPU 1, this process (autocannon and the
// upstream) on CPU 0. Unpinned, legate's CPU per request moved with the load generator's share.
const pinned = hasTaskset() && [[1, pid], [0, process.pid]].every(([cpu, p]) => spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(p)], { stdio: 'ignore' }).status === 0);
process.stdout.write(pinned ? 'pinning: legate on CPU 1; autocannon and the upstream on CPU 0\n' : 'pinning: off (taskset missing or refused)\n');
const ports = { wasm: await legate.listenerPort('ingress'), plain: await legate.listenerPort('plain') };
const rssBefore = rssBytes(pid);

const results: Record<'plain' | 'wasm', RunFigures[]> = { plain: [], wasm: [] };
// Warm both paths (JIT, pools, the VM).
for (const k of ['plain', 'wasm'] as const) await run(`http://127.0.0.1:${ports[k]}/`, pid, { connections, durationS: 1 });
for (let i = 0; i < reps; i++) {
  for (const k of i % 2 === 0 ? (['plain', 'wasm'] as const) : (['wasm', 'plain'] as const)) {
    results[k].push(await run(`http://127.0.0.1:${ports[k]}/`, pid, { connections, durationS }));
  }
}
const rssAfter = rssBytes(pid);
await legate.stop();
upstream.close();

const m = { plain: medianFigures(results.plain), wasm: medianFigures(results.wasm) };
const row = (name: string, f: RunFigures): string =>
  `| ${name.padEnd(27)} | ${f.requestsPerSecond.toFixed(0).padStart(8)} | ${f.p50Ms.toFixed(1).padStart(6)} | ${f.p99Ms.toFixed(1).padStart(6)} | ${f.cpuPer1k.toFixed(4).padStart(10)} | ${String(f.errors).padStart(6)} |`;
const lines = [
  `wasm overhead: HTTP/1.1 keep-alive, 12 B, ${connections} connections, ${durationS} s × ${reps} (medians), legate 1 worker${pinned ? ' on CPU 1' : ''}`,
  '| route                       |    req/s | p50 ms | p99 ms | CPU s / 1k | errors |',
  '|-----------------------------|----------|--------|--------|------------|--------|',
  row('router only', m.plain),
  row('header-filter.wasm + router', m.wasm),
  '',
  `ratios (wasm / plain): req/s ${(m.wasm.requestsPerSecond / m.plain.requestsPerSecond).toFixed(2)}, CPU per request ${(m.wasm.cpuPer1k / m.plain.cpuPer1k).toFixed(2)}, p50 ${(m.wasm.p50Ms / Math.max(m.plain.p50Ms, 0.001)).toFixed(2)}`,
  `RSS: ${(rssBefore / 1048576).toFixed(0)} MiB before, ${(rssAfter / 1048576).toFixed(0)} MiB after`,
];
process.stdout.write(`${lines.join('\n')}\n`);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}wasm-overhead-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ scenario: 'wasm-overhead', pinned, connections, durationS, reps, runs: results, medians: m, rssBefore, rssAfter }, null, 2));
process.stdout.write(`wrote ${file}\n`);
