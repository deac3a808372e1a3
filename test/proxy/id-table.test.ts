// IdTable and ObjectSet (src/proxy/id-table.ts): a table by integer id and a set of objects, and
// why they are not a Map and a Set: values deleted from them die young, where a long-lived Map or
// Set keeps them alive until the next full GC.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdTable, ObjectSet } from '../../src/proxy/id-table.ts';
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

test('ObjectSet: add, has, delete, size, iteration oldest first, one object in two sets', () => {
  const a = { n: 'a' };
  const b = { n: 'b' };
  const s1 = new ObjectSet<{ n: string }>();
  const s2 = new ObjectSet<{ n: string }>();
  s1.add(b).add(a).add(b);
  s2.add(a);
  assert.equal(s1.size, 2);
  assert.equal(s1.has(a), true);
  assert.equal(s2.has(b), false);
  // b was given its id first.
  assert.deepEqual([...s1].map((o) => o.n), ['b', 'a']);
  assert.equal(s1.delete(a), true);
  assert.equal(s1.delete(a), false);
  assert.equal(s2.has(a), true, 'deleting from one set leaves the other');
  for (const o of s1) s1.delete(o); // iteration is over a copy
  assert.equal(s1.size, 0);
  s2.clear();
  assert.equal(s2.has(a), false);
});

test('objects added and deleted die young in an ObjectSet, not in a long-lived Set', () => {
  const set = new Set<object>();
  const objects = new ObjectSet<object>();
  for (let i = 0; i < 100_000; i++) set.add({ i });
  set.clear();
  const viaObjectSet = oldSpaceGrowthPerBatch(() => {
    const o = { payload: requestSizedPayload() };
    objects.add(o);
    return () => objects.delete(o);
  });
  const viaSet = oldSpaceGrowthPerBatch(() => {
    const o = { payload: requestSizedPayload() };
    set.add(o);
    return () => set.delete(o);
  });
  assert.equal(set.size + objects.size, 0);
  assert.ok(viaSet > 100_000, `the Set control should show the promotion (got ${viaSet} B per batch)`);
  assert.ok(viaObjectSet < 30_000, `ObjectSet: ${viaObjectSet} B per batch reached the old space`);
});
