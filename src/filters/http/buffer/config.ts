// Parses envoy.extensions.filters.http.buffer.v3.Buffer (max_request_bytes) and its per-route
// BufferPerRoute (disabled, or another max_request_bytes).

import { joinPath, ok, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export const BUFFER_NAME = 'envoy.filters.http.buffer';
export const BUFFER_TYPE = 'envoy.extensions.filters.http.buffer.v3.Buffer';

// The decoded messages (proto-loader object form; src/generated has no types for these protos).
interface Buffer__Output {
  readonly max_request_bytes: { readonly value: number } | null;
}
interface BufferPerRoute__Output {
  readonly disabled?: boolean;
  readonly buffer?: Buffer__Output | null;
}

export interface BufferConfig {
  /** 0: the filter does nothing (a route that disables it). */
  readonly maxRequestBytes: number;
}

function maxBytes(m: Buffer__Output | null | undefined, path: string): Result<BufferConfig> {
  const v = m?.max_request_bytes?.value;
  if (v === undefined) return { ok: false, errors: [{ path: joinPath(path, 'max_request_bytes'), reason: 'value is required' }] };
  if (!(v > 0)) return { ok: false, errors: [{ path: joinPath(path, 'max_request_bytes.value'), reason: 'value must be greater than 0' }] };
  return ok(Object.freeze({ maxRequestBytes: v }));
}

export function parseBuffer(message: unknown, ctx: ParseContext): Result<BufferConfig> {
  return maxBytes(message as Buffer__Output, ctx.path);
}

const DISABLED: BufferConfig = Object.freeze({ maxRequestBytes: 0 });

export function parseBufferPerRoute(message: unknown, path: string): Result<BufferConfig> {
  const m = message as BufferPerRoute__Output;
  if (m.disabled) return ok(DISABLED);
  if (!m.buffer) return { ok: false, errors: [{ path, reason: 'one of disabled or buffer is required' }] };
  return maxBytes(m.buffer, joinPath(path, 'buffer'));
}
