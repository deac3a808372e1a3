// The side-by-side benchmark suite (`npm run bench`): mints certificates, starts an upstream and
// every contestant the selected scenarios need (direct, legate, nginx, HAProxy, http-proxy, the
// minimal Node proxy, legate --concurrency 2, legate-ext with the filter and Proxy-Wasm routes),
// pins the proxy under test to CPU 1 and the upstream + load generator (this process) to CPU 0,
// runs each scenario with the contestants interleaved per repetition, and prints medians and
// ratios; JSON and a Markdown summary go to bench/results/<timestamp>.{json,md}.
// Flags: --quick (1 rep, 2 s runs, quick scenarios), --only a,b (contestants), --scenarios x,y,
// --duration S, --reps N, --warmup S, --prime S (JIT warm-up per contestant), --out-dir DIR,
// --no-install (never apt-get install), --no-pairs (skip the paired runs that judge the ratio
// targets, bench/targets.ts).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTESTANTS } from './contestants/index.ts';
import type { Running, Upstream } from './contestants/types.ts';
import { hasTaskset, pinning, spawnPinned, stopChild, type Spawned } from './lib/procs.ts';
import { mintPki } from './lib/pki.ts';
import { summarise, tables, type RunRecord } from './report.ts';
import { measure, SCENARIOS } from './scenarios.ts';
import { runPairs, targetRows, targetTable, type PairResult } from './targets.ts';
import { H2LOAD } from './lib/h2load.ts';
import { primeCompileCache } from './lib/compile-cache.ts';

const PROXY_CPU = 1;
const LOAD_CPU = 0;
/** Paired runs per ratio target (at least): a pair's ratio still moved ±15% between pairs on this host. */
const PAIR_REPS = 5;

const args = process.argv.slice(2);
const has = (f: string): boolean => args.includes(f);
const opt = (f: string): string | undefined => { const i = args.indexOf(f); return i >= 0 ? args[i + 1] : undefined; };
const list = (f: string): string[] | undefined => opt(f)?.split(',').map((s) => s.trim()).filter(Boolean);
const quick = has('--quick');
const durationS = Number(opt('--duration') ?? (quick ? 2 : 5));
const reps = Number(opt('--reps') ?? (quick ? 1 : 3));
const warmupS = Number(opt('--warmup') ?? 1);
// JIT warm-up: each contestant first serves its first scenario this long, unmeasured (V8 keeps
// optimising legate's larger hot path for ~10 s of load: CPU per request fell 0.094 → 0.054 s/1k
// over five 5 s runs of one process; nginx and HAProxy need none, but all get the same).
const primeS = Number(opt('--prime') ?? (quick ? 1 : 10));
const only = list('--only');
const scenarioIds = list('--scenarios');
const outDir = opt('--out-dir') ?? fileURLToPath(new URL('./results/', import.meta.url));
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const note = (s: string): void => void process.stderr.write(`${s}\n`);

for (const id of scenarioIds ?? []) if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario '${id}' (have ${SCENARIOS.map((s) => s.id).join(', ')})`);
for (const c of only ?? []) if (!CONTESTANTS.some((x) => x.name === c)) throw new Error(`unknown contestant '${c}' (have ${CONTESTANTS.map((x) => x.name).join(', ')})`);
const scenarios = SCENARIOS.filter((s) => (scenarioIds ? scenarioIds.includes(s.id) : !quick || s.quick));
const serves = (s: (typeof SCENARIOS)[number], c: (typeof CONTESTANTS)[number]): boolean => (s.contestants ? s.contestants.includes(c.name) : !c.listedOnly);
// Contestants no selected scenario uses are not started.
const contestants = CONTESTANTS.filter((c) => (!only || only.includes(c.name)) && scenarios.some((s) => serves(s, c)));
const skipped: Array<{ contestant: string; scenario?: string; reason: string }> = [];
const skip = (contestant: string, reason: string, scenario?: string): void => {
  skipped.push({ contestant, reason, ...(scenario ? { scenario } : {}) });
  say(`skip ${contestant}${scenario ? ` in ${scenario}` : ''}: ${reason}`);
};

// Pinning: this process (autocannon) and the upstream on CPU 0, the proxy under test on CPU 1.
let pinLine: string;
if (os.availableParallelism() < 2) pinLine = `pinning skipped: ${os.availableParallelism()} CPU available, need 2`;
else if (!hasTaskset()) pinLine = 'pinning skipped: taskset not found (util-linux)';
else if (spawnSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' }).status !== 0) pinLine = 'pinning skipped: taskset -p failed';
else {
  pinning.enabled = true;
  pinLine = `pinning: proxy under test on CPU ${PROXY_CPU}; upstream, load generator (autocannon in the suite, h2 load child) on CPU ${LOAD_CPU}`;
}
say(pinLine);

// Install nginx / HAProxy when wanted and missing (Debian packages; root only).
const onPath = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;
const wantedPkgs = [
  ...(contestants.some((c) => c.name === 'nginx') && (!onPath('nginx') || !existsSync('/usr/lib/nginx/modules/ngx_stream_module.so')) ? ['nginx', 'libnginx-mod-stream'] : []),
  ...(contestants.some((c) => c.name === 'haproxy') && !onPath('haproxy') ? ['haproxy'] : []),
  // The paired h2c run loads two proxies at once: h2load can, two bench/h2-load.ts cannot.
  ...(!has('--no-pairs') && scenarios.some((s) => s.h2Streams !== undefined) && !H2LOAD ? ['nghttp2-client'] : []),
];
if (wantedPkgs.length && !has('--no-install')) {
  if (process.getuid?.() !== 0 || !onPath('apt-get')) say(`not installing ${wantedPkgs.join(' ')}: needs root and apt-get`);
  else {
    say(`installing ${wantedPkgs.join(' ')} (apt-get)…`);
    spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${wantedPkgs.join(' ')}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
}

const dir = mkdtempSync(join(os.tmpdir(), 'legate-bench-'));
const started = new Map<string, Running>();
let upstreamChild: Spawned | undefined;
const runs: RunRecord[] = [];
let pairs: PairResult[] = [];
const startedAt = new Date();

try {
  const pki = mintPki(dir);
  const clientCert = { cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) };
  upstreamChild = spawnPinned(LOAD_CPU, process.execPath, [fileURLToPath(new URL('./upstream.ts', import.meta.url)), pki.caFile, pki.server.cert, pki.server.key]);
  const deadline = Date.now() + 15_000;
  while (!upstreamChild.output().includes('}')) {
    if (Date.now() > deadline || upstreamChild.proc.exitCode !== null) throw new Error(`upstream did not start: ${upstreamChild.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const upstream = JSON.parse(upstreamChild.output().slice(0, upstreamChild.output().indexOf('}') + 1)) as Upstream;

  const primeError = primeCompileCache(fileURLToPath(new URL('..', import.meta.url)));
  if (primeError) say(`note: legate's compile cache could not be primed (${primeError}); legate may carry Node's TypeScript stripper`);
  for (const c of contestants) {
    try {
      const r = await c.start({ upstream, dir, cpu: PROXY_CPU, pki });
      started.set(c.name, r);
      say(`started ${c.name} (${r.version}): ${c.describe}`);
      if (r.note) say(`note ${c.name}: ${r.note}`);
    } catch (e) {
      skip(c.name, `cannot start: ${(e as Error).message}`);
    }
  }

  const names = [...started.keys()];
  say(`scenarios: ${scenarios.map((s) => s.id).join(', ')}; ${reps} repetition(s) × ${durationS} s, warm-up ${warmupS} s per scenario after a ${primeS} s JIT warm-up per contestant; contestants interleaved per repetition`);
  if (primeS > 0) {
    for (const [name, r] of started) {
      const s = scenarios.find((x) => serves(x, CONTESTANTS.find((c) => c.name === name)!) && r.ports[x.listener] !== undefined);
      if (s) await measure(s, r.ports[s.listener]!, r.pids(), primeS, LOAD_CPU, clientCert).catch(() => undefined);
    }
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const s of scenarios) {
      // Rows: each contestant on the scenario's listener, plus the baseline row (another listener
      // of one contestant) right after it; rotated per repetition.
      const rows = names.filter((n) => serves(s, CONTESTANTS.find((c) => c.name === n)!)).flatMap((n) => [
        { row: n, name: n, listener: s.listener },
        ...(s.baseline?.contestant === n ? [{ row: s.baseline.row, name: n, listener: s.baseline.listener }] : []),
      ]);
      const order = rows.slice(rep % Math.max(1, rows.length)).concat(rows.slice(0, rep % Math.max(1, rows.length)));
      for (const { row, name, listener } of order) {
        const r = started.get(name)!;
        const port = r.ports[listener];
        if (port === undefined) {
          if (rep === 0) skip(row, r.missing[listener] ?? `no ${listener} listener`, s.id);
          continue;
        }
        try {
          const pids = r.pids();
          if (rep === 0 && warmupS > 0) await measure(s, port, pids, warmupS, LOAD_CPU, clientCert);
          const figures = await measure(s, port, pids, durationS, LOAD_CPU, clientCert);
          runs.push({ scenario: s.id, contestant: row, rep, figures });
          note(`rep ${rep + 1}/${reps} ${s.id.padEnd(12)} ${row.padEnd(16)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s  CPU ${Number.isFinite(figures.cpuPer1k) ? figures.cpuPer1k.toFixed(4) : '–'} s/1k  errors ${figures.errors}`);
        } catch (e) {
          skip(row, `run failed: ${(e as Error).message}`, s.id);
        }
      }
    }
  }
  if (!has('--no-pairs')) {
    say('paired runs (each pair loaded at once, both on the proxy CPU): the ratio targets');
    pairs = await runPairs({ started, scenarios, reps: quick ? reps : Math.max(reps, PAIR_REPS), durationS, warmupS: quick ? 1 : 2, loadCpu: LOAD_CPU, clientCert, say: note, skip });
  }
} finally {
  for (const [name, r] of started) await r.stop().catch((e: Error) => note(`stopping ${name}: ${e.message}`));
  if (upstreamChild) await stopChild(upstreamChild);
  rmSync(dir, { recursive: true, force: true });
}

const summaries = summarise(runs, Object.fromEntries(scenarios.flatMap((s) => (s.baseline ? [[s.id, s.baseline.row]] : []))));
const order = contestants.map((c) => c.name);
const table = `${tables(summaries, scenarios, order)}\n${targetTable(targetRows(summaries, pairs))}`;
const meta = {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', kernel: os.release(), node: process.version },
  pinning: pinLine,
  quick,
  reps,
  durationS,
  warmupS,
  contestants: contestants.map((c) => ({ name: c.name, describe: c.describe, version: started.get(c.name)?.version ?? null, ...(started.get(c.name)?.note ? { note: started.get(c.name)!.note } : {}) })),
  scenarios,
};
say('');
say(table);
mkdirSync(outDir, { recursive: true });
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const jsonFile = join(outDir, `${stamp}.json`);
const mdFile = join(outDir, `${stamp}.md`);
writeFileSync(jsonFile, JSON.stringify({ meta, skipped, runs, medians: summaries, pairs, targets: targetRows(summaries, pairs) }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
const md = [
  `# legate side-by-side benchmark, ${meta.startedAt}`,
  '',
  `${meta.host.cpus} × ${meta.host.model}, Linux ${meta.host.kernel}, Node ${meta.host.node}. ${pinLine}.`,
  `${reps} repetition(s) × ${durationS} s per contestant and scenario (medians), warm-up ${warmupS} s per scenario after a ${primeS} s JIT warm-up per contestant${quick ? ', --quick' : ''}. CPU: user + system of all the contestant's processes from /proc/<pid>/stat; vCPU = CPU s per wall s; peak RSS summed over its processes, sampled every 100 ms.`,
  '',
  '| contestant | version | setup |', '|---|---|---|',
  ...meta.contestants.map((c) => `| ${c.name} | ${c.version ?? 'not started'} | ${c.describe}${c.note ? ` (note: ${c.note})` : ''} |`),
  '',
  table,
  ...(skipped.length ? ['### skipped', '', ...skipped.map((s) => `- ${s.contestant}${s.scenario ? ` in ${s.scenario}` : ''}: ${s.reason}`), ''] : []),
].join('\n');
writeFileSync(mdFile, md);
say(`wrote ${jsonFile}`);
say(`wrote ${mdFile}`);
