// uuid4: the format crypto.randomUUID() gives (version 4, variant 10, lowercase), no repeats, every
// free digit taking all sixteen values, across several refills of its random pool.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuid4 } from '../../../src/proxy/http/request-id.ts';

test('uuid4: version 4 UUIDs, unique, every free hex digit uniformly used', () => {
  const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const seen = new Set<string>();
  const N = 20_000;
  const counts = Array.from({ length: 36 }, () => new Map<string, number>());
  for (let i = 0; i < N; i++) {
    const u = uuid4();
    assert.match(u, FORMAT);
    seen.add(u);
    for (let j = 0; j < 36; j++) counts[j]!.set(u[j]!, (counts[j]!.get(u[j]!) ?? 0) + 1);
  }
  assert.equal(seen.size, N, 'no repeats');
  for (let j = 0; j < 36; j++) {
    if ([8, 13, 18, 23].includes(j)) continue; // dashes
    if (j === 14) {
      assert.deepEqual([...counts[j]!.keys()], ['4']);
      continue;
    }
    const want = j === 19 ? 4 : 16; // variant digit: 8, 9, a, b
    assert.equal(counts[j]!.size, want, `digit ${j}`);
    // Each value near N / want (a loose bound: a stuck or biased digit fails it by far).
    for (const [d, n] of counts[j]!) assert.ok(Math.abs(n - N / want) < (N / want) * 0.2, `digit ${j} value ${d}: ${n}`);
  }
});
