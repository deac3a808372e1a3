// The malloc-trim addon (src/native/malloc-trim): glibc's malloc_trim from Node, and the main
// thread's timer that runs it. Real memory: buffers malloc'd from the arena, freed by a GC, given back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { trimMalloc } from '../../src/native/malloc-trim/index.ts';

const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

test('trimMalloc gives freed arena memory back to the kernel; below the threshold it does nothing', { timeout: 20_000 }, () => {
  const first = trimMalloc(0);
  assert.ok(first, 'the addon is built on this glibc machine');
  // 64 KiB buffers come from malloc's arena (below its mmap threshold); touched, so resident.
  let bufs: Buffer[] | undefined = Array.from({ length: 1500 }, () => Buffer.alloc(64 * 1024, 1));
  assert.equal(bufs.length, 1500);
  // One more, kept to the end: it sits above the others, so freeing them cannot shrink the heap's
  // top on its own (glibc's free() does that when the top chunk grows past its trim threshold,
  // which let this test fail once in CI).
  const pin = Buffer.alloc(64 * 1024, 2);
  const rssHeld = rssKb();
  bufs = undefined;
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
  const skipped = trimMalloc(Number.MAX_SAFE_INTEGER);
  assert.ok(skipped && skipped.freeBefore === skipped.freeAfter, 'no trim below the threshold');
  const rssFreed = rssKb();
  assert.ok(rssFreed > rssHeld - 32 * 1024, `freed, the buffers stay resident until a trim (RSS ${rssHeld} kB held, ${rssFreed} kB freed)`);
  const r = trimMalloc(4 * 1024 * 1024);
  assert.ok(r);
  assert.ok(r.freeBefore > 32 * 1024 * 1024, `malloc held the freed buffers (${r.freeBefore} B free)`);
  const rssTrimmed = rssKb();
  assert.ok(rssTrimmed < rssFreed - 32 * 1024, `RSS ${rssHeld} kB held, ${rssFreed} kB freed, ${rssTrimmed} kB trimmed`);
  assert.equal(pin[0], 2);
});
