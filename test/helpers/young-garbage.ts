// Does per-request garbage die young? Runs batches of `start()` (each a request: in flight while
// the next 10 start, then its `end()` runs), forcing two young-generation GCs around every batch,
// and returns the median growth of V8's old space per batch, in bytes. Objects that nothing holds
// once they are done do not reach the old space; objects kept alive across young GCs (by an
// old-generation Map, or by what V8 keeps for an object literal with a getter) are promoted, batch
// after batch. The median ignores a batch in which V8 ran a full GC on its own (the old space
// shrank then). In one process, measure what should die young before a control that is promoted:
// V8 pretenures an allocation site whose objects survive (requestSizedPayload's, shared by both),
// and the later run's objects would then be allocated in the old space directly.

import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (opts?: { type: 'minor' | 'major' }) => void;

function oldSpaceUsed(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;
}

export function oldSpaceGrowthPerBatch(start: () => () => void, opts: { batches?: number; perBatch?: number } = {}): number {
  const batches = opts.batches ?? 12;
  const perBatch = opts.perBatch ?? 200;
  // Twice: what the caller made before (its tables) ends up in the old generation.
  gc({ type: 'major' });
  gc({ type: 'major' });
  const inFlight: Array<() => void> = [];
  const growth: number[] = [];
  for (let b = 0; b < batches; b++) {
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    const before = oldSpaceUsed();
    for (let i = 0; i < perBatch; i++) {
      inFlight.push(start());
      // Few in flight, so that what is in flight is not what a young GC catches alive twice.
      if (inFlight.length > 10) inFlight.shift()!();
    }
    for (const end of inFlight.splice(0)) end();
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    growth.push(oldSpaceUsed() - before);
  }
  growth.sort((x, y) => x - y);
  return growth[growth.length >> 1]!;
}

/** About 2.5 KB of small objects, a request's object graph. */
export function requestSizedPayload(): Array<{ i: number }> {
  return Array.from({ length: 64 }, (_, i) => ({ i }));
}
