// legate's compile cache filled as `npm install` fills it (bin/legate.js), before a bench starts a
// legate: a module edited since the install would otherwise be type-stripped when legate starts,
// and Node's stripper would stay in that process's memory (27-30 MB per thread), which is not how
// an installed legate runs.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** Primes the checkout in `dir`; undefined when done, else what went wrong. */
export function primeCompileCache(dir: string): string | undefined {
  const r = spawnSync(process.execPath, [join(dir, 'bin/legate.js')], { env: { ...process.env, LEGATE_PRIME_COMPILE_CACHE: '1' }, encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? undefined : `${r.stderr || r.stdout}`.trim() || `exit ${r.status ?? r.signal}`;
}
