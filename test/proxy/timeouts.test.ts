// src/proxy/timeouts.ts: setTimeout's semantics (never early, in deadline order, stop, refresh
// before and after firing, Node's longest delay) from shared per-duration queues.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { queuedDurations, startTimeout } from '../../src/proxy/timeouts.ts';

const T = { timeout: 20_000 };

/** Resolves with the performance.now() each named timeout fired at. */
function recorder(): { fired: Map<string, number>; on(name: string): () => void } {
  const fired = new Map<string, number>();
  return { fired, on: (name) => () => void fired.set(name, performance.now()) };
}

test('timeouts fire once each, in deadline order across durations, never before their duration', T, async () => {
  const r = recorder();
  const t0 = performance.now();
  const a = startTimeout(60, r.on('a'));
  const b = startTimeout(25, r.on('b'));
  const c = startTimeout(60, r.on('c'));
  assert.ok(a.pending && b.pending && c.pending);
  await sleep(150);
  assert.deepEqual([...r.fired.keys()], ['b', 'a', 'c']);
  assert.ok(r.fired.get('b')! - t0 >= 25, `b after ${r.fired.get('b')! - t0} ms`);
  assert.ok(r.fired.get('a')! - t0 >= 60 && r.fired.get('c')! - t0 >= 60);
  assert.ok(!a.pending && !b.pending && !c.pending);
  await sleep(80);
  assert.equal(r.fired.size, 3, 'each fired once');
  assert.ok(!queuedDurations().includes(25) && !queuedDurations().includes(60), 'emptied queues are dropped');
});

test('stop() keeps a timeout from firing; stopping the head lets the next fire on time', T, async () => {
  const r = recorder();
  const t0 = performance.now();
  const a = startTimeout(30, r.on('a'));
  startTimeout(45, r.on('b'));
  const c = startTimeout(45, r.on('c'));
  a.stop();
  c.stop();
  c.stop(); // twice is harmless
  assert.ok(!a.pending && !c.pending);
  await sleep(120);
  assert.deepEqual([...r.fired.keys()], ['b']);
  assert.ok(r.fired.get('b')! - t0 >= 45);
});

test('refresh() restarts the full duration: a refreshed timeout goes behind one started later', T, async () => {
  const r = recorder();
  const t0 = performance.now();
  const a = startTimeout(50, r.on('a'));
  await sleep(10);
  const bAt = performance.now();
  startTimeout(50, r.on('b'));
  await sleep(10);
  const refreshedAt = performance.now();
  a.refresh();
  const tail = startTimeout(50, r.on('tail'));
  tail.refresh(); // the tail of its queue: refreshed in place
  await sleep(150);
  assert.deepEqual([...r.fired.keys()], ['b', 'a', 'tail']);
  assert.ok(r.fired.get('a')! - refreshedAt >= 50, 'a waited its whole duration from the refresh');
  // Not a − t0 ≥ 70: the two 10 ms sleeps may add up to a little under 20 ms by performance.now().
  assert.ok(r.fired.get('b')! - bAt >= 50 && r.fired.get('a')! - t0 >= 50);
});

test('as timeout.refresh() does, refresh() after firing or stopping starts the timeout again', T, async () => {
  let n = 0;
  const t = startTimeout(15, () => n++);
  await sleep(60);
  assert.equal(n, 1);
  t.refresh();
  assert.ok(t.pending);
  await sleep(60);
  assert.equal(n, 2);
  t.stop();
  t.refresh();
  t.stop();
  await sleep(40);
  assert.equal(n, 2);
});

test('a callback may start timeouts of its own duration; those already due still fire on time', T, async () => {
  const r = recorder();
  const t0 = performance.now();
  startTimeout(20, () => {
    r.on('first')();
    startTimeout(20, r.on('started-by-first'));
  });
  // node:timers measures from the loop's cached time, so this sleep may end a little under 5 ms
  // after t0 by performance.now(): 'second' is timed from its own start.
  await sleep(5);
  const secondAt = performance.now();
  startTimeout(20, r.on('second'));
  await sleep(120);
  assert.deepEqual([...r.fired.keys()], ['first', 'second', 'started-by-first']);
  assert.ok(r.fired.get('first')! - t0 >= 20);
  assert.ok(r.fired.get('second')! - secondAt >= 20, `second after ${r.fired.get('second')! - secondAt} ms`);
  assert.ok(r.fired.get('second')! < r.fired.get('started-by-first')!, 'the queue re-armed for its head, not for the new tail');
});

test('a delay beyond node:timers\' longest (2^31-1 ms) is not cut to 1 ms; durations below 1 ms become 1', T, async () => {
  let fired = false;
  const long = startTimeout(3e9, () => (fired = true));
  const r = recorder();
  const tiny = startTimeout(0, r.on('tiny'));
  assert.equal(tiny.ms, 1);
  await sleep(50);
  assert.equal(fired, false);
  assert.ok(long.pending);
  assert.ok(r.fired.has('tiny'));
  long.stop();
});

test('a throwing callback is an uncaught exception, as with setTimeout, after the others due have run', T, () => {
  const url = new URL('../../src/proxy/timeouts.ts', import.meta.url).href;
  const script = `
    import { startTimeout } from ${JSON.stringify(url)};
    const fired = [];
    process.on('uncaughtException', (e) => { fired.push('uncaught:' + e.message); });
    startTimeout(10, () => { fired.push('a'); throw new Error('boom'); });
    startTimeout(10, () => fired.push('b'));
    // b's deadline is a few microseconds after a's: busy past both, so both are due when the queue fires.
    for (const end = performance.now() + 15; performance.now() < end;);
    setTimeout(() => startTimeout(10, () => fired.push('after')), 30);
    // The queues' timers are unref'd: this one keeps the process up until the end.
    setTimeout(() => console.log(JSON.stringify(fired)), 150);
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), ['a', 'b', 'uncaught:boom', 'after']);
});
