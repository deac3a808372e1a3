// Reading proto-loader values (the form every decoded config takes: durations as
// {seconds: string, nanos}, wrappers as {value} or null, 64-bit integers as strings).

import type { Duration__Output } from '../generated/google/protobuf/Duration.ts';

/** Duration -> milliseconds; null/undefined -> fallback. */
export function durationMs(d: Duration__Output | null | undefined): number | undefined;
export function durationMs(d: Duration__Output | null | undefined, fallback: number): number;
export function durationMs(d: Duration__Output | null | undefined, fallback?: number): number | undefined {
  if (!d) return fallback;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

/** A wrapper message ({value}) -> its value; null -> fallback. */
export function wrapped<T>(w: { value: T } | null | undefined): T | undefined;
export function wrapped<T>(w: { value: T } | null | undefined, fallback: T): T;
export function wrapped<T>(w: { value: T } | null | undefined, fallback?: T): T | undefined {
  return w ? w.value : fallback;
}

/** A uint64/int64 decoded as a string -> number. */
export function int64(v: string | number | null | undefined, fallback = 0): number {
  if (v === null || v === undefined || v === '') return fallback;
  return Number(v);
}
