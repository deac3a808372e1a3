// setTimeout and setInterval for durations that come from config, a request header or a plugin,
// without node:timers' cap: node:timers turns any delay above 2^31-1 ms (24.8 days) into 1 ms, so
// a drain, idle or health-check interval of 30 days would fire at once (and an interval would
// spin). A longer delay runs as a chain of node:timers timers; ref and unref hold across the chain.
// The request path's own timeouts use timeouts.ts (shared queues, no cap either).

/** node:timers' longest delay (TIMEOUT_MAX), ms; socket timeouts above it are cut to it, with a warning. */
export const TIMEOUT_MAX_MS = 2 ** 31 - 1;

/** A timer from setLongTimeout or setLongInterval: clear() as clearTimeout, unref() and refresh() as a Timeout's. */
export class LongTimer {
  readonly #fn: () => void;
  readonly #ms: number;
  readonly #repeat: boolean;
  #timer: NodeJS.Timeout | undefined;
  /** What is left of the current delay after the armed node:timers timer fires, ms. */
  #left = 0;
  #ref = true;

  constructor(fn: () => void, ms: number, repeat: boolean) {
    this.#fn = fn;
    // As node:timers: below 1 ms (or not a number) is 1 ms.
    this.#ms = ms >= 1 ? ms : 1;
    this.#repeat = repeat;
    this.#arm(this.#ms);
  }

  /** Armed: not yet fired (a timeout) or not cleared. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  #arm(delayMs: number): void {
    const now = Math.min(delayMs, TIMEOUT_MAX_MS);
    this.#left = delayMs - now;
    this.#timer = setTimeout(this.#fire, now);
    if (!this.#ref) this.#timer.unref();
  }

  readonly #fire = (): void => {
    if (this.#left > 0) return this.#arm(this.#left);
    if (this.#repeat) this.#arm(this.#ms);
    else this.#timer = undefined;
    this.#fn();
  };

  /** clearTimeout() / clearInterval(). */
  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The full delay again from now (also after it fired or was cleared), as timeout.refresh(). */
  refresh(): this {
    this.clear();
    this.#arm(this.#ms);
    return this;
  }

  /** Does not keep the event loop alive. */
  unref(): this {
    this.#ref = false;
    this.#timer?.unref();
    return this;
  }
}

/** setTimeout(fn, ms) without the 24.8-day cap. */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  return new LongTimer(fn, ms, false);
}

/** setInterval(fn, ms) without the 24.8-day cap. */
export function setLongInterval(fn: () => void, ms: number): LongTimer {
  return new LongTimer(fn, ms, true);
}
