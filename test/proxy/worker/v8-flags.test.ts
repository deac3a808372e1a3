// The V8 flags legate sets process-wide by default, the optimizing compilers held back during
// start-up, and the user's own flags winning over both.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { V8_DEFAULTS, v8DefaultsToSet } from '../../../src/proxy/worker/v8-flags.ts';

const ALL = V8_DEFAULTS.map((d) => d.arg);

test('with no V8 flags given, every default is set', () => {
  assert.deepEqual(v8DefaultsToSet([]), ALL);
  assert.deepEqual(v8DefaultsToSet(['--enable-source-maps', 'bin/legate.js', '']), ALL);
  assert.ok(ALL.includes('--no-maglev-inlining'));
  assert.ok(ALL.includes('--heap-growing-percent=20'));
  assert.ok(ALL.includes('--no-allocation-site-pretenuring'));
});

test('a flag the user gave, in any spelling or polarity, is left alone', () => {
  for (const given of ['--maglev-inlining', '--no-maglev-inlining', '--nomaglev-inlining', '--maglev_inlining', '--no_maglev_inlining']) {
    assert.deepEqual(v8DefaultsToSet([given]), ['--heap-growing-percent=20', '--no-allocation-site-pretenuring'], given);
  }
  for (const given of ['--heap-growing-percent=50', '--heap_growing_percent=50']) {
    assert.deepEqual(v8DefaultsToSet([given]), ['--no-maglev-inlining', '--no-allocation-site-pretenuring'], given);
  }
  assert.deepEqual(v8DefaultsToSet(['--allocation-site-pretenuring']), ['--heap-growing-percent=20', '--no-maglev-inlining']);
  assert.deepEqual(v8DefaultsToSet(['--heap-growing-percent=50', '--maglev-inlining', '--allocation_site_pretenuring']), []);
});

test('a flag whose own name starts with "no" still matches itself', () => {
  const defaults = [{ name: 'node-thing', arg: '--node-thing=1' }, { name: 'other', arg: '--other' }];
  assert.deepEqual(v8DefaultsToSet(['--node-thing=2'], defaults), ['--other']);
  assert.deepEqual(v8DefaultsToSet(['--de-thing'], defaults), ['--node-thing=1', '--other'], 'another flag is not it');
});

// A child Node with natives syntax: %GetOptimizationStatus tells whether V8 optimized a hot function
// (bit 16: Maglev or TurboFan code) and whether it has Sparkplug's baseline code (bit 32768).
function optimizedBeforeAndAfterResume(given: readonly string[]): { held: boolean; before: boolean; baselineBefore: boolean; after: boolean } {
  const flags = new URL('../../../src/proxy/worker/v8-flags.ts', import.meta.url).href;
  const script = `
    import { holdOptimizingCompilers, resumeOptimizingCompilers } from ${JSON.stringify(flags)};
    const held = holdOptimizingCompilers(${JSON.stringify(given)});
    function hot(x) { let s = 0; for (let i = 0; i < 50; i++) s += (x * i) % 7; return s; }
    const run = () => { let t = 0; for (let i = 0; i < 300000; i++) t += hot(i); return t; };
    run();
    const before = (%GetOptimizationStatus(hot) & 16) !== 0;
    const baselineBefore = (%GetOptimizationStatus(hot) & 32768) !== 0;
    resumeOptimizingCompilers();
    for (let k = 0; k < 20 && (%GetOptimizationStatus(hot) & 16) === 0; k++) run();
    const after = (%GetOptimizationStatus(hot) & 16) !== 0;
    console.log(JSON.stringify({ held, before, baselineBefore, after }));`;
  return JSON.parse(execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { held: boolean; before: boolean; baselineBefore: boolean; after: boolean };
}

test('holdOptimizingCompilers keeps hot start-up code out of Sparkplug, Maglev and TurboFan until resumeOptimizingCompilers', () => {
  assert.deepEqual(optimizedBeforeAndAfterResume([]), { held: true, before: false, baselineBefore: false, after: true });
});

test('a user who names either optimizing compiler keeps it as given: nothing is held', () => {
  for (const given of ['--no-maglev', '--turbofan', '--no_turbofan', '--sparkplug']) {
    const r = optimizedBeforeAndAfterResume([given]);
    assert.equal(r.held, false, given);
    assert.equal(r.before, true, `${given}: optimized during "start-up"`);
  }
});
