// Envoy's token bucket (envoy.type.v3.TokenBucket) for the local rate limit filters: `max_tokens`,
// `tokens_per_fill` every `fill_interval`. A shared bucket lives in three SharedCounters cells, so
// every worker thread draws from the same tokens (Envoy's buckets are per process). Refills are
// lazy: the first taker after a fill boundary advances the fill index with compare-and-swap and
// only that winner adds tokens, so a refill is never applied twice. No timers; nothing throws.

import { fail, joinPath, ok, type ConfigError, type Result } from '../config/result.ts';
import { durationMs, wrapped } from '../config/values.ts';
import type { TokenBucket__Output } from '../generated/envoy/type/v3/TokenBucket.ts';
import type { SharedCell, SharedCounters } from './shared-counters.ts';

export interface TokenBucketSpec {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** Envoy's local rate limiter refuses fill intervals under 50 ms. */
export const MIN_FILL_INTERVAL_MS = 50;

/** Parses and validates a TokenBucket (max_tokens > 0, tokens_per_fill > 0 (default 1), fill_interval >= 50 ms). */
export function parseTokenBucket(tb: TokenBucket__Output | null | undefined, path: string): Result<TokenBucketSpec> {
  if (!tb) return fail(path, 'value is required');
  const errors: ConfigError[] = [];
  if (!(tb.max_tokens > 0)) errors.push({ path: joinPath(path, 'max_tokens'), reason: 'value must be greater than 0' });
  const perFill = wrapped(tb.tokens_per_fill, 1);
  if (!(perFill > 0)) errors.push({ path: joinPath(path, 'tokens_per_fill'), reason: 'value must be greater than 0' });
  const fill = durationMs(tb.fill_interval);
  if (fill === undefined) errors.push({ path: joinPath(path, 'fill_interval'), reason: 'value is required' });
  else if (fill < MIN_FILL_INTERVAL_MS) errors.push({ path: joinPath(path, 'fill_interval'), reason: `local rate limit token bucket fill timer must be >= ${MIN_FILL_INTERVAL_MS}ms` });
  if (errors.length > 0 || fill === undefined) return { ok: false, errors };
  return ok(Object.freeze({ maxTokens: tb.max_tokens, tokensPerFill: perFill, fillIntervalMs: fill }));
}

/** Monotonic milliseconds; the same clock (CLOCK_MONOTONIC) in every worker thread of the process. */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1000 + ns / 1e6;
}

export interface TokenBucket {
  readonly spec: TokenBucketSpec;
  /** Takes one token; false when the bucket is empty. */
  consume(): boolean;
  /** Tokens left now (after any refill due). */
  remaining(): number;
  /** Milliseconds until the next fill. */
  msUntilFill(): number;
}

/**
 * The bucket over three cells: `phase` (the clock's offset within an interval at first use, + 1;
 * 0 = unused), `fill` (index of the last applied fill, + 1, modulo 2^32; 0 = unset) and `used`
 * (tokens taken out of max_tokens, so a fresh bucket, all zeros, is full).
 */
class CellTokenBucket implements TokenBucket {
  readonly spec: TokenBucketSpec;
  readonly #phase: SharedCell;
  readonly #fill: SharedCell;
  readonly #used: SharedCell;
  readonly #now: () => number;

  constructor(spec: TokenBucketSpec, cells: readonly [SharedCell, SharedCell, SharedCell], now: () => number) {
    this.spec = spec;
    [this.#phase, this.#fill, this.#used] = cells;
    this.#now = now;
  }

  consume(): boolean {
    this.#refill(this.#now());
    return this.#used.tryIncrement(this.spec.maxTokens);
  }

  remaining(): number {
    this.#refill(this.#now());
    return Math.max(0, this.spec.maxTokens - this.#used.load());
  }

  msUntilFill(): number {
    const now = this.#now();
    const phase = this.#phaseOf(now);
    const into = (((now - phase) % this.spec.fillIntervalMs) + this.spec.fillIntervalMs) % this.spec.fillIntervalMs;
    return Math.ceil(this.spec.fillIntervalMs - into);
  }

  #phaseOf(now: number): number {
    let p = this.#phase.load();
    if (p === 0) {
      const mine = Math.floor(now % this.spec.fillIntervalMs) + 1;
      const seen = this.#phase.compareExchange(0, mine);
      p = seen === 0 ? mine : seen;
    }
    return p - 1;
  }

  #refill(now: number): void {
    const { fillIntervalMs, tokensPerFill, maxTokens } = this.spec;
    const stored = (Math.floor((now - this.#phaseOf(now)) / fillIntervalMs) + 1) | 0;
    const last = this.#fill.load();
    if (last === 0) {
      // First use (or the index wrapped to 0): start counting fills from now, the bucket is full.
      this.#fill.compareExchange(0, stored);
      return;
    }
    const fills = (stored - last) | 0;
    if (fills <= 0) return;
    // Only the worker whose CAS moves the index adds the tokens of those fills.
    if (this.#fill.compareExchange(last, stored) !== last) return;
    const add = Math.min(maxTokens, fills * tokensPerFill);
    for (;;) {
      const used = this.#used.load();
      const next = Math.max(0, used - add);
      if (next === used || this.#used.compareExchange(used, next) === used) return;
    }
  }
}

/** A plain (single-thread) cell, for per-connection buckets. */
class LocalCell implements SharedCell {
  #v = 0;
  load(): number {
    return this.#v;
  }
  store(v: number): void {
    this.#v = v | 0;
  }
  add(n: number): number {
    this.#v = (this.#v + n) | 0;
    return this.#v;
  }
  tryIncrement(limit: number): boolean {
    if (this.#v >= limit) return false;
    this.#v++;
    return true;
  }
  compareExchange(expected: number, replacement: number): number {
    const v = this.#v;
    if (v === expected) this.#v = replacement | 0;
    return v;
  }
}

/** The process-wide bucket named `key`: the same key gives the same tokens in every worker. */
export function sharedTokenBucket(shared: SharedCounters, key: string, spec: TokenBucketSpec, now: () => number = monotonicMs): TokenBucket {
  // The spec is part of the key: a changed bucket config starts a fresh bucket, as in Envoy.
  const k = `token_bucket.${key}.${spec.maxTokens}/${spec.tokensPerFill}/${spec.fillIntervalMs}`;
  return new CellTokenBucket(spec, [shared.cell(`${k}.phase`), shared.cell(`${k}.fill`), shared.cell(`${k}.used`)], now);
}

/** A bucket private to its owner (one downstream connection). */
export function localTokenBucket(spec: TokenBucketSpec, now: () => number = monotonicMs): TokenBucket {
  return new CellTokenBucket(spec, [new LocalCell(), new LocalCell(), new LocalCell()], now);
}
