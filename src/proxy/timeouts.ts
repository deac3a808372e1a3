// Timeouts for the request path at a fraction of node:timers' cost per timer. Every stream arms an
// idle timeout and its route timeout, refreshes the first a few times and clears both: with
// setTimeout that is a Timeout object (a dozen fields and an async id) per timer, the loop's time
// read on every start and refresh, and a list lookup by duration; those calls were about 2.5% of a
// worker's time under HTTP/1.1 12 B load. Here, as in node:timers, timeouts of one duration share
// one queue, kept in deadline order by appending (a start or a refresh always has the latest
// deadline of its queue), so starting, refreshing and stopping are list splices. Each queue keeps one
// unref'd node:timers timer armed for the deadline at its head; it fires at most about once per
// duration and re-arms for what is then at the head. Timeouts fire in deadline order, never early.

import { TIMEOUT_MAX_MS } from './long-timers.ts';

/** A queue of timeouts of one duration (see startTimeout). */
class TimeoutQueue {
  readonly ms: number;
  head: Timeout | null = null;
  tail: Timeout | null = null;
  /** The node:timers timer armed for the head's deadline (or an earlier one), when any. */
  #timer: NodeJS.Timeout | undefined;
  /** In #fire: timeouts started by the callbacks do not arm (#fire arms for the head afterwards). */
  #firing = false;

  constructor(ms: number) {
    this.ms = ms;
  }

  append(t: Timeout): void {
    t.deadline = performance.now() + this.ms;
    t.queue = this;
    t.prev = this.tail;
    t.next = null;
    if (this.tail) this.tail.next = t;
    else this.head = t;
    this.tail = t;
    if (this.#timer === undefined && !this.#firing) this.#arm(this.ms);
  }

  unlink(t: Timeout): void {
    const { prev, next } = t;
    if (prev) prev.next = next;
    else this.head = next;
    if (next) next.prev = prev;
    else this.tail = prev;
    t.prev = t.next = t.queue = null;
  }

  #arm(delayMs: number): void {
    // Longer than node:timers takes (it would fire after 1 ms): fire early, find nothing due, re-arm.
    this.#timer = setTimeout(this.#fire, Math.min(delayMs, TIMEOUT_MAX_MS));
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    let failure: { error: unknown } | undefined;
    this.#firing = true;
    for (let t = this.head; t !== null && t.deadline <= now; t = this.head) {
      this.unlink(t);
      try {
        t.onTimeout();
      } catch (error) {
        failure ??= { error };
      }
    }
    this.#firing = false;
    const head = this.head;
    // A deadline within the last fraction of a millisecond comes back as a 1 ms wait, never 0.
    if (head !== null) this.#arm(Math.max(1, Math.ceil(head.deadline - performance.now())));
    else if (queues.get(this.ms) === this) queues.delete(this.ms);
    // As node:timers would: a callback's exception is uncaught, after the queue is consistent.
    if (failure) throw failure.error;
  };
}

/** Per thread (module state is per isolate): one queue per duration in use. */
const queues = new Map<number, TimeoutQueue>();

function queueFor(ms: number): TimeoutQueue {
  let q = queues.get(ms);
  if (q === undefined) {
    q = new TimeoutQueue(ms);
    queues.set(ms, q);
  }
  return q;
}

/** A started timeout: setTimeout's handle, with refresh() and stop(). */
export class Timeout {
  readonly ms: number;
  readonly onTimeout: () => void;
  // The fields below belong to TimeoutQueue: its list links and the deadline (performance.now()).
  deadline = 0;
  queue: TimeoutQueue | null = null;
  prev: Timeout | null = null;
  next: Timeout | null = null;

  constructor(ms: number, onTimeout: () => void) {
    this.ms = ms;
    this.onTimeout = onTimeout;
  }

  /** Pending: started, not yet fired or stopped. */
  get pending(): boolean {
    return this.queue !== null;
  }

  /** The full duration again from now; as timeout.refresh(), a fired or stopped timeout starts again. */
  refresh(): void {
    const q = this.queue;
    if (q === null) queueFor(this.ms).append(this);
    else if (q.tail === this) this.deadline = performance.now() + q.ms;
    else {
      q.unlink(this);
      q.append(this);
    }
  }

  /** clearTimeout(). */
  stop(): void {
    this.queue?.unlink(this);
  }
}

/** setTimeout(onTimeout, ms), ms below 1 taken as 1: fires once, `ms` from now, unless stopped. */
export function startTimeout(ms: number, onTimeout: () => void): Timeout {
  const t = new Timeout(ms >= 1 ? ms : 1, onTimeout);
  queueFor(t.ms).append(t);
  return t;
}

/** Queues in use (tests: an emptied queue is dropped once its timer has fired). */
export function queuedDurations(): number[] {
  return [...queues.keys()];
}
