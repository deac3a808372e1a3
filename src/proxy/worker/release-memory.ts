// A thread gives back the memory its start-up or a config update grew (V8 keeps a grown young
// generation while idle): one full, memory-reducing GC when it has finished, never on the request path.

import v8 from 'node:v8';
import vm from 'node:vm';
import { trimMalloc } from '../../native/malloc-trim/index.ts';

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

/** How often the main thread looks at malloc's free memory (ms), and how much free memory is worth a trim. */
const TRIM_INTERVAL_MS = 5000;
const TRIM_MIN_FREE = 4 * 1024 * 1024;

let trimTimer: NodeJS.Timeout | undefined;

/**
 * Gives the kernel back malloc's free pages every TRIM_INTERVAL_MS when it holds TRIM_MIN_FREE or
 * more (glibc's malloc_trim, process-wide: the main thread runs it for every thread). V8's
 * background compiler threads allocate their zones with malloc while the JIT warms up under load;
 * freed, glibc's arenas keep them resident: with one worker under HTTP/1.1 load RSS went 122 ->
 * 108 MB after a trim, and peaked 107-116 MB per 5 s under the same load (118-120 without); idle
 * RSS after start 73 MB instead of 78. A trim that releases tens of MB blocks the thread for a few
 * ms, one that finds nothing to release ~25 µs. LEGATE_MALLOC_TRIM=0 turns it off.
 */
export function startMallocTrim(): void {
  if (trimTimer || process.env.LEGATE_MALLOC_TRIM === '0') return;
  if (trimMalloc(TRIM_MIN_FREE) === undefined) return; // no addon, or no glibc
  trimTimer = setInterval(() => trimMalloc(TRIM_MIN_FREE), TRIM_INTERVAL_MS);
  trimTimer.unref();
}
