// The launcher's compile cache (bin/legate.js): primed the way `npm install` primes it, a start
// through the launcher at --concurrency 2 (worker 0 on the main thread, worker 1 a worker thread)
// finds every module it loads already type-stripped, so Node's TypeScript stripper is never
// loaded (it would stay resident: ~27 MB per thread). Node's own compile-cache debug log says so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLegate } from '../helpers/legate.ts';
import { httpBootstrap } from '../helpers/config.ts';

const LAUNCHER = fileURLToPath(new URL('../../bin/legate.js', import.meta.url));

test('a primed compile cache: a start through the launcher strips no TypeScript, on the main thread nor on a worker thread', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-compile-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, NODE_COMPILE_CACHE: dir };
  const prime = spawnSync(process.execPath, [LAUNCHER], { env: { ...env, LEGATE_PRIME_COMPILE_CACHE: '1' }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(prime.status, 0, prime.stderr);
  assert.match(prime.stdout, /^legate: compile cache primed with \d+ modules/m);
  // The entry modules did nothing: no usage error, no server.
  assert.doesNotMatch(prime.stderr, /legate:|serving/);
  // One directory for the main thread's V8 flags, one for a worker thread's.
  assert.equal(readdirSync(dir).length, 2, readdirSync(dir).join(', '));

  const bootstrap = httpBootstrap({ routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'cached' } } }] });
  const legate = await startLegate(bootstrap, { entry: LAUNCHER, concurrency: 2, env: { ...env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } });
  t.after(() => legate.stop());
  const port = await legate.listenerPort('http');
  for (let i = 0; i < 4; i++) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'cached');
  const log = `${legate.stdout()}${legate.stderr()}`;
  assert.match(log, /serving 1 listener\(s\) on 2 worker\(s\) \(worker 0 on the main thread\)/);
  const hits = log.match(/retrieving transpile cache for StrippedTypeScript .*success/g) ?? [];
  assert.ok(hits.length > 50, `transpile cache hits: ${hits.length}`);
  const misses = log.match(/no transpile cache for StrippedTypeScript .*/g) ?? [];
  assert.deepEqual(misses, []);
  // Both threads used the primed directories (the worker thread's flags differ from the main thread's).
  const used = new Set([...log.matchAll(/resolved path .* -> (\S+)/g)].map((m) => m[1]));
  assert.deepEqual([...used].sort(), readdirSync(dir).map((d) => join(dir, d)).sort());
});
