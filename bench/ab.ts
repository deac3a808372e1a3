// Paired A/B: two proxies run at the same time, pinned to the same CPU, each under its own
// autocannon (the load and the upstream on the other CPU), so what the host does to one it does to
// the other. On this noisy 2-core VM a change of a few percent in CPU per request drowns in
// run-to-run swings when the two are timed one after the other; run side by side, the ratio of the
// two figures holds still (an A/A run gives 0.98-1.02).
//
// npm run bench:ab -- <checkout A> <checkout B | nginx | minimal> [--mode http|tcp|h2c|h2up|wasm] [--reps 6] [--duration 5] [--warmup S] [--path /12] [--connections 25] [--close]
// A checkout is a directory with bin/legate.js (e.g. `git worktree add /tmp/base HEAD~1`, plus
// `npm run prepare` there, or src/generated copied in). `nginx` as B runs nginx as the suite does (1
// worker, upstream keepalive; `--mode tcp`: its stream module); `minimal` the suite's minimal Node
// proxy (contestants/minimal-proxy.ts; http, h2c, and tcp: its raw net pipe). `--mode http`: an HCM
// listener (route table, router), autocannon through it; `--mode tcp`: a tcp_proxy listener,
// HTTP/1.1 load through it; `--mode h2c`: the HCM listener under h2c load (`--connections`
// connections × 10 streams; default 5 connections, as the suite's h2-12b) to the HTTP/1.1 upstream,
// the load from nghttp2's h2load when installed (apt-get install nghttp2-client), else from
// bench/h2-load.ts (two of those saturate the load CPU, so each proxy idles half the time and pays
// more per request than under the suite's load); `--mode h2up`: the same h2c load to a cluster with
// http2_protocol_options, the upstream's h2c port (gRPC's shape; legate checkouts only); `--mode wasm`: the HCM listener with the
// wasm-examples/header-filter Proxy-Wasm plugin before the router (legate checkouts only). Prints
// one line per repetition and the median ratio; writes bench/results/ab-<timestamp>.json.
// `--close`: HTTP/1.1 load sends `connection: close` (a new connection per request: the
// per-connection cost). `--warmup S`: load before each measured repetition (default 3 s; 20 s
// against `minimal`, see warmupS).

import autocannon from 'autocannon';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './lib/measure.ts';
import { H2LOAD, h2loadRun, h2ScriptRun } from './lib/h2load.ts';
import { primeCompileCache } from './lib/compile-cache.ts';
import { freePorts, hasTaskset, killAllSync, pinning, processTree, rssSampler, spawnPinned, stopChild, treeCpuSeconds, waitForPort, type Spawned } from './lib/procs.ts';

const PROXY_CPU = 1;
const LOAD_CPU = 0;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    reps: { type: 'string', default: '6' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string' },
    path: { type: 'string', default: '/12' },
    connections: { type: 'string' },
    mode: { type: 'string', default: 'http' },
    close: { type: 'boolean', default: false },
  },
});
const NAMED = new Set(['nginx', 'minimal']);
const [specA, specB] = positionals.map((p) => (NAMED.has(p) ? p : path.resolve(p)));
const mode = values.mode;
const usable = mode === 'http' || mode === 'tcp' || ((mode === 'h2c' || mode === 'wasm' || mode === 'h2up') && specB !== 'nginx');
if (!specA || !specB || NAMED.has(specA) || !usable || (specB === 'minimal' && (mode === 'wasm' || mode === 'h2up'))) {
  process.stderr.write('usage: node bench/ab.ts <checkout A> <checkout B | nginx | minimal> [--mode http|tcp|h2c|h2up|wasm] [--reps N] [--duration S] [--warmup S] [--path /12] [--connections N]\n');
  process.exit(2);
}
const dirA: string = specA;
const dirB: string = specB;
for (const d of [dirA, dirB]) {
  if (!NAMED.has(d) && !existsSync(path.join(d, 'bin/legate.js'))) {
    process.stderr.write(`${d}: no bin/legate.js\n`);
    process.exit(2);
  }
}
const reps = Number(values.reps);
const durationS = Number(values.duration);
/**
 * Seconds of load before each measured repetition (both sides restart every repetition). Two legate
 * checkouts share one heap configuration and settle in 3 s. The minimal proxy's young generation
 * starts small and V8 grows it under load, so for its first seconds it pays more per request than it
 * will: after a 3 s warm-up legate ÷ minimal at h2c measured 0.84–0.96, after 20 s 1.00, as in the
 * suite's pairs between long-running processes. Hence 20 s when B is `minimal`.
 */
const warmupS = Number(values.warmup ?? (dirB === 'minimal' ? 20 : 3));
if (!(warmupS >= 0)) {
  process.stderr.write(`--warmup ${values.warmup}: not a number of seconds\n`);
  process.exit(2);
}
const h2Downstream = mode === 'h2c' || mode === 'h2up';
const connections = Number(values.connections ?? (h2Downstream ? 5 : 25));
const H2_STREAMS = 10;

/** A bootstrap with one listener to the upstream: an HCM (route table, router, stats on, no access log) or a tcp_proxy. */
function bootstrap(listenPort: number, adminPort: number, upstreamPort: number): object {
  const T = 'type.googleapis.com/envoy.extensions';
  const socket = (port: number): object => ({ socket_address: { address: '127.0.0.1', port_value: port } });
  const filter = mode === 'tcp'
    ? { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': `${T}.filters.network.tcp_proxy.v3.TcpProxy`, stat_prefix: 'ab', cluster: 'up' } }
    : {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': `${T}.filters.network.http_connection_manager.v3.HttpConnectionManager`, stat_prefix: 'ab', codec_type: 'AUTO',
        route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] },
        http_filters: [...(mode === 'wasm' ? [wasmFilter(T)] : []), { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}.filters.http.router.v3.Router` } }],
      },
    };
  return {
    admin: { address: socket(adminPort) },
    static_resources: {
      listeners: [{ name: 'ab', address: socket(listenPort), filter_chains: [{ filters: [filter] }] }],
      clusters: [{ name: 'up', connect_timeout: '1s', ...(mode === 'h2up' ? { http2_protocol_options: {} } : {}), load_assignment: { cluster_name: 'up', endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(upstreamPort) } }] }] } }],
    },
  };
}

/** `--mode wasm`: the wasm-examples/header-filter plugin (this checkout's build), as `npm run bench:wasm` runs it. */
function wasmFilter(T: string): object {
  const file = fileURLToPath(new URL('../wasm-examples/header-filter/build/header-filter.wasm', import.meta.url));
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': `${T}.filters.http.wasm.v3.Wasm`,
      config: { name: 'header-filter', root_id: 'header_filter', configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'bench' }, vm_config: { vm_id: 'header-filter', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: file } } } },
    },
  };
}

interface Side {
  readonly child: Spawned;
  readonly port: number;
}

/** nginx as the suite runs it (contestants/native.ts): 1 worker, upstream keepalive 64 / the stream module. */
async function startNginx(cfgDir: string, name: string, upstreamPort: number): Promise<Side> {
  const [port] = (await freePorts(1)) as [number];
  const dir = path.join(cfgDir, name);
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const streamSo = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so'].find((f) => existsSync(f));
  if (mode === 'tcp' && !streamSo) throw new Error('nginx stream module not installed (apt-get install -y libnginx-mod-stream)');
  const conf = [
    ...(mode === 'tcp' ? [`load_module ${streamSo};`] : []),
    'daemon off;', 'master_process on;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/logs/error.log warn;`,
    'events { worker_connections 4096; }',
    mode === 'tcp'
      ? `stream { server { listen 127.0.0.1:${port}; proxy_pass 127.0.0.1:${upstreamPort}; } }`
      : [
        'http {', '  access_log off;', `  client_body_temp_path ${dir}/body;`, `  proxy_temp_path ${dir}/proxy;`, `  fastcgi_temp_path ${dir}/fcgi;`, `  uwsgi_temp_path ${dir}/uwsgi;`, `  scgi_temp_path ${dir}/scgi;`,
        '  keepalive_requests 1000000;', '  keepalive_timeout 120s;',
        `  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 1000000; }`,
        `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
        '}',
      ].join('\n'),
  ].join('\n');
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawnPinned(PROXY_CPU, 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  await waitForPort(port, child);
  return { child, port };
}

/** The suite's minimal Node proxy; in h2c mode its node:http2 listener is the one loaded, in tcp mode its raw pipe. */
async function startMinimal(upstreamPort: number): Promise<Side> {
  const [h1, other] = (await freePorts(2)) as [number, number];
  const script = fileURLToPath(new URL('./contestants/minimal-proxy.ts', import.meta.url));
  const extra = mode === 'h2c' ? { h2: other } : mode === 'tcp' ? { tcp: other } : undefined;
  const child = spawnPinned(PROXY_CPU, process.execPath, [script, String(h1), String(upstreamPort), ...(extra ? [JSON.stringify(extra)] : [])]);
  const port = extra ? other : h1;
  await waitForPort(port, child);
  return { child, port };
}

async function startSide(spec: string, cfgDir: string, name: string, upstreamPort: number): Promise<Side> {
  if (spec === 'nginx') return startNginx(cfgDir, name, upstreamPort);
  if (spec === 'minimal') return startMinimal(upstreamPort);
  return startLegate(spec, cfgDir, name, upstreamPort);
}

async function startLegate(dir: string, cfgDir: string, name: string, upstreamPort: number): Promise<Side> {
  const [port, admin] = (await freePorts(2)) as [number, number];
  const file = path.join(cfgDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(bootstrap(port, admin, upstreamPort)));
  const child = spawnPinned(PROXY_CPU, process.execPath, [path.join(dir, 'bin/legate.js'), '-c', file, '--concurrency', '1']);
  await waitForPort(port, child);
  return { child, port };
}

/** Both loads at once; CPU seconds of each proxy's process tree over the same window. */
async function loadBoth(a: Side, b: Side, seconds: number): Promise<{ cpu: [number, number]; requests: [number, number]; errors: number; peakRssMB: [number, number] }> {
  const trees = [processTree(a.child.pid), processTree(b.child.pid)] as const;
  const c0 = [treeCpuSeconds(trees[0]), treeCpuSeconds(trees[1])];
  const peaks = [rssSampler(trees[0]), rssSampler(trees[1])] as const;
  const load = h2Downstream ? (s: Side) => h2Load(s, seconds) : (s: Side) => h1Load(s, seconds);
  const [ra, rb] = await Promise.all([load(a), load(b)]);
  return {
    cpu: [treeCpuSeconds(trees[0]) - c0[0]!, treeCpuSeconds(trees[1]) - c0[1]!],
    requests: [ra.requests, rb.requests],
    errors: ra.errors + rb.errors,
    peakRssMB: [peaks[0]() / 1048576, peaks[1]() / 1048576],
  };
}

interface LoadResult {
  readonly requests: number;
  readonly errors: number;
}

async function h1Load(s: Side, seconds: number): Promise<LoadResult> {
  const r = await autocannon({ url: `http://127.0.0.1:${s.port}${values.path}`, connections, duration: seconds, ...(values.close ? { headers: { connection: 'close' } } : {}) });
  return { requests: r.requests.total, errors: r.errors + r.non2xx };
}

/** h2c load on the load CPU (autocannon speaks only HTTP/1.1): h2load, else bench/h2-load.ts as the suite runs it. */
async function h2Load(s: Side, seconds: number): Promise<LoadResult> {
  if (H2LOAD) return h2loadRun(`http://127.0.0.1:${s.port}${values.path}`, connections, H2_STREAMS, seconds, LOAD_CPU);
  return h2ScriptRun(`http://127.0.0.1:${s.port}`, values.path, connections, H2_STREAMS, seconds, LOAD_CPU);
}

interface Rep {
  readonly usPerRequest: [number, number];
  /** Peak RSS of each side's process tree during the measured load, MB. */
  readonly peakRssMB: [number, number];
  readonly requests: [number, number];
  readonly ratio: number;
}

async function main(): Promise<void> {
  // As run.ts: this process (autocannon runs in it) on the load CPU, the proxies on the other.
  pinning.enabled = os.availableParallelism() >= 2 && hasTaskset() && spawnSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' }).status === 0;
  process.stdout.write(pinning.enabled ? `pinning: both proxies on CPU ${PROXY_CPU}; upstream and autocannon on CPU ${LOAD_CPU}\n` : 'pinning: skipped (needs 2 CPUs and taskset)\n');
  const cfgDir = mkdtempSync(path.join(tmpdir(), 'legate-ab-'));
  const upstream = spawnPinned(LOAD_CPU, process.execPath, [fileURLToPath(new URL('./upstream.ts', import.meta.url))]);
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    let out = '';
    upstream.proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = (mode === 'h2up' ? /"h2":(\d+)/ : /"h1":(\d+)/).exec(out);
      if (m) resolve(Number(m[1]));
    });
    upstream.proc.once('exit', (code) => reject(new Error(`upstream exited (${code})`)));
  });
  for (const d of [dirA, dirB]) {
    const err = NAMED.has(d) ? undefined : primeCompileCache(d);
    if (err) process.stdout.write(`note: ${d}: compile cache not primed (${err})\n`);
  }
  const results: Rep[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      // Which one starts first alternates, so neither always gets the warmer start.
      const [first, second] = r % 2 === 0 ? [dirA, dirB] : [dirB, dirA];
      const s1 = await startSide(first, cfgDir, `r${r}-1`, upstreamPort);
      const s2 = await startSide(second, cfgDir, `r${r}-2`, upstreamPort);
      const [a, b] = r % 2 === 0 ? [s1, s2] : [s2, s1];
      try {
        await loadBoth(a, b, warmupS); // JIT warm-up, pools filled
        const m = await loadBoth(a, b, durationS);
        if (m.errors > 0) process.stdout.write(`rep ${r + 1}: ${m.errors} errors\n`);
        const us = m.cpu.map((c, i) => (c / m.requests[i]!) * 1e6) as [number, number];
        const rep: Rep = { usPerRequest: us, peakRssMB: m.peakRssMB, requests: m.requests, ratio: us[0] / us[1] };
        results.push(rep);
        process.stdout.write(`rep ${r + 1}: A ${us[0].toFixed(1)} µs/req (${m.requests[0]} req, ${m.peakRssMB[0].toFixed(0)} MB) | B ${us[1].toFixed(1)} µs/req (${m.requests[1]} req, ${m.peakRssMB[1].toFixed(0)} MB) | A/B ${rep.ratio.toFixed(3)}\n`);
      } finally {
        await Promise.all([stopChild(s1.child), stopChild(s2.child)]);
      }
    }
  } finally {
    await stopChild(upstream);
  }
  const ratios = results.map((x) => x.ratio);
  process.stdout.write(`median A/B CPU per request: ${median(ratios).toFixed(3)} (min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)}, ${results.length} reps)\n`);
  const rss = (i: 0 | 1): string => median(results.map((x) => x.peakRssMB[i])).toFixed(0);
  process.stdout.write(`median peak RSS under load: A ${rss(0)} MB, B ${rss(1)} MB\n`);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ a: dirA, b: dirB, mode, path: values.path, connections, durationS, reps: results, medianRatio: median(ratios) }, null, 2));
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});
main().catch((err: unknown) => {
  killAllSync();
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
