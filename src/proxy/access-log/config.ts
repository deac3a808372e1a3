// AccessLog config (envoy.config.accesslog.v3.AccessLog) -> a frozen AccessLogConfig: the sink
// (file, stdout, stderr), the compiled formatter and filter. Unknown loggers and bad formats are errors.

import fs from 'node:fs';
import path from 'node:path';
import { deepFreeze, fail, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { unpackAny } from '../../config/decode.ts';
import type { AccessLog__Output } from '../../generated/envoy/config/accesslog/v3/AccessLog.ts';
import type { SubstitutionFormatString__Output } from '../../generated/envoy/config/core/v3/SubstitutionFormatString.ts';
import type { FileAccessLog__Output } from '../../generated/envoy/extensions/access_loggers/file/v3/FileAccessLog.ts';
import type { StdoutAccessLog__Output } from '../../generated/envoy/extensions/access_loggers/stream/v3/StdoutAccessLog.ts';
import { compileFormatter, compileJsonFormatter, DEFAULT_ACCESS_LOG_FORMAT, structToPlain, type Formatter } from '../http/formatter.ts';
import { parseAccessLogFilter, type AccessLogFilter } from './filter.ts';
import { readDataSource } from '../../config/data-source.ts';

export type AccessLogSink = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'stdout' } | { readonly kind: 'stderr' };

export interface AccessLogConfig {
  /** AccessLog.name, e.g. `envoy.access_loggers.file`. */
  readonly name: string;
  readonly sink: AccessLogSink;
  readonly formatter: Formatter;
  /** Undefined: every stream is logged. */
  readonly filter: AccessLogFilter | undefined;
  /** log_format.content_type, when given (used by local replies, not by file logs). */
  readonly contentType: string | undefined;
}

export const FILE_ACCESS_LOG = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const STDOUT_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
export const STDERR_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

/** Formatter extensions whose operators legate's formatter already knows. */
const KNOWN_FORMATTER_EXTENSIONS = new Set([
  'envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery',
  'envoy.extensions.formatter.metadata.v3.Metadata',
  'envoy.extensions.formatter.cel.v3.Cel',
]);

function typeNameOfUrl(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

/** SubstitutionFormatString (log_format) -> formatter. */
export function parseLogFormat(lf: SubstitutionFormatString__Output, p: string): Result<{ formatter: Formatter; contentType: string | undefined }> {
  const errors: ConfigError[] = [];
  (lf.formatters ?? []).forEach((ext, k) => {
    const t = ext.typed_config ? typeNameOfUrl(ext.typed_config.type_url) : '';
    if (!KNOWN_FORMATTER_EXTENSIONS.has(t)) errors.push({ path: joinPath(p, `formatters[${k}]`), reason: `formatter extension '${ext.name}' (${t || 'no typed_config'}) is not supported` });
  });
  if (errors.length) return { ok: false, errors };
  const omitEmptyValues = lf.omit_empty_values;
  let f: Result<Formatter>;
  switch (lf.format) {
    case 'text_format':
      f = compileFormatter(lf.text_format ?? '', { omitEmptyValues, path: joinPath(p, 'text_format') });
      break;
    case 'text_format_source': {
      const sp = joinPath(p, 'text_format_source');
      const text = lf.text_format_source ? readDataSource(lf.text_format_source, sp) : fail<string>(sp, 'text_format_source is required');
      if (!text.ok) return text;
      f = compileFormatter(text.value, { omitEmptyValues, path: sp });
      break;
    }
    case 'json_format':
      f = compileJsonFormatter(structToPlain(lf.json_format), {
        omitEmptyValues,
        sortProperties: lf.json_format_options?.sort_properties ?? false,
        path: joinPath(p, 'json_format'),
      });
      break;
    default:
      return fail(p, 'one of text_format, json_format, text_format_source is required');
  }
  if (!f.ok) return f;
  return ok({ formatter: f.value, contentType: lf.content_type || undefined });
}

function defaultFormatter(): Formatter {
  const f = compileFormatter(DEFAULT_ACCESS_LOG_FORMAT);
  if (!f.ok) throw new Error('default access log format does not compile');
  return f.value;
}

/** Checks, without creating anything, that `file` could be opened for appending. */
function checkWritable(file: string, p: string): Result<void> {
  try {
    if (fs.existsSync(file)) fs.accessSync(file, fs.constants.W_OK);
    else fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    return ok(undefined);
  } catch (e) {
    return fail(p, `unable to open access log file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function parseFileLog(m: FileAccessLog__Output, p: string): Result<{ sink: AccessLogSink; formatter: Formatter; contentType: string | undefined }> {
  if (!m.path) return fail(joinPath(p, 'path'), 'value length must be at least 1 characters');
  const w = checkWritable(m.path, joinPath(p, 'path'));
  if (!w.ok) return w;
  const sink: AccessLogSink = { kind: 'file', path: m.path };
  switch (m.access_log_format) {
    case 'format': {
      if (!m.format) return ok({ sink, formatter: defaultFormatter(), contentType: undefined });
      const f = compileFormatter(m.format, { path: joinPath(p, 'format') });
      return f.ok ? ok({ sink, formatter: f.value, contentType: undefined }) : f;
    }
    case 'json_format':
    case 'typed_json_format': {
      const which = m.access_log_format;
      const f = compileJsonFormatter(structToPlain(m[which]), { path: joinPath(p, which) });
      return f.ok ? ok({ sink, formatter: f.value, contentType: undefined }) : f;
    }
    case 'log_format': {
      if (!m.log_format) return ok({ sink, formatter: defaultFormatter(), contentType: undefined });
      const f = parseLogFormat(m.log_format, joinPath(p, 'log_format'));
      return f.ok ? ok({ sink, ...f.value }) : f;
    }
    default:
      return ok({ sink, formatter: defaultFormatter(), contentType: undefined });
  }
}

function parseStreamLog(m: StdoutAccessLog__Output, kind: 'stdout' | 'stderr', p: string): Result<{ sink: AccessLogSink; formatter: Formatter; contentType: string | undefined }> {
  const sink: AccessLogSink = { kind };
  if (!m.log_format) return ok({ sink, formatter: defaultFormatter(), contentType: undefined });
  const f = parseLogFormat(m.log_format, joinPath(p, 'log_format'));
  return f.ok ? ok({ sink, ...f.value }) : f;
}

/** Parses one AccessLog entry (HCM `access_log[]`, tcp_proxy `access_log[]`, listener `access_log[]`). */
export function parseAccessLog(al: AccessLog__Output, p: string): Result<AccessLogConfig> {
  if (!al.typed_config) return fail(joinPath(p, 'typed_config'), `access log '${al.name}' requires typed_config`);
  const tc = joinPath(p, 'typed_config');
  const typeName = typeNameOfUrl(al.typed_config.type_url);
  let parsed: Result<{ sink: AccessLogSink; formatter: Formatter; contentType: string | undefined }>;
  if (typeName === FILE_ACCESS_LOG) {
    const u = unpackAny<FileAccessLog__Output>(al.typed_config, tc);
    parsed = u.ok ? parseFileLog(u.value.message, tc) : u;
  } else if (typeName === STDOUT_ACCESS_LOG || typeName === STDERR_ACCESS_LOG) {
    const u = unpackAny<StdoutAccessLog__Output>(al.typed_config, tc);
    parsed = u.ok ? parseStreamLog(u.value.message, typeName === STDOUT_ACCESS_LOG ? 'stdout' : 'stderr', tc) : u;
  } else {
    return fail(tc, `Didn't find a registered implementation for '${al.name}' with type URL: '${typeName}'`);
  }
  if (!parsed.ok) return parsed;
  let filter: AccessLogFilter | undefined;
  if (al.filter) {
    const f = parseAccessLogFilter(al.filter, joinPath(p, 'filter'));
    if (!f.ok) return f;
    filter = f.value;
  }
  return ok(deepFreeze({ name: al.name, ...parsed.value, filter }));
}
