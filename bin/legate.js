#!/usr/bin/env node
// legate's launcher: runs src/cli.ts on Node >= 24 (type stripping, reusePort). When started by an
// older Node, runs itself again with the Node 24 that `npm install` put in node_modules,
// forwarding signals so SIGTERM still drains.
import { spawn, spawnSync } from 'node:child_process';
import module from 'node:module'; // not { enableCompileCache }: Node 20 (no such export) must reach the version check
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The main thread's young generation, as a semi-space size in MB: a worker thread's 12 MB young
 * generation (src/proxy/worker/worker-pool.ts) is three semi-spaces' worth, so the main thread gets
 * the same 4 MB semi-spaces (4 MB rather than 8 since V8's allocation-site pretenuring is off,
 * src/proxy/worker/v8-flags.ts: peak RSS under 12 B load 118 -> 111 MB, CPU per request the
 * same within the noise). Left to V8, a
 * 24 GB machine gives the main thread's young generation ~130 MB, which a main thread that serves
 * traffic itself (src/proxy/worker/main-thread-worker.ts) filled under load: peak RSS 214 MB
 * instead of 117. V8 reads it only when the isolate is created, so the launcher replaces itself
 * (same pid: signals and pilot-agent see no difference) with a Node given the flag, unless the
 * command line or NODE_OPTIONS already sets it.
 */
const MAIN_SEMI_SPACE_MB = 4;

/**
 * Where compiled and type-stripped modules are cached: NODE_COMPILE_CACHE when set, else this
 * package's node_modules/.cache/legate-compile-cache, which `npm install` fills (primeCompileCache),
 * else, when that cannot be written, Node's default under the temp directory. Worker threads enable
 * the cache too (worker-pool.ts) and find the directory in NODE_COMPILE_CACHE. A start that finds
 * any of legate's modules missing from the cache loads Node's TypeScript stripper, which stays
 * resident: idle RSS with the quick-start config 76 -> 103 MB at --concurrency 1, 98 -> 128 MB at 2.
 * A cache under the temp directory is empty in every new container: a sidecar would pay that on
 * every start. NODE_DISABLE_COMPILE_CACHE=1 turns the cache off.
 */
function enableCompileCache() {
  process.env.NODE_COMPILE_CACHE ??= fileURLToPath(new URL('../node_modules/.cache/legate-compile-cache', import.meta.url));
  if (module.enableCompileCache().status !== module.constants.compileCacheStatus.FAILED) return;
  delete process.env.NODE_COMPILE_CACHE;
  module.enableCompileCache();
}

/**
 * `LEGATE_PRIME_COMPILE_CACHE=1 node bin/legate.js` (npm install's prepare step): loads every
 * module into the cache as the main thread and as a worker thread (their V8 flags differ, so each
 * has its own cache directory), by import and by require (src/compile-cache-prime.ts), then exits.
 * It runs after the same re-exec and start-up flags as a real start, so both find the same
 * directories. The main thread's require pass is a second process (`=require`).
 */
async function primeCompileCache(pass) {
  const { loadAllModules } = await import('../src/compile-cache-prime.ts');
  if (pass === 'require') return loadAllModules('require');
  const n = await loadAllModules('import');
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, LEGATE_PRIME_COMPILE_CACHE: 'require' } });
  if (r.status !== 0) throw new Error(`the require pass failed (${r.status ?? r.signal})`);
  const { primeWorkerCompileCache } = await import('../src/proxy/worker/worker-pool.ts');
  await primeWorkerCompileCache('import');
  await primeWorkerCompileCache('require');
  process.stdout.write(`legate: compile cache primed with ${n} modules (${process.env.NODE_COMPILE_CACHE})\n`);
}

const major = Number(process.versions.node.split('.')[0]);
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
if (major >= 24) {
  const nodeFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (!nodeFlags.some((f) => /^--max[-_]semi[-_]space[-_]size\b/.test(f)) && typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, `--max-semi-space-size=${MAIN_SEMI_SPACE_MB}`, ...process.execArgv, ...process.argv.slice(1)]);
  }
  enableCompileCache();
  // Start-up without Sparkplug, Maglev and TurboFan (src/proxy/worker/v8-flags.ts: ~12 MB less idle RSS); the
  // server turns them back on once it has started (xDS or SDS to fetch) or at the first connection
  // to a listener (a static config). Before any other module compiles.
  const { holdOptimizingCompilers } = await import('../src/proxy/worker/v8-flags.ts');
  holdOptimizingCompilers();
  // Before any module imports node:http: keeps Node's bundled undici out of this thread (~1.5 MB of heap).
  const { importHttpWithoutUndici } = await import('../src/proxy/worker/lazy-http-exports.ts');
  await importHttpWithoutUndici();
  if (process.env.LEGATE_PRIME_COMPILE_CACHE) {
    await primeCompileCache(process.env.LEGATE_PRIME_COMPILE_CACHE);
    process.exit(0);
  }
  await import(cli);
} else {
  const node24 = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(`legate needs Node.js >= 24 (this is ${process.version}); run npm install first\n`);
    process.exit(1);
  }
  const child = spawn(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
