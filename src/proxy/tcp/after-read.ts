// Work that must wait until the code handling the current socket read has returned: a response
// head held back so that the body arriving in the same read leaves in the same write
// (codec-http1-encoder.ts). Inside a read callback of user-buffer-read.ts the work runs as that
// callback returns; anywhere else (TLS sockets, timers, promise continuations) it goes to
// process.nextTick, which costs a tick object and one more call from C++ into the tick queue.

let depth = 0;
const fns: Array<(arg: unknown) => void> = [];
const args: unknown[] = [];

/** Runs `fn(arg)` once the current read callback has returned, or on the next tick outside one. */
export function afterRead<T>(fn: (arg: T) => void, arg: T): void {
  if (depth === 0) {
    process.nextTick(fn, arg);
    return;
  }
  fns.push(fn as (arg: unknown) => void);
  args.push(arg);
}

/** Calls `callback(nread, buffer)` as a read callback: what it queued with afterRead runs when it returns. */
export function runAsRead(callback: (nread: number, buffer: Buffer) => boolean, nread: number, buffer: Buffer): boolean {
  depth++;
  try {
    return callback(nread, buffer);
  } finally {
    if (--depth === 0 && fns.length > 0) runQueued();
  }
}

function runQueued(): void {
  let i = 0;
  try {
    for (; i < fns.length; i++) fns[i]!(args[i]);
  } finally {
    // A task that threw: the ones after it still run, on the next tick.
    for (let j = i + 1; j < fns.length; j++) process.nextTick(fns[j]!, args[j]);
    fns.length = 0;
    args.length = 0;
  }
}
