// src/proxy/long-timers.ts: setTimeout / setInterval for durations from config, without node:timers'
// cut of delays above 2^31-1 ms (24.8 days) to 1 ms. The chain across node:timers' longest delay is
// driven with node:test's mock timers (a tick moves the clock to its end before it runs what is due,
// so each tick stops at a link of the chain); the rest on real timers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { setLongInterval, setLongTimeout, TIMEOUT_MAX_MS } from '../../src/proxy/long-timers.ts';

test('a timeout longer than 2^31-1 ms fires once, at its full delay (mock timers)', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let fired = 0;
  const timer = setLongTimeout(() => fired++, TIMEOUT_MAX_MS + 5000);
  t.mock.timers.tick(TIMEOUT_MAX_MS);
  assert.equal(fired, 0);
  assert.ok(timer.pending);
  t.mock.timers.tick(4999);
  assert.equal(fired, 0);
  t.mock.timers.tick(1);
  assert.equal(fired, 1);
  assert.ok(!timer.pending);
  for (let i = 0; i < 3; i++) t.mock.timers.tick(TIMEOUT_MAX_MS);
  assert.equal(fired, 1);
});

test('an interval longer than 2^31-1 ms repeats at its full period; clear() stops it, also mid-chain (mock timers)', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const period = 2 * TIMEOUT_MAX_MS + 10;
  let fired = 0;
  const timer = setLongInterval(() => fired++, period);
  const onePeriod = (): void => {
    t.mock.timers.tick(TIMEOUT_MAX_MS);
    t.mock.timers.tick(TIMEOUT_MAX_MS);
    t.mock.timers.tick(9);
  };
  onePeriod();
  assert.equal(fired, 0);
  t.mock.timers.tick(1);
  assert.equal(fired, 1);
  onePeriod();
  t.mock.timers.tick(1);
  assert.equal(fired, 2);
  t.mock.timers.tick(TIMEOUT_MAX_MS);
  t.mock.timers.tick(5);
  timer.clear();
  assert.ok(!timer.pending);
  for (let i = 0; i < 6; i++) t.mock.timers.tick(TIMEOUT_MAX_MS);
  assert.equal(fired, 2);
});

test('refresh() starts the full delay again, before and after firing, as timeout.refresh() (mock timers)', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let fired = 0;
  const timer = setLongTimeout(() => fired++, TIMEOUT_MAX_MS + 100);
  t.mock.timers.tick(TIMEOUT_MAX_MS);
  t.mock.timers.tick(50);
  timer.refresh();
  t.mock.timers.tick(TIMEOUT_MAX_MS);
  t.mock.timers.tick(99);
  assert.equal(fired, 0);
  t.mock.timers.tick(1);
  assert.equal(fired, 1);
  timer.refresh();
  assert.ok(timer.pending);
  t.mock.timers.tick(TIMEOUT_MAX_MS);
  t.mock.timers.tick(100);
  assert.equal(fired, 2);
});

test('on real timers: 30 days does not fire early, short delays fire, below 1 ms is 1 ms', async () => {
  const fired: string[] = [];
  const long = setLongTimeout(() => fired.push('30 days'), 30 * 86_400_000);
  const longInterval = setLongInterval(() => fired.push('interval 60 days'), 60 * 86_400_000);
  setLongTimeout(() => fired.push('20 ms'), 20);
  setLongTimeout(() => fired.push('0 ms'), 0);
  await sleep(80);
  assert.deepEqual(fired, ['0 ms', '20 ms']);
  assert.ok(long.pending && longInterval.pending);
  long.clear();
  longInterval.clear();
});

test('unref() holds across the chain: an unref\'d 30-day timer lets the process exit; a ref\'d one keeps it alive', () => {
  const mod = JSON.stringify(new URL('../../src/proxy/long-timers.ts', import.meta.url).href);
  const run = (unref: boolean): { status: number | null; signal: NodeJS.Signals | null } =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${mod}); const t = m.setLongTimeout(() => process.exit(3), 30 * 86_400_000); ${unref ? 't.unref();' : ''}`], { timeout: 3000 });
  assert.equal(run(true).status, 0);
  // Alive until spawnSync's timeout kills it: the timer neither fired (exit 3) nor let go of the loop.
  assert.equal(run(false).signal, 'SIGTERM');
});
