// IdTable (src/proxy/id-table.ts): a table by integer id, and why it is not a Map: values deleted
// from it die young, where a long-lived Map keeps them alive until the next full GC.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdTable } from '../../src/proxy/id-table.ts';
import { oldSpaceGrowthPerBatch, requestSizedPayload } from '../helpers/young-garbage.ts';

test('set, get, has, delete, size, values in id order, clear', () => {
  const t = new IdTable<{ n: string }>();
  assert.equal(t.size, 0);
  t.set(7, { n: 'seven' });
  t.set(2, { n: 'two' });
  t.set(7, { n: 'SEVEN' });
  assert.equal(t.size, 2);
  assert.deepEqual(t.get(7), { n: 'SEVEN' });
  assert.equal(t.has(2), true);
  assert.equal(t.has(3), false);
  assert.equal(t.get(3), undefined);
  assert.deepEqual(t.values(), [{ n: 'two' }, { n: 'SEVEN' }]);
  assert.equal(t.delete(2), true);
  assert.equal(t.delete(2), false);
  assert.equal(t.size, 1);
  // values() is a copy: deleting while going through it is safe.
  t.set(9, { n: 'nine' });
  for (const v of t.values()) if (v.n === 'SEVEN') t.delete(7);
  assert.deepEqual(t.values(), [{ n: 'nine' }]);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.get(9), undefined);
});

test('per-request values added and deleted die young in an IdTable, not in a long-lived Map', () => {
  // Both tables live in the old generation, as a worker's registries do.
  const map = new Map<number, unknown>();
  const table = new IdTable<object>();
  for (let i = 1; i <= 100_000; i++) map.set(-i, i);
  for (let i = 1; i <= 100_000; i++) map.delete(-i);
  let id = 0;
  // The IdTable first: see oldSpaceGrowthPerBatch on the order.
  const viaTable = oldSpaceGrowthPerBatch(() => {
    const k = ++id;
    table.set(k, requestSizedPayload());
    return () => table.delete(k);
  });
  const viaMap = oldSpaceGrowthPerBatch(() => {
    const k = ++id;
    map.set(k, requestSizedPayload());
    return () => map.delete(k);
  });
  assert.equal(map.size + table.size, 0);
  // 200 payloads of ~2.5 KB per batch: ~500 KB if all were kept alive (the Map: ~280 KB here).
  assert.ok(viaMap > 100_000, `the Map control should show the promotion (got ${viaMap} B per batch)`);
  assert.ok(viaTable < 30_000, `IdTable: ${viaTable} B per batch reached the old space`);
});
