// Runs a tcp_proxy test once per way of moving bytes: the C relay (src/native/tcp-relay, when the
// addon is built) and the JavaScript pumps. Node runs a file's tests one after another, so the
// switch holds for the whole test.

import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeRelayAvailable, nativeRelaysStarted, setNativeRelayEnabled } from '../../src/native/tcp-relay/index.ts';

export type RelayMode = 'C relay' | 'JS pumps';

/** The modes this machine can run: both when the addon is built. */
export function relayModes(): RelayMode[] {
  setNativeRelayEnabled(true);
  return nativeRelayAvailable() ? ['C relay', 'JS pumps'] : ['JS pumps'];
}

/**
 * `name [mode]` for each mode. In 'C relay' the test must have started at least one relay (else
 * the test did not test it); in 'JS pumps' none.
 */
export function relayModeTest(name: string, fn: (t: TestContext, mode: RelayMode) => Promise<void>): void {
  for (const mode of relayModes()) {
    test(`${name} [${mode}]`, async (t) => {
      setNativeRelayEnabled(mode === 'C relay');
      const before = nativeRelaysStarted();
      try {
        await fn(t, mode);
      } finally {
        setNativeRelayEnabled(true);
      }
      if (mode === 'C relay') assert.ok(nativeRelaysStarted() > before, 'the C relay moved the bytes');
      else assert.equal(nativeRelaysStarted(), before, 'the JS pumps moved the bytes');
    });
  }
}
