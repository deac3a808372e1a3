// Envoy's JitteredExponentialBackOffStrategy for xDS stream retries: the ceiling doubles from the
// base up to the maximum, and each wait is drawn uniformly from [0, ceiling) ("full jitter").
// Reset after a stream delivers a response.

/** Envoy's xDS retry defaults (grpc_mux_impl: RETRY_INITIAL_DELAY_MS, RETRY_MAX_DELAY_MS). */
export const XDS_BACKOFF_BASE_MS = 500;
export const XDS_BACKOFF_MAX_MS = 30 * 1000; // 30s

export class JitteredBackoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #ceiling: number;

  constructor(baseMs = XDS_BACKOFF_BASE_MS, maxMs = XDS_BACKOFF_MAX_MS, random: () => number = Math.random) {
    this.#baseMs = Math.max(1, baseMs);
    this.#maxMs = Math.max(this.#baseMs, maxMs);
    this.#random = random;
    this.#ceiling = this.#baseMs;
  }

  /** The next wait in ms; each call doubles the ceiling (up to the maximum). */
  next(): number {
    const wait = Math.floor(this.#random() * this.#ceiling);
    this.#ceiling = Math.min(this.#ceiling * 2, this.#maxMs);
    return wait;
  }

  reset(): void {
    this.#ceiling = this.#baseMs;
  }
}
