// Parses envoy.extensions.filters.http.compressor.v3.Compressor (response compression) with a gzip
// or brotli compressor_library, and CompressorPerRoute. Request compression, zstd and the
// per-route overrides are refused with their field paths.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { unpackAny } from '../../../config/decode.ts';
import type { ParseContext } from '../../registry.ts';

export const COMPRESSOR_NAME = 'envoy.filters.http.compressor';
export const COMPRESSOR_TYPE = 'envoy.extensions.filters.http.compressor.v3.Compressor';
const GZIP_TYPE = 'envoy.extensions.compression.gzip.compressor.v3.Gzip';
const BROTLI_TYPE = 'envoy.extensions.compression.brotli.compressor.v3.Brotli';

/** Envoy's default compressible types. */
const DEFAULT_CONTENT_TYPES = ['application/javascript', 'application/json', 'application/xhtml+xml', 'image/svg+xml', 'text/css', 'text/html', 'text/plain', 'text/xml'];

type Wrapped = { readonly value: number } | null | undefined;
interface FeatureFlag__Output {
  readonly default_value: { readonly value: boolean } | null;
  readonly runtime_key: string;
}
interface CommonDirection__Output {
  readonly enabled: FeatureFlag__Output | null;
  readonly min_content_length: Wrapped;
  readonly content_type: readonly string[];
}
interface Compressor__Output {
  readonly content_length: Wrapped;
  readonly content_type: readonly string[];
  readonly disable_on_etag_header: boolean;
  readonly remove_accept_encoding_header: boolean;
  readonly runtime_enabled: FeatureFlag__Output | null;
  readonly compressor_library: { readonly name: string; readonly typed_config: { type_url: string; value: Buffer | Uint8Array } | null } | null;
  readonly request_direction_config: { readonly common_config: CommonDirection__Output | null } | null;
  readonly response_direction_config: { readonly common_config: CommonDirection__Output | null; readonly disable_on_etag_header: boolean; readonly remove_accept_encoding_header: boolean } | null;
  readonly choose_first: boolean;
}
interface Gzip__Output {
  readonly memory_level: Wrapped;
  readonly compression_level: string | number;
  readonly compression_strategy: string | number;
  readonly window_bits: Wrapped;
  readonly chunk_size: Wrapped;
}
interface Brotli__Output {
  readonly quality: Wrapped;
  readonly encoder_mode: string | number;
  readonly window_bits: Wrapped;
  readonly input_block_bits: Wrapped;
  readonly chunk_size: Wrapped;
  readonly disable_literal_context_modeling: boolean;
}

export type Library =
  | { readonly kind: 'gzip'; readonly level: number; readonly memLevel: number; readonly windowBits: number; readonly strategy: number; readonly chunkSize: number }
  | { readonly kind: 'brotli'; readonly quality: number; readonly windowBits: number; readonly mode: 'generic' | 'text' | 'font'; readonly chunkSize: number; readonly disableLiteralContextModeling: boolean };

export interface CompressorConfig {
  readonly library: Library;
  /** compressor_library.name: stats under http.<prefix>.compressor.<name>.<gzip|br>. */
  readonly libraryName: string;
  /** content-encoding token: gzip or br. */
  readonly encoding: string;
  /** enabled (a RuntimeFeatureFlag; unset: always, `runtime_key` empty then). */
  readonly enabled: { readonly runtimeKey: string; readonly dflt: boolean };
  readonly minContentLength: number;
  /** Media types (lower case, no parameters). */
  readonly contentTypes: ReadonlySet<string>;
  readonly disableOnEtag: boolean;
  readonly removeAcceptEncoding: boolean;
}

const GZIP_LEVELS: Record<string, number> = { DEFAULT_COMPRESSION: 6, BEST_SPEED: 1, BEST_COMPRESSION: 9 };
const GZIP_STRATEGIES: Record<string, number> = { DEFAULT_STRATEGY: 0, FILTERED: 1, HUFFMAN_ONLY: 2, RLE: 3, FIXED: 4 };

function gzipLevel(v: string | number): number {
  if (typeof v === 'number') return v === 0 ? 6 : v;
  return GZIP_LEVELS[v] ?? Number(/^COMPRESSION_LEVEL_([1-9])$/.exec(v)?.[1] ?? 6);
}

function library(m: Compressor__Output, path: string, errors: ConfigError[]): Library | undefined {
  const lib = m.compressor_library;
  const lp = joinPath(path, 'compressor_library');
  if (!lib?.typed_config) {
    errors.push({ path: lp, reason: 'value is required' });
    return undefined;
  }
  const any = unpackAny<Gzip__Output | Brotli__Output>(lib.typed_config, joinPath(lp, 'typed_config'));
  if (!any.ok) {
    errors.push(...any.errors);
    return undefined;
  }
  const w = (x: Wrapped, d: number): number => x?.value ?? d;
  if (any.value.typeName === GZIP_TYPE) {
    const g = any.value.message as Gzip__Output;
    return { kind: 'gzip', level: gzipLevel(g.compression_level), memLevel: w(g.memory_level, 5), windowBits: w(g.window_bits, 12), strategy: typeof g.compression_strategy === 'number' ? g.compression_strategy : (GZIP_STRATEGIES[g.compression_strategy] ?? 0), chunkSize: w(g.chunk_size, 4096) };
  }
  if (any.value.typeName === BROTLI_TYPE) {
    const b = any.value.message as Brotli__Output;
    const mode = String(b.encoder_mode).toLowerCase();
    return { kind: 'brotli', quality: w(b.quality, 3), windowBits: w(b.window_bits, 18), mode: mode === 'text' || mode === '1' ? 'text' : mode === 'font' || mode === '2' ? 'font' : 'generic', chunkSize: w(b.chunk_size, 4096), disableLiteralContextModeling: b.disable_literal_context_modeling };
  }
  errors.push({ path: joinPath(lp, 'typed_config'), reason: `compressor library ${any.value.typeName} is not supported (gzip and brotli are)` });
  return undefined;
}

export function parseCompressor(message: unknown, ctx: ParseContext): Result<CompressorConfig> {
  const m = message as Compressor__Output;
  const errors: ConfigError[] = [];
  const lib = library(m, ctx.path, errors);
  const req = m.request_direction_config?.common_config;
  if (req?.enabled && (req.enabled.default_value?.value ?? true)) errors.push({ path: joinPath(ctx.path, 'request_direction_config.common_config.enabled'), reason: 'request compression is not supported yet' });
  const res = m.response_direction_config;
  const common = res?.common_config;
  const flag = common?.enabled ?? m.runtime_enabled;
  const types = common?.content_type.length ? common.content_type : m.content_type.length ? m.content_type : DEFAULT_CONTENT_TYPES;
  if (errors.length > 0 || !lib) return { ok: false, errors };
  return ok(
    Object.freeze({
      library: Object.freeze(lib),
      libraryName: m.compressor_library?.name ?? '',
      encoding: lib.kind === 'gzip' ? 'gzip' : 'br',
      enabled: Object.freeze({ runtimeKey: flag?.runtime_key ?? '', dflt: flag?.default_value?.value ?? true }),
      minContentLength: common?.min_content_length?.value ?? m.content_length?.value ?? 30,
      contentTypes: new Set(types.map((t) => t.trim().toLowerCase())),
      disableOnEtag: res ? res.disable_on_etag_header : m.disable_on_etag_header,
      removeAcceptEncoding: res ? res.remove_accept_encoding_header : m.remove_accept_encoding_header,
    }),
  );
}

export interface CompressorPerRoute {
  readonly disabled: boolean;
}

export function parseCompressorPerRoute(message: unknown, path: string): Result<CompressorPerRoute> {
  const m = message as { disabled?: boolean; overrides?: unknown };
  if (m.disabled) return ok({ disabled: true });
  if (m.overrides) return { ok: false, errors: [{ path: joinPath(path, 'overrides'), reason: 'per-route compressor overrides are not supported yet' }] };
  return { ok: false, errors: [{ path, reason: 'one of disabled or overrides is required' }] };
}
