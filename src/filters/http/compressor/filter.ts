// The compressor filter (Envoy's CompressorFilter), response side: a response whose request accepts
// the library's encoding (Accept-Encoding, q-values, `*`, `identity`), with a body of a compressible
// type and at least min_content_length, not already encoded, not `no-transform`, is compressed with
// node:zlib (gzip or brotli, flushed at every chunk as Envoy does) and sent with content-encoding,
// without content-length, a weak etag and `vary: accept-encoding`. zlib works off the event loop's
// thread: each compressed piece goes on through the filters after this one as it is made. Stats
// under http.<prefix>.compressor.<library name>.<encoding>.

import zlib from 'node:zlib';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { COMPRESSOR_NAME, parseCompressorPerRoute, type CompressorConfig, type CompressorPerRoute } from './config.ts';

const STATS = [
  'no_accept_header',
  'header_identity',
  'header_compressor_used',
  'header_wildcard',
  'header_not_valid',
  'not_compressed_etag',
  'response.compressed',
  'response.not_compressed',
  'response.content_length_too_small',
  'response.total_uncompressed_bytes',
  'response.total_compressed_bytes',
] as const;
type Stat = (typeof STATS)[number];

/** Accept-Encoding against one encoding: compress or not, and the header stat Envoy counts. */
export function negotiate(accept: string | undefined, encoding: string): { readonly use: boolean; readonly stat: Stat } {
  if (accept === undefined) return { use: false, stat: 'no_accept_header' };
  let ours = -1;
  let wildcard = -1;
  let identity = -1;
  let valid = false;
  for (const part of accept.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = (rawName ?? '').trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'q') q = Number(p.slice(eq + 1).trim());
    }
    if (!(q >= 0 && q <= 1)) continue;
    valid = true;
    if (name === encoding) ours = Math.max(ours, q);
    else if (name === '*') wildcard = Math.max(wildcard, q);
    else if (name === 'identity') identity = Math.max(identity, q);
  }
  if (!valid) return { use: false, stat: 'header_not_valid' };
  const q = ours >= 0 ? ours : wildcard;
  if (q > 0 && q >= identity) return { use: true, stat: ours >= 0 ? 'header_compressor_used' : 'header_wildcard' };
  return { use: false, stat: 'header_identity' };
}

export class CompressorFactory implements HttpFilterFactory<CompressorConfig> {
  readonly config: CompressorConfig;
  readonly rt: RuntimeContext;
  readonly perRoute = new PerRouteConfigs<CompressorPerRoute>(COMPRESSOR_NAME, 'CompressorPerRoute', parseCompressorPerRoute);
  readonly #stats = new Map<string, Counter>();

  constructor(config: CompressorConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
  }

  create(_config: CompressorConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new CompressorFilter(this, callbacks);
  }

  inc(statPrefix: string, stat: Stat, by = 1): void {
    const name = `http.${statPrefix}.compressor.${this.config.libraryName}.${this.config.encoding}.${stat}`;
    let c = this.#stats.get(name);
    if (!c) this.#stats.set(name, (c = this.rt.stats.counter(name)));
    c.inc(by);
  }

  enabled(): boolean {
    const e = this.config.enabled;
    return this.rt.runtime.getBoolean(e.runtimeKey, e.dflt);
  }

  makeStream(): zlib.Gzip | zlib.BrotliCompress {
    const l = this.config.library;
    if (l.kind === 'gzip') return zlib.createGzip({ level: l.level, memLevel: l.memLevel, windowBits: l.windowBits, strategy: l.strategy, chunkSize: l.chunkSize });
    const mode = l.mode === 'text' ? zlib.constants.BROTLI_MODE_TEXT : l.mode === 'font' ? zlib.constants.BROTLI_MODE_FONT : zlib.constants.BROTLI_MODE_GENERIC;
    return zlib.createBrotliCompress({
      chunkSize: l.chunkSize,
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: l.quality, [zlib.constants.BROTLI_PARAM_LGWIN]: l.windowBits, [zlib.constants.BROTLI_PARAM_MODE]: mode, [zlib.constants.BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING]: l.disableLiteralContextModeling ? 1 : 0 },
    });
  }
}

/** The media type of a content-type value, lower case, without parameters. */
const mediaType = (v: string): string => (v.split(';')[0] ?? '').trim().toLowerCase();

export class CompressorFilter implements HttpFilter {
  readonly #f: CompressorFactory;
  readonly #cb: HttpFilterCallbacks;
  /** The request's Accept-Encoding, read before it may be removed. */
  #accept: string | undefined;
  #active = false;
  #z: zlib.Gzip | zlib.BrotliCompress | undefined;
  /** Trailers held until the compressed body before them has gone on. */
  #trailersHeld = false;

  constructor(factory: CompressorFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  #disabledForRoute(): boolean {
    const route = this.#cb.route();
    const o = route?.perFilterConfig.get(COMPRESSOR_NAME);
    if (o === undefined || route === undefined) return false;
    if (o === FILTER_DISABLED) return true;
    return typeof o === 'object' && o !== null && (this.#f.perRoute.get(o, route)?.disabled ?? false);
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (this.#disabledForRoute() || !this.#f.enabled()) return FilterHeadersStatus.Continue;
    this.#active = true;
    const all = headers.getAll('accept-encoding');
    this.#accept = all.length === 0 ? undefined : all.join(',');
    if (this.#f.config.removeAcceptEncoding) headers.remove('accept-encoding');
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    if (!this.#active || endStream || this.#cb.injectEncodedData === undefined) return FilterHeadersStatus.Continue;
    const c = this.#f.config;
    const prefix = this.#cb.statPrefix;
    const ct = headers.get('content-type');
    const status = Number(headers.get(':status'));
    const length = headers.get('content-length');
    const cacheControl = headers.getAll('cache-control').join(',').toLowerCase();
    // What makes the body compressible at all (the answer then varies with Accept-Encoding).
    const compressible =
      (ct === undefined || c.contentTypes.has(mediaType(ct))) &&
      !(status === 204 || status === 304 || status < 200) &&
      headers.get('content-encoding') === undefined &&
      !/(?:^|[,\s])no-transform(?:$|[,\s])/.test(cacheControl);
    if (!compressible) return this.#skip(prefix);
    if (length !== undefined && Number(length) < c.minContentLength) {
      this.#f.inc(prefix, 'response.content_length_too_small');
      return this.#skip(prefix);
    }
    const etag = headers.get('etag');
    if (etag !== undefined && c.disableOnEtag) {
      this.#f.inc(prefix, 'not_compressed_etag');
      return this.#skip(prefix);
    }
    const vary = headers.getAll('vary');
    if (!vary.some((v) => v.toLowerCase().split(',').some((t) => t.trim() === 'accept-encoding' || t.trim() === '*'))) {
      if (vary.length === 0) headers.set('vary', 'accept-encoding');
      else headers.set('vary', `${vary.join(', ')}, accept-encoding`);
    }
    const choice = negotiate(this.#accept, c.encoding);
    this.#f.inc(prefix, choice.stat);
    if (!choice.use) return this.#skip(prefix);
    this.#f.inc(prefix, 'response.compressed');
    headers.remove('content-length');
    headers.set('content-encoding', c.encoding);
    if (etag !== undefined && !etag.startsWith('W/')) headers.set('etag', `W/${etag}`);
    const z = (this.#z = this.#f.makeStream());
    z.on('data', (out: Buffer) => {
      this.#f.inc(prefix, 'response.total_compressed_bytes', out.length);
      this.#cb.injectEncodedData!(out, false);
    });
    z.on('end', () => {
      if (this.#trailersHeld) {
        this.#trailersHeld = false;
        this.#cb.continueEncoding();
      } else this.#cb.injectEncodedData!(Buffer.alloc(0), true);
    });
    z.on('error', (e: Error) => this.#cb.resetStream(`compressor: ${e.message}`));
    return FilterHeadersStatus.Continue;
  }

  #skip(prefix: string): FilterHeadersStatus {
    this.#f.inc(prefix, 'response.not_compressed');
    return FilterHeadersStatus.Continue;
  }

  onResponseBody(data: Buffer, endStream: boolean): FilterDataStatus {
    const z = this.#z;
    if (!z) return FilterDataStatus.Continue;
    this.#f.inc(this.#cb.statPrefix, 'response.total_uncompressed_bytes', data.length);
    if (endStream) z.end(data);
    else {
      z.write(data);
      z.flush(z instanceof zlib.Gzip ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH);
    }
    return FilterDataStatus.StopIterationNoBuffer;
  }

  onResponseTrailers(): FilterTrailersStatus {
    const z = this.#z;
    if (!z) return FilterTrailersStatus.Continue;
    // The compressed body ends before the trailers go on.
    this.#trailersHeld = true;
    z.end();
    return FilterTrailersStatus.StopIteration;
  }

  onDestroy(): void {
    this.#z?.destroy();
  }
}
