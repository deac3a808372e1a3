// Envoy's jittered exponential back-off: waits drawn below a ceiling that doubles up to the
// maximum, and starts over after reset().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JitteredBackoff, XDS_BACKOFF_BASE_MS, XDS_BACKOFF_MAX_MS } from '../../src/xds-client/backoff.ts';

test('the ceiling doubles from 500 ms to 30 s; reset starts over', () => {
  const top = new JitteredBackoff(XDS_BACKOFF_BASE_MS, XDS_BACKOFF_MAX_MS, () => 0.999999);
  const waits = Array.from({ length: 9 }, () => top.next());
  assert.deepEqual(waits, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
  top.reset();
  assert.equal(top.next(), 499);
  const bottom = new JitteredBackoff(XDS_BACKOFF_BASE_MS, XDS_BACKOFF_MAX_MS, () => 0);
  assert.equal(bottom.next(), 0);
});

test('every wait is within [0, ceiling)', () => {
  const b = new JitteredBackoff(10, 100);
  let ceiling = 10;
  for (let i = 0; i < 50; i++) {
    const w = b.next();
    assert.ok(w >= 0 && w < ceiling, `${w} < ${ceiling}`);
    ceiling = Math.min(ceiling * 2, 100);
  }
});
