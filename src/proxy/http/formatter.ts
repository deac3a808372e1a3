// Envoy format strings (access logs, header values, local reply bodies): parsed once into
// literal/operator pieces, formatted per stream without parsing. A bad operator is a Result error.

import { fail, ok, type ConfigError, type Result } from '../../config/result.ts';
import type { StreamInfo } from './stream-info.ts';
import { compileOperator, type Extractor, type FormatValue } from './formatter-operators.ts';

export { RESPONSE_FLAG_ORDER, KNOWN_RESPONSE_FLAGS, responseFlagsString, addressWithPort, isKnownOperator } from './formatter-operators.ts';
export type { FormatValue } from './formatter-operators.ts';

export interface Formatter {
  format(info: StreamInfo): string;
  /** Set when the output never depends on the stream (a header value without operators). */
  readonly constant?: string;
}

export interface FormatterOptions {
  /** Envoy's `omit_empty_values`: unset values print as '' (text) or are left out (JSON). */
  omitEmptyValues?: boolean;
  /** Field path for error messages. */
  path?: string;
}

export interface JsonFormatterOptions extends FormatterOptions {
  /** json_format_options.sort_properties: keys sorted instead of in config order. */
  sortProperties?: boolean;
}

/** Envoy's default access log format (note the trailing newline). */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** A parsed format string: literals[0] op[0] literals[1] op[1] ... literals[n]. */
interface Parsed {
  readonly literals: string[];
  readonly ops: Extractor[];
}

// Envoy's command grammar: %NAME%, %NAME(arg)%, %NAME(arg):maxlen%.
const COMMAND = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%/y;

function truncating(ex: Extractor, max: number): Extractor {
  return (i) => {
    const v = ex(i);
    return typeof v === 'string' && v.length > max ? v.slice(0, max) : v;
  };
}

function parse(format: string, path: string): Result<Parsed> {
  const literals: string[] = [];
  const ops: Extractor[] = [];
  const errors: ConfigError[] = [];
  let lit = '';
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      lit += format.slice(i);
      break;
    }
    lit += format.slice(i, pct);
    if (format[pct + 1] === '%') {
      lit += '%';
      i = pct + 2;
      continue;
    }
    COMMAND.lastIndex = pct;
    const m = COMMAND.exec(format);
    if (!m) {
      return fail(path, `Incorrect configuration: ${format}. Couldn't find valid command at position ${pct}`);
    }
    const [whole, name, arg, maxLen] = m;
    const ex = compileOperator(name!, arg);
    if (typeof ex === 'string') errors.push({ path, reason: ex });
    else {
      literals.push(lit);
      lit = '';
      ops.push(maxLen === undefined ? ex : truncating(ex, Number(maxLen)));
    }
    i = pct + whole.length;
  }
  literals.push(lit);
  if (errors.length) return { ok: false, errors };
  return ok({ literals, ops });
}

function textFormatter(p: Parsed, placeholder: string): Formatter {
  const { literals, ops } = p;
  if (ops.length === 0) {
    const constant = literals[0]!;
    return { constant, format: () => constant };
  }
  const n = ops.length;
  return {
    format(info: StreamInfo): string {
      let out = literals[0]!;
      for (let k = 0; k < n; k++) {
        const v = ops[k]!(info);
        out += (v === undefined ? placeholder : typeof v === 'number' ? String(v) : v) + literals[k + 1]!;
      }
      return out;
    },
  };
}

/** Compiles an access-log text format: unset values print as `-` (or '' with omitEmptyValues). */
export function compileFormatter(format: string, opts: FormatterOptions = {}): Result<Formatter> {
  const p = parse(format, opts.path ?? '');
  if (!p.ok) return p;
  return ok(textFormatter(p.value, opts.omitEmptyValues ? '' : '-'));
}

/**
 * Compiles a header mutation value (`request_headers_to_add[].header.value`...): unset values
 * are empty strings, as Envoy's header formatter does; a value without `%` is a constant.
 */
export function compileHeaderValueFormatter(value: string, opts: { path?: string } = {}): Result<Formatter> {
  if (!value.includes('%')) return ok({ constant: value, format: () => value });
  const p = parse(value, opts.path ?? '');
  if (!p.ok) return p;
  return ok(textFormatter(p.value, ''));
}

// ---- JSON (json_format) ----

type JsonNode = (info: StreamInfo) => unknown;

/** Marker for "leave this key out" under omit_empty_values. */
const OMIT = Symbol('omit');

function compileJsonValue(v: unknown, path: string, opts: JsonFormatterOptions, errors: ConfigError[]): JsonNode {
  const omit = opts.omitEmptyValues === true;
  if (typeof v === 'string') {
    const p = parse(v, path);
    if (!p.ok) {
      errors.push(...p.errors);
      return () => null;
    }
    const { literals, ops } = p.value;
    if (ops.length === 0) return () => v;
    // A lone operator keeps its type (numbers stay numbers); unset is null.
    if (ops.length === 1 && literals[0] === '' && literals[1] === '') {
      const op = ops[0]!;
      return (info) => {
        const x: FormatValue = op(info);
        if (x === undefined || x === '') return omit ? OMIT : x === undefined ? null : x;
        return x;
      };
    }
    const text = textFormatter(p.value, omit ? '' : '-');
    return (info) => text.format(info);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return () => v;
  if (Array.isArray(v)) {
    const items = v.map((x, k) => compileJsonValue(x, `${path}[${k}]`, opts, errors));
    return (info) => items.map((f) => f(info)).filter((x) => x !== OMIT);
  }
  if (typeof v === 'object') {
    return compileJsonObject(v as Record<string, unknown>, path, opts, errors);
  }
  errors.push({ path, reason: `unsupported json_format value of type ${typeof v}` });
  return () => null;
}

function compileJsonObject(obj: Record<string, unknown>, path: string, opts: JsonFormatterOptions, errors: ConfigError[]): JsonNode {
  let keys = Object.keys(obj);
  if (opts.sortProperties) keys = keys.sort();
  const fields = keys.map((k) => [k, compileJsonValue(obj[k], path ? `${path}.${k}` : k, opts, errors)] as const);
  const omit = opts.omitEmptyValues === true;
  return (info) => {
    const out: Record<string, unknown> = {};
    let any = false;
    for (const [k, f] of fields) {
      const x = f(info);
      if (x === OMIT) continue;
      out[k] = x;
      any = true;
    }
    return omit && !any && path !== '' ? OMIT : out;
  };
}

/**
 * Compiles Envoy's json_format (a plain object; see structToPlain for the proto Struct):
 * one JSON object per line, nested objects kept, lone operators typed.
 */
export function compileJsonFormatter(fields: Record<string, unknown>, opts: JsonFormatterOptions = {}): Result<Formatter> {
  const errors: ConfigError[] = [];
  const root = compileJsonObject(fields, '', { ...opts, path: undefined }, errors);
  if (errors.length) {
    const base = opts.path ?? '';
    return { ok: false, errors: errors.map((e) => ({ path: base && e.path ? `${base}.${e.path}` : base || e.path, reason: e.reason })) };
  }
  return ok({ format: (info) => JSON.stringify(root(info)) + '\n' });
}

/**
 * google.protobuf.Struct in proto-loader form (`{fields: {k: {kind, string_value...}}}`,
 * snake_case or camelCase members) -> a plain JSON object.
 */
export function structToPlain(s: unknown): Record<string, unknown> {
  const fields = (s as { fields?: Record<string, unknown> } | null)?.fields ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToPlain(v);
  return out;
}

function valueToPlain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const val = v as Record<string, unknown>;
  const kind = typeof val.kind === 'string' ? val.kind : undefined;
  const get = (snake: string, camel: string): unknown => val[snake] ?? val[camel];
  switch (kind) {
    case 'string_value':
    case 'stringValue':
      return get('string_value', 'stringValue');
    case 'number_value':
    case 'numberValue':
      return Number(get('number_value', 'numberValue'));
    case 'bool_value':
    case 'boolValue':
      return get('bool_value', 'boolValue');
    case 'null_value':
    case 'nullValue':
      return null;
    case 'struct_value':
    case 'structValue':
      return structToPlain(get('struct_value', 'structValue'));
    case 'list_value':
    case 'listValue': {
      const l = get('list_value', 'listValue') as { values?: unknown[] } | null;
      return (l?.values ?? []).map(valueToPlain);
    }
    default:
      return null;
  }
}
