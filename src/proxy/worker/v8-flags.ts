// The V8 flags legate sets for the whole process before its workers' isolates exist, and the
// optimizing compilers it holds back while it starts: each only when neither the command line nor
// NODE_OPTIONS names that flag (in either polarity), so a user's own setting wins.

import v8 from 'node:v8';
import { logger } from '../log.ts';

const log = logger('main');

/** A V8 flag legate sets by default: `name` as V8 spells it (dashes, no `no-`), `arg` what is set. */
export interface V8Default {
  readonly name: string;
  readonly arg: string;
}

export const V8_DEFAULTS: readonly V8Default[] = [
  /**
   * How much V8 lets the old generation grow past what survived the last full GC, %: V8's default
   * factor (up to 4x when it thinks memory is plentiful) left a worker's old space up to 2x its
   * live size under load; 20% costs a few more full GCs (3-4 vs 1 in a 10 s load), not measurable
   * per request.
   */
  { name: 'heap-growing-percent', arg: '--heap-growing-percent=20' },
  /**
   * Maglev (V8's mid-tier compiler) without inlining. Its compile jobs' zone memory, allocated by
   * malloc on V8's background threads while the JIT warms up, stays in glibc's thread arenas
   * after: with one worker under autocannon -c 25 (12 B), the arenas went 29-30 -> 20-22 MB and
   * peak RSS 147-151 -> 135-138 MB (h2c 161 -> 143). CPU per request, paired: 0.991 at 12 B (8
   * pairs), 0.991 at 64 KiB, 0.997 with a Wasm filter, 1.012 tcp_proxy, h2c 1.022 and reversed
   * 0.968. TurboFan does the inlining that counts once code is hot. (No Maglev at all saved 16 MB
   * but cost 1.37x; TurboFan's own inlining, escape analysis and job counts changed nothing.)
   */
  { name: 'maglev-inlining', arg: '--no-maglev-inlining' },
  /**
   * No allocation-site pretenuring. Under load, a few hundred requests are in flight when a young
   * GC runs; V8 sees their allocation sites survive, switches them to allocating in the old
   * generation, and then everything those pretenured objects point to survives the young GCs
   * until the next full GC: with 4 MB semi-spaces the whole request graph was promoted (3.9 KB
   * per request against 0.7; 33 full GCs in 8 s against 12) and CPU per request was 1.19x that
   * of 8 MB semi-spaces (bench:ab, 5 pairs); without pretenuring it was 1.03 and 0.98 (5 and 6
   * pairs), so the young generation is 4 MB semi-spaces (bin/legate.js, worker-pool.ts): peak
   * RSS under the suite's 12 B load 118 -> 111 MB. With 8 MB semi-spaces the flag changed
   * nothing measurable (1.018, 5 pairs).
   */
  { name: 'allocation-site-pretenuring', arg: '--no-allocation-site-pretenuring' },
];

/**
 * The flag names one command-line word may set: `--no_foo=1` -> `no-foo` and `foo` (V8 reads
 * `--no-foo` and `--nofoo` as foo turned off; a flag whose own name starts with "no" is kept too).
 */
function namesIn(arg: string): string[] {
  const name = arg.replace(/^--?/, '').split('=')[0]!.replaceAll('_', '-');
  if (name.startsWith('no-')) return [name, name.slice(3)];
  return name.startsWith('no') ? [name, name.slice(2)] : [name];
}

/** Every flag name the words of `given` (command-line and NODE_OPTIONS words) set, in either polarity. */
function namedFlags(given: readonly string[]): Set<string> {
  return new Set(given.filter((a) => a.startsWith('-')).flatMap(namesIn));
}

/** The defaults' args that `given` (command-line and NODE_OPTIONS words) leaves to legate. */
export function v8DefaultsToSet(given: readonly string[], defaults: readonly V8Default[] = V8_DEFAULTS): string[] {
  const named = namedFlags(given);
  return defaults.filter((d) => !named.has(d.name)).map((d) => d.arg);
}

/** The V8 flags the process was given: its command line's and NODE_OPTIONS' words. */
function givenFlags(): string[] {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
}

/** Sets the defaults the process was not given (process.execArgv and NODE_OPTIONS). */
export function applyV8Defaults(): void {
  for (const arg of v8DefaultsToSet(givenFlags())) v8.setFlagsFromString(arg);
}

/**
 * The compiling tiers held back during start-up. Start-up code (reading and decoding the
 * bootstrap, Envoy's .proto files, building the config) runs once, but its loops are hot enough
 * for V8 to compile them with Maglev and TurboFan, which pulls those compilers' code (~7.5 MB of
 * the node binary's pages) and their output into memory for good: idle RSS with the quick-start
 * config served by the main thread 87 -> 76 MB (1,000 static clusters and routes: 118-123 -> 104).
 * Sparkplug's baseline code is never flushed either (V8's --flush-baseline-code is off): holding
 * it too took the main thread's code space 1.1 -> ~0.3 MB, idle RSS with the quick-start config
 * 79.6 -> 78.2 MB at --concurrency 2, 62.7 -> 61.6 at 1 (3 runs each). Start-up then takes
 * longer: the quick-start config's `--mode validate` 0.62 -> 0.80 s (medians of 6), 1,000 static
 * clusters and routes 2.1 -> 2.6 s (medians of 4); with only Maglev and TurboFan held, 1.7-2.2 ->
 * 2.6-3.0 s then. Ignition still runs. Every tier is back as soon as the server has started
 * when it has xDS or SDS to fetch; with a static config, at the first connection to a listener
 * (first-traffic.ts): idle, the process's own timers made Node's processTimers hot after ~30 s,
 * and TurboFan's code then stayed resident (idle RSS 80 -> 85-87 MB at --concurrency 2 a minute
 * on). CPU per request under load, paired with and without the hold, 1.00 and 0.93 (reversed).
 */
const STARTUP_HELD = ['maglev', 'turbofan', 'sparkplug'] as const;
let held = false;

/**
 * Turns Sparkplug, Maglev and TurboFan off until resumeOptimizingCompilers() or
 * turnOnHeldCompilers(), unless `given` names any of them (a user's `--no-maglev` must stay off).
 * The launcher calls it before any other module compiles: V8's code cache is checked against the
 * flags in force, so every start-up must compile its modules with the same ones.
 */
export function holdOptimizingCompilers(given: readonly string[] = givenFlags()): boolean {
  const named = namedFlags(given);
  if (held || STARTUP_HELD.some((n) => named.has(n))) return false;
  for (const n of STARTUP_HELD) v8.setFlagsFromString(`--no-${n}`);
  held = true;
  return true;
}

/** Whether this thread's holdOptimizingCompilers() holds them now. */
export function optimizingCompilersHeld(): boolean {
  return held;
}

/** Turns back on what holdOptimizingCompilers() turned off (nothing if it did not). */
export function resumeOptimizingCompilers(): void {
  if (!held) return;
  turnOnHeldCompilers();
}

/**
 * Turns Sparkplug, Maglev and TurboFan back on for the whole process (V8's flags are the
 * process's, not an isolate's): for a worker thread, whose own module never held them, once the
 * main thread has told it they are held until traffic (WorkerInit.compilersHeldUntilTraffic).
 */
export function turnOnHeldCompilers(): void {
  held = false;
  for (const n of STARTUP_HELD) v8.setFlagsFromString(`--${n}`);
  log.debug('Sparkplug, Maglev and TurboFan are on again');
}
