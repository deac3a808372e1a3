// A thread gives back the memory its start-up or a config update grew (V8 keeps a grown young
// generation while idle): one full, memory-reducing GC when it has finished, never on the request path.

import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (opts: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * A full, memory-reducing GC. Start-up (module loading, proto parsing, config decoding) and large
 * config updates grow a thread's young generation to its maximum (30-100 MB committed), and an
 * idle V8 never returns it on its own; this does, and compacts the old generation. Blocks the
 * thread for tens of ms: call it when a thread has finished starting or applying config.
 * The main thread turns on --expose-gc before it starts workers (V8 flags are per process, and a
 * flag turned off again while another thread reads it would race), so workers find `gc` global.
 */
export function releaseMemory(): void {
  try {
    let gc = (globalThis as { gc?: Gc }).gc;
    if (!gc) {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as Gc;
    }
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch {
    // best effort: only memory is at stake
  }
}

/** Quiet time after the last config update before releaseMemory() runs: one GC per burst of pushes. */
const RELEASE_AFTER_CONFIG_MS = 1000; // 1s

let releaseTimer: NodeJS.Timeout | undefined;

/** Runs releaseMemory() once config updates have stopped for RELEASE_AFTER_CONFIG_MS (timer unref'd). */
export function releaseMemoryAfterConfigUpdate(): void {
  if (releaseTimer) releaseTimer.refresh();
  else {
    releaseTimer = setTimeout(() => {
      releaseTimer = undefined;
      releaseMemory();
    }, RELEASE_AFTER_CONFIG_MS);
    releaseTimer.unref();
  }
}
