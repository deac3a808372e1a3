// Token buckets: lazy refills at fill boundaries, capped at max_tokens, shared through
// SharedCounters cells across workers (two bucket objects on one buffer, as two workers have).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedCounters } from '../../src/proxy/shared-counters.ts';
import { localTokenBucket, parseTokenBucket, sharedTokenBucket } from '../../src/proxy/token-bucket.ts';

const spec = { maxTokens: 5, tokensPerFill: 2, fillIntervalMs: 100 };

test('a fresh bucket is full; refills add tokens_per_fill per elapsed interval, capped at max_tokens', () => {
  let now = 1_000_030;
  const b = localTokenBucket(spec, () => now);
  for (let i = 0; i < 5; i++) assert.equal(b.consume(), true);
  assert.equal(b.consume(), false);
  assert.equal(b.msUntilFill(), 100);
  now += 99;
  assert.equal(b.consume(), false);
  now += 1; // one fill boundary
  assert.equal(b.remaining(), 2);
  now += 1000; // ten fills, capped
  assert.equal(b.remaining(), 5);
});

test('two views of one shared bucket (as two workers) never refill twice', () => {
  const shared = SharedCounters.create(64);
  let now = 5_000_000;
  const a = sharedTokenBucket(shared, 'k', spec, () => now);
  const b = sharedTokenBucket(shared, 'k', spec, () => now);
  let taken = 0;
  for (let i = 0; i < 10; i++) if ((i % 2 ? a : b).consume()) taken++;
  assert.equal(taken, 5);
  now += 150;
  assert.equal(a.remaining(), 2);
  assert.equal(b.remaining(), 2);
  assert.equal(a.consume() && b.consume(), true);
  assert.equal(a.consume() || b.consume(), false);
  // A different spec under the same name is a different bucket.
  assert.equal(sharedTokenBucket(shared, 'k', { ...spec, maxTokens: 6 }, () => now).remaining(), 6);
});

test('worker threads drawing from one shared bucket take exactly max_tokens', async () => {
  const shared = SharedCounters.create(64);
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.mod).then(({ sharedTokenBucket }) => import(workerData.sc).then(({ SharedCounters }) => {
      const b = sharedTokenBucket(new SharedCounters(workerData.buf), 'w', { maxTokens: 1000, tokensPerFill: 1, fillIntervalMs: 3600000 });
      let n = 0;
      for (let i = 0; i < 2000; i++) if (b.consume()) n++;
      parentPort.postMessage(n);
    }));`;
  const mod = new URL('../../src/proxy/token-bucket.ts', import.meta.url).href;
  const sc = new URL('../../src/proxy/shared-counters.ts', import.meta.url).href;
  const runs = [0, 1, 2, 3].map(
    () =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(src, { eval: true, workerData: { buf: shared.buffer, mod, sc } });
        w.once('message', (n: number) => {
          resolve(n);
          void w.terminate();
        });
        w.once('error', reject);
      }),
  );
  const counts = await Promise.all(runs);
  assert.equal(counts.reduce((a, b) => a + b, 0), 1000);
});

test('parseTokenBucket: Envoy defaults and limits, errors with field paths', () => {
  const ok = parseTokenBucket({ max_tokens: 3, tokens_per_fill: null, fill_interval: { seconds: '1', nanos: 0 } }, 'tb');
  assert.deepEqual(ok.ok && ok.value, { maxTokens: 3, tokensPerFill: 1, fillIntervalMs: 1000 });
  const bad = parseTokenBucket({ max_tokens: 0, tokens_per_fill: { value: 0 }, fill_interval: { seconds: '0', nanos: 10_000_000 } }, 'tb');
  assert.equal(bad.ok, false);
  assert.deepEqual(!bad.ok && bad.errors.map((e) => e.path), ['tb.max_tokens', 'tb.tokens_per_fill', 'tb.fill_interval']);
  assert.match(!bad.ok ? bad.errors[2]!.reason : '', /must be >= 50ms/);
});
