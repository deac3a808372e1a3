// Envoy's local replies: local_reply_config (mappers and body_format) parsed into a frozen
// LocalReplyConfig, the text/plain or gRPC trailers-only response they produce, and the HTTP ->
// gRPC status mapping. Parsing fails with field paths; rewriting never throws.

import { joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { wrapped } from '../../config/values.ts';
import type { LocalReplyConfig__Output } from '../../generated/envoy/extensions/filters/network/http_connection_manager/v3/LocalReplyConfig.ts';
import type { SubstitutionFormatString__Output } from '../../generated/envoy/config/core/v3/SubstitutionFormatString.ts';
import { parseLogFormat, parseAccessLogFilter, type AccessLogFilter } from '../access-log/index.ts';
import type { Formatter } from './formatter.ts';
import { compileHeaderParser } from './header-mutation.ts';
import { HeaderMap } from './headers.ts';
import type { HeaderMutator } from './route-types.ts';
import type { StreamInfo } from './stream-info.ts';
import { readDataSource } from '../../config/data-source.ts';
import { grpcPercentEncode } from '../grpc-message.ts';

/** A body format: the formatted body (with %LOCAL_REPLY_BODY%) and its content type. */
export interface LocalReplyBodyFormat {
  format(info: StreamInfo, body: string): string;
  readonly contentType: string;
}

export interface LocalReplyMapper {
  readonly filter: AccessLogFilter;
  readonly status: number | undefined;
  readonly body: string | undefined;
  readonly bodyFormat: LocalReplyBodyFormat | undefined;
  readonly headers: HeaderMutator | undefined;
}

export interface LocalReplyConfig {
  readonly mappers: readonly LocalReplyMapper[];
  readonly bodyFormat: LocalReplyBodyFormat | undefined;
}

export const EMPTY_LOCAL_REPLY_CONFIG: LocalReplyConfig = Object.freeze({ mappers: [], bodyFormat: undefined });

// The formatter has no %LOCAL_REPLY_BODY%: it is swapped for a private-use sentinel that survives
// text and JSON formatting unescaped, then replaced by the body.
const SENTINEL = '\uE000LOCAL_REPLY_BODY\uE000';

function substituteBody(v: unknown): unknown {
  if (typeof v === 'string') return v.includes('%LOCAL_REPLY_BODY%') ? v.split('%LOCAL_REPLY_BODY%').join(SENTINEL) : v;
  if (Array.isArray(v)) return v.map(substituteBody);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v) && !ArrayBuffer.isView(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = substituteBody(x);
    return out;
  }
  return v;
}

function parseBodyFormat(sfs: SubstitutionFormatString__Output, path: string): Result<LocalReplyBodyFormat> {
  const parsed = parseLogFormat(substituteBody(sfs) as SubstitutionFormatString__Output, path);
  if (!parsed.ok) return parsed;
  const formatter: Formatter = parsed.value.formatter;
  const json = sfs.format === 'json_format';
  const contentType = parsed.value.contentType ?? (json ? 'application/json' : 'text/plain');
  return ok({
    contentType,
    format(info: StreamInfo, body: string): string {
      const out = formatter.format(info);
      if (!out.includes(SENTINEL)) return out;
      const b = json ? JSON.stringify(body).slice(1, -1) : body;
      return out.split(SENTINEL).join(b);
    },
  });
}

export function parseLocalReplyConfig(msg: LocalReplyConfig__Output | null, path: string): Result<LocalReplyConfig> {
  if (!msg) return ok(EMPTY_LOCAL_REPLY_CONFIG);
  const errors: ConfigError[] = [];
  const mappers: LocalReplyMapper[] = [];
  msg.mappers.forEach((m, i) => {
    const p = joinPath(path, `mappers[${i}]`);
    if (!m.filter) {
      errors.push({ path: joinPath(p, 'filter'), reason: 'value is required' });
      return;
    }
    const filter = parseAccessLogFilter(m.filter, joinPath(p, 'filter'));
    if (!filter.ok) return void errors.push(...filter.errors);
    const status = wrapped(m.status_code);
    if (status !== undefined && (status < 200 || status >= 600)) {
      errors.push({ path: joinPath(p, 'status_code'), reason: 'value must be inside range [200, 600)' });
    }
    let body: string | undefined;
    if (m.body) {
      const b = readDataSource(m.body, joinPath(p, 'body'));
      if (!b.ok) return void errors.push(...b.errors);
      body = b.value;
    }
    let bodyFormat: LocalReplyBodyFormat | undefined;
    if (m.body_format_override) {
      const f = parseBodyFormat(m.body_format_override, joinPath(p, 'body_format_override'));
      if (!f.ok) return void errors.push(...f.errors);
      bodyFormat = f.value;
    }
    let headers: HeaderMutator | undefined;
    if (m.headers_to_add.length > 0) {
      // compileHeaderParser names fields `<prefix>_headers_to_add`; rename to this message's field.
      const h = compileHeaderParser(m.headers_to_add, [], p, 'response');
      if (!h.ok) {
        errors.push(...h.errors.map((e) => ({ path: e.path.replace('response_headers_to_add', 'headers_to_add'), reason: e.reason })));
        return;
      }
      headers = h.value;
    }
    mappers.push({ filter: filter.value, status, body, bodyFormat, headers });
  });
  let bodyFormat: LocalReplyBodyFormat | undefined;
  if (msg.body_format) {
    const f = parseBodyFormat(msg.body_format, joinPath(path, 'body_format'));
    if (!f.ok) errors.push(...f.errors);
    else bodyFormat = f.value;
  }
  if (errors.length > 0) return { ok: false, errors };
  return ok(Object.freeze({ mappers: Object.freeze(mappers), bodyFormat }));
}

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

export interface LocalReplyResponse {
  readonly headers: HeaderMap;
  /** Undefined: headers end the stream. */
  readonly body: Buffer | undefined;
}

/**
 * Builds Envoy's local reply: local_reply_config applied (first matching mapper's status, body,
 * headers, body format; then body_format), then either text (content-type text/plain unless a body
 * format says otherwise) or, for gRPC requests, a trailers-only 200 with grpc-status/grpc-message.
 * Sets info.responseCode to the final status.
 */
export function buildLocalReply(
  cfg: LocalReplyConfig,
  info: StreamInfo,
  req: { readonly isGrpc: boolean; readonly isHead: boolean },
  status: number,
  bodyIn: string,
  opts: { readonly headers?: Readonly<Record<string, string>>; readonly modifyHeaders?: (headers: HeaderMap) => void; readonly grpcStatus?: number },
): LocalReplyResponse {
  info.responseCode = status;
  let body = bodyIn;
  let code = status;
  let format = cfg.bodyFormat;
  let mapperHeaders: HeaderMutator | undefined;
  for (const m of cfg.mappers) {
    if (!m.filter.evaluate(info)) continue;
    if (m.status !== undefined) code = m.status;
    if (m.body !== undefined) body = m.body;
    if (m.bodyFormat) format = m.bodyFormat;
    mapperHeaders = m.headers;
    break;
  }
  info.responseCode = code;
  let contentType = 'text/plain';
  if (format) {
    body = format.format(info, body);
    contentType = format.contentType;
  }
  const headers = new HeaderMap();
  if (req.isGrpc) {
    headers.add(':status', '200');
    headers.add('content-type', 'application/grpc');
    headers.add('grpc-status', String(opts.grpcStatus ?? httpToGrpcStatus(code)));
    if (body !== '' && !req.isHead) headers.add('grpc-message', grpcPercentEncode(body));
    if (opts.headers) for (const k in opts.headers) headers.set(k, opts.headers[k]!);
    opts.modifyHeaders?.(headers);
    mapperHeaders?.apply(headers, info);
    return { headers, body: undefined };
  }
  headers.add(':status', String(code));
  const buf = body === '' ? undefined : Buffer.from(body, 'utf8');
  if (buf) {
    headers.add('content-length', String(buf.length));
    headers.add('content-type', contentType);
  }
  if (opts.headers) for (const k in opts.headers) headers.set(k, opts.headers[k]!);
  opts.modifyHeaders?.(headers);
  mapperHeaders?.apply(headers, info);
  return { headers, body: req.isHead ? undefined : buf };
}
