// Process-wide shared data and queues across real worker threads: compare-and-swap increments from
// two workers add up exactly (a mismatch, when one happens, is retried), and items enqueued by the
// workers reach the thread that registered the queue, in order per worker.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedWasmStore } from '../../../src/proxy/wasm/shared-store.ts';
import { Status } from '../../../src/proxy/wasm/abi.ts';

test('shared data: set, get, CAS mismatch, unconditional set; queues: register, resolve, enqueue, dequeue, EMPTY, NOT_FOUND', () => {
  const store = new SharedWasmStore(SharedWasmStore.create(1024 * 1024), 0);
  assert.equal(store.getSharedData('vm', 'k'), undefined);
  assert.equal(store.setSharedData('vm', 'k', Buffer.from('a'), 0), Status.OK);
  const a = store.getSharedData('vm', 'k')!;
  assert.equal(a.value.toString(), 'a');
  assert.equal(store.setSharedData('vm', 'k', Buffer.from('b'), a.cas + 100), Status.CAS_MISMATCH);
  assert.equal(store.setSharedData('vm', 'k', Buffer.from('b'), a.cas), Status.OK);
  assert.equal(store.setSharedData('vm', 'k', Buffer.from('c'), a.cas), Status.CAS_MISMATCH);
  assert.equal(store.getSharedData('other-vm', 'k'), undefined, 'keys are per vm_id');
  const q = store.registerQueue('vm', 'q', () => undefined);
  assert.equal(store.resolveQueue('vm', 'q'), q);
  assert.equal(store.resolveQueue('vm', 'nope'), undefined);
  assert.deepEqual(store.dequeue(q), { status: Status.EMPTY });
  assert.equal(store.enqueue(q, Buffer.from('1')), Status.OK);
  assert.equal(store.dequeue(q).value?.toString(), '1');
  assert.equal(store.enqueue(999, Buffer.from('x')), Status.NOT_FOUND);
  assert.equal(store.setSharedData('vm', 'big', Buffer.alloc(2 * 1024 * 1024), 0), Status.INTERNAL_FAILURE, 'over the store size');
  assert.equal(store.getSharedData('vm', 'k')!.value.toString(), 'b', 'a failed write changes nothing');
});

test('two worker threads: 2 × 2,000 CAS increments add up to 4,000; their queue items reach the registering thread', { timeout: 60_000 }, async () => {
  const buffer = SharedWasmStore.create(1024 * 1024);
  const main = new SharedWasmStore(buffer, 0);
  // The counter exists before the workers start: a worker that found no entry would have to write
  // with cas 0 (unconditional, as the ABI has it) and could wipe the other's increments.
  assert.equal(main.setSharedData('vm', 'count', Buffer.alloc(4), 0), Status.OK);
  const got: string[] = [];
  let notified = 0;
  const queueId = main.registerQueue('vm', 'events', (id) => {
    notified++;
    for (let r = main.dequeue(id); r.status === Status.OK; r = main.dequeue(id)) got.push(r.value!.toString());
  });
  const run = (workerId: number): Promise<{ mismatches: number }> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./fixtures/store-worker.ts', import.meta.url), { workerData: { buffer, workerId, n: 2000, queueId } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([run(1), run(2)]);
  assert.equal(main.getSharedData('vm', 'count')!.value.readUInt32LE(0), 4000);
  console.log(`CAS mismatches retried: ${a.mismatches + b.mismatches}`);
  for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got.sort(), ['from worker 1', 'from worker 2']);
  assert.ok(notified >= 1);
});
