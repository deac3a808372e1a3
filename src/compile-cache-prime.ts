// Filling Node's compile cache with every module of legate, so that no start has to load Node's
// TypeScript stripper (bin/legate.js, primeCompileCache: `npm install` runs it). A thread loads
// each module under src/ by `pass`: 'import' (the cache keys the module by its URL) or 'require'
// (by its path, as config/decode.ts loads its decoders); a module is keyed by how it was first
// loaded in that thread, so each pass needs a fresh thread. The two entry modules (cli.ts,
// worker-thread.ts) do nothing while LEGATE_PRIME_COMPILE_CACHE is set.

import { readdirSync } from 'node:fs';
import { createRequire, flushCompileCache } from 'node:module';

export type PrimePass = 'import' | 'require';

const SRC = new URL('./', import.meta.url);

/** Every module under src/, relative to it (the generated proto types are type-only: never loaded). */
export function moduleFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('generated'))
    .sort();
}

/** Loads every module by `pass`, then writes the cache. A module that cannot be required (top-level await) is skipped: run-time code cannot require it either. */
export async function loadAllModules(pass: PrimePass): Promise<number> {
  const files = moduleFiles();
  const req = createRequire(SRC);
  for (const f of files) {
    if (pass === 'import') {
      await import(new URL(f, SRC).href);
      continue;
    }
    try {
      req(`./${f}`);
    } catch {
      // not requirable
    }
  }
  flushCompileCache();
  return files.length;
}
