// The V8 flags legate sets process-wide by default, and the user's own flags winning over them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { V8_DEFAULTS, v8DefaultsToSet } from '../../../src/proxy/worker/v8-flags.ts';

const ALL = V8_DEFAULTS.map((d) => d.arg);

test('with no V8 flags given, every default is set', () => {
  assert.deepEqual(v8DefaultsToSet([]), ALL);
  assert.deepEqual(v8DefaultsToSet(['--enable-source-maps', 'bin/legate.js', '']), ALL);
  assert.ok(ALL.includes('--no-maglev-inlining'));
  assert.ok(ALL.includes('--heap-growing-percent=20'));
});

test('a flag the user gave, in any spelling or polarity, is left alone', () => {
  for (const given of ['--maglev-inlining', '--no-maglev-inlining', '--nomaglev-inlining', '--maglev_inlining', '--no_maglev_inlining']) {
    assert.deepEqual(v8DefaultsToSet([given]), ['--heap-growing-percent=20'], given);
  }
  for (const given of ['--heap-growing-percent=50', '--heap_growing_percent=50']) {
    assert.deepEqual(v8DefaultsToSet([given]), ['--no-maglev-inlining'], given);
  }
  assert.deepEqual(v8DefaultsToSet(['--heap-growing-percent=50', '--maglev-inlining']), []);
});

test('a flag whose own name starts with "no" still matches itself', () => {
  const defaults = [{ name: 'node-thing', arg: '--node-thing=1' }, { name: 'other', arg: '--other' }];
  assert.deepEqual(v8DefaultsToSet(['--node-thing=2'], defaults), ['--other']);
  assert.deepEqual(v8DefaultsToSet(['--de-thing'], defaults), ['--node-thing=1', '--other'], 'another flag is not it');
});
