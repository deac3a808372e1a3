// SharedCounters across real worker threads: one limit for the whole process, no lost updates.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedCounters } from '../../src/proxy/shared-counters.ts';
import { Runtime } from '../../src/proxy/runtime.ts';

const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.module).then(({ SharedCounters }) => {
  const s = new SharedCounters(workerData.buffer);
  const limited = s.cell('cluster.web.cb.rq');
  const plain = s.cell('plain');
  let got = 0;
  for (let i = 0; i < 20000; i++) { if (limited.tryIncrement(15000)) got++; plain.add(1); }
  parentPort.postMessage(got);
});
`;

test('two workers share cells: adds are never lost and tryIncrement holds one process-wide limit', async () => {
  const s = SharedCounters.create(1024);
  const module = new URL('../../src/proxy/shared-counters.ts', import.meta.url).href;
  const run = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = new Worker(WORKER, { eval: true, workerData: { buffer: s.buffer, module } });
      w.once('message', (n: number) => resolve(n));
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([run(), run()]);
  assert.equal(a + b, 15000);
  assert.equal(s.cell('cluster.web.cb.rq').load(), 15000);
  assert.equal(s.cell('plain').load(), 40000);
});

test('distinct keys get distinct cells; a full table falls back to local cells', () => {
  const s = SharedCounters.create(4);
  const cells = ['a', 'b', 'c', 'd'].map((k) => s.cell(k));
  cells.forEach((c, i) => c.store(i + 1));
  assert.deepEqual(cells.map((c) => c.load()), [1, 2, 3, 4]);
  const extra = s.cell('e');
  extra.add(7);
  assert.equal(extra.load(), 7);
  assert.equal(s.cell('a').load(), 1);
});

test('runtime: later layers win, the admin layer overrides and removes, bad values fall back', () => {
  const r = new Runtime([{ name: 'static', values: { 'fault.http.abort.abort_percent': '30', x: 'abc' } }]);
  assert.equal(r.getInteger('fault.http.abort.abort_percent', 0), 30);
  assert.equal(r.getInteger('x', 5), 5);
  r.setAdmin({ 'fault.http.abort.abort_percent': '100' });
  assert.equal(r.getInteger('fault.http.abort.abort_percent', 0), 100);
  assert.equal(r.featureEnabled('fault.http.abort.abort_percent', { numerator: 0, denominator: 'HUNDRED' }, 0.999), true);
  r.setAdmin({ 'fault.http.abort.abort_percent': '' });
  assert.equal(r.getInteger('fault.http.abort.abort_percent', 0), 30);
  assert.equal(r.featureEnabled(undefined, { numerator: 50, denominator: 'TEN_THOUSAND' }, 0.004), true);
  assert.equal(r.featureEnabled(undefined, { numerator: 50, denominator: 'TEN_THOUSAND' }, 0.006), false);
  assert.deepEqual(r.layers().map((l) => l.name), ['static', 'admin']);
});
