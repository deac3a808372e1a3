// glibc's malloc_trim from Node: the Node-API addon beside this file (malloc_trim.c), built by
// `npm install` (scripts/build-native.sh). Without it (no C compiler, or no glibc) trimming is
// skipped: only resident memory is at stake.

import { createRequire } from 'node:module';

interface Addon {
  trim(minFree: number): [number, number] | undefined;
}

let addon: Addon | null | undefined;

function load(): Addon | null {
  if (addon !== undefined) return addon;
  try {
    addon = createRequire(import.meta.url)('./build/Release/malloc_trim.node') as Addon;
  } catch {
    addon = null;
  }
  return addon;
}

/**
 * Free bytes malloc held before and after (mallinfo2's fordblks): trimmed only when there were at
 * least `minFree`. Pages a trim gave back still count as free (it releases them, not the chunks).
 */
export interface TrimResult {
  readonly freeBefore: number;
  readonly freeAfter: number;
}

/** malloc_trim(0) when malloc holds at least `minFree` free bytes; undefined where it cannot run. */
export function trimMalloc(minFree: number): TrimResult | undefined {
  const r = load()?.trim(minFree);
  return r ? { freeBefore: r[0], freeAfter: r[1] } : undefined;
}
