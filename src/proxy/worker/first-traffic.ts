// A one-shot hook for a worker's first downstream connection. The launcher holds V8's compiling
// tiers back while legate starts (v8-flags.ts); with a static config nothing after start-up is
// worth compiling until traffic comes, so they stay held until the first connection to a listener.
// Without that, the idle process's own timers (the watchdog's beat, the admin's refresh) became hot
// enough after ~30 s for Maglev and TurboFan, whose code then stayed resident (+5 MB idle RSS).

let waiting: (() => void) | undefined;

/** Runs `fn` once, at this thread's next downstream connection. */
export function whenTrafficStarts(fn: () => void): void {
  waiting = fn;
}

/** Called by every listener for each connection it accepts: runs the waiting hook, once. */
export function trafficSeen(): void {
  if (waiting === undefined) return;
  const fn = waiting;
  waiting = undefined;
  fn();
}
