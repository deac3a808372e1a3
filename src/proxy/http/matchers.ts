// Envoy's string, header and query-parameter matchers and RE2 regexes, compiled once at config
// time into plain predicates. A bad matcher (unsupported RE2 syntax, empty prefix...) is a Result error.

import { fail, ok, joinPath, type Result } from '../../config/result.ts';
import type { HeaderMap } from './headers.ts';
import type { StringMatcher__Output } from '../../generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { RegexMatcher__Output } from '../../generated/envoy/type/matcher/v3/RegexMatcher.ts';
import type { RegexMatchAndSubstitute__Output } from '../../generated/envoy/type/matcher/v3/RegexMatchAndSubstitute.ts';
import type { HeaderMatcher__Output } from '../../generated/envoy/config/route/v3/HeaderMatcher.ts';
import type { QueryParameterMatcher__Output } from '../../generated/envoy/config/route/v3/QueryParameterMatcher.ts';

export type StringPredicate = (value: string) => boolean;

// ---- RE2 -> JavaScript ----

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, (c) => (c === '-' ? '\\x2d' : `\\${c}`));
}

/**
 * Translates RE2 syntax to a JavaScript RegExp source. RE2 has no backreferences or lookaround,
 * so those are rejected (as Envoy would); `(?P<n>...)`, `\A`, `\z`, `\Q...\E`, `\pL`, `[[:alpha:]]`
 * and a leading `(?i)`/`(?s)` are rewritten.
 */
export function translateRe2(re: string): { source: string; flags: string } | { error: string } {
  let flags = '';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(re);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'U') return { error: 'the U flag is not supported' };
      if (!flags.includes(f)) flags += f;
    }
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  while (i < re.length) {
    const c = re[i]!;
    if (c === '\\') {
      const n = re[i + 1];
      if (n === undefined) return { error: 'trailing \\' };
      if (n === 'Q') {
        const end = re.indexOf('\\E', i + 2);
        const lit = end < 0 ? re.slice(i + 2) : re.slice(i + 2, end);
        out += escapeLiteral(lit);
        i = end < 0 ? re.length : end + 2;
        continue;
      }
      if (!inClass && n === 'A') out += '^';
      else if (!inClass && n === 'z') out += '$';
      else if (n === 'C') return { error: '\\C is not supported' };
      else if (n >= '1' && n <= '9' && !inClass) return { error: 'backreferences are not supported' };
      else if ((n === 'p' || n === 'P') && re[i + 2] !== '{') {
        const cls = re[i + 2];
        if (cls === undefined) return { error: 'bad \\p' };
        out += `\\${n}{${cls}}`;
        i += 3;
        continue;
      } else out += c + n;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === '[' && re[i + 1] === ':') {
        const end = re.indexOf(':]', i + 2);
        const name = end < 0 ? undefined : re.slice(i + 2, end);
        const neg = name?.startsWith('^');
        const cls = name === undefined ? undefined : POSIX_CLASSES[neg ? name.slice(1) : name];
        if (cls === undefined) return { error: `invalid character class ${re.slice(i, end + 2)}` };
        if (neg) return { error: 'negated POSIX classes are not supported' };
        out += cls;
        i = end + 2;
        continue;
      }
      if (c === '[') out += '\\[';
      else {
        if (c === ']') inClass = false;
        out += c;
      }
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      // A `]` right after `[` or `[^` is a literal in RE2.
      if (re[i] === '^') {
        out += '^';
        i++;
      }
      if (re[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && re[i + 1] === '?') {
      const rest = re.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (/^(=|!|<=|<!|P=)/.test(rest)) return { error: 'lookaround and backreferences are not supported' };
      if (/^[imsU-]+\)/.test(rest)) return { error: 'flags in the middle of a pattern are not supported; use (?i:\u2026)' };
    }
    if (c === '/') out += '\\/';
    else out += c;
    i++;
  }
  return { source: out, flags };
}

/** Compiles an RE2 pattern into a JS RegExp; `mode` full -> anchored both ends, global -> for replaceAll. */
export function compileRe2(re: string, mode: 'full' | 'search' | 'global'): RegExp | { error: string } {
  const t = translateRe2(re);
  if ('error' in t) return t;
  const source = mode === 'full' ? `^(?:${t.source})$` : t.source;
  const flags = t.flags + (mode === 'global' ? 'g' : '');
  try {
    return new RegExp(source, flags + 'u');
  } catch {
    try {
      return new RegExp(source, flags);
    } catch (e) {
      return { error: (e as Error).message };
    }
  }
}

/** A RegexMatcher (safe_regex) as a full-match predicate, as Envoy's `match()` does. */
export function compileRegexMatcher(m: RegexMatcher__Output | null, path: string): Result<RegExp> {
  if (!m) return fail(path, 'value is required');
  const r = compileRe2(m.regex, 'full');
  if ('error' in r) return fail(joinPath(path, 'regex'), `invalid regex "${m.regex}": ${r.error}`);
  return ok(r);
}

export interface RegexSubstitution {
  /** Replaces every match of the pattern in `value` (RE2::GlobalReplace). */
  replaceAll(value: string): string;
}

/** RE2 substitutions use `\1`; JS uses `$1`. Literal `$` must be doubled. */
function translateSubstitution(sub: string): string {
  let out = '';
  for (let i = 0; i < sub.length; i++) {
    const c = sub[i]!;
    if (c === '\\') {
      const n = sub[i + 1];
      if (n !== undefined && n >= '0' && n <= '9') {
        out += n === '0' ? '$&' : `$${n}`;
        i++;
        continue;
      }
      if (n === '\\') {
        out += '\\';
        i++;
        continue;
      }
      out += c;
    } else if (c === '$') out += '$$';
    else out += c;
  }
  return out;
}

export function compileRegexSubstitution(m: RegexMatchAndSubstitute__Output | null, path: string): Result<RegexSubstitution> {
  if (!m) return fail(path, 'value is required');
  if (!m.pattern) return fail(joinPath(path, 'pattern'), 'value is required');
  const r = compileRe2(m.pattern.regex, 'global');
  if ('error' in r) return fail(joinPath(path, 'pattern.regex'), `invalid regex "${m.pattern.regex}": ${r.error}`);
  const sub = translateSubstitution(m.substitution);
  return ok({ replaceAll: (value: string) => value.replace(r, sub) });
}

// ---- StringMatcher ----

export function compileStringMatcher(m: StringMatcher__Output | null, path: string): Result<StringPredicate> {
  if (!m) return fail(path, 'value is required');
  const ic = m.ignore_case;
  switch (m.match_pattern) {
    case 'exact': {
      const want = m.exact ?? '';
      if (!ic) return ok((v) => v === want);
      const lw = want.toLowerCase();
      return ok((v) => v.length === lw.length && v.toLowerCase() === lw);
    }
    case 'prefix':
    case 'suffix':
    case 'contains': {
      const kind = m.match_pattern;
      const want = m[kind] ?? '';
      if (want.length === 0) return fail(joinPath(path, kind), 'value length must be at least 1 characters');
      const w = ic ? want.toLowerCase() : want;
      const norm = ic ? (v: string) => v.toLowerCase() : (v: string) => v;
      if (kind === 'prefix') return ok((v) => norm(v).startsWith(w));
      if (kind === 'suffix') return ok((v) => norm(v).endsWith(w));
      return ok((v) => norm(v).includes(w));
    }
    case 'safe_regex': {
      if (ic) return fail(joinPath(path, 'ignore_case'), 'ignore_case has no effect for safe_regex.');
      const r = compileRegexMatcher(m.safe_regex ?? null, joinPath(path, 'safe_regex'));
      if (!r.ok) return r;
      const re = r.value;
      return ok((v) => re.test(v));
    }
    case 'custom':
      return fail(joinPath(path, 'custom'), 'custom string matchers are not supported');
    default:
      return fail(joinPath(path, 'match_pattern'), 'value is required');
  }
}

// ---- HeaderMatcher ----

export type HeaderPredicate = (headers: HeaderMap) => boolean;

const HEADER_NAME = /^[^\0\r\n]+$/;
const INT = /^\s*[+-]?\d+\s*$/;

/**
 * Envoy's HeaderUtility::matchHeaders: repeated headers are joined with `,`; a missing header
 * fails every specifier, inverted or not, except presence checks (`present_match: false`, or
 * inverted `present_match: true`), unless treat_missing_header_as_empty.
 */
export function compileHeaderMatcher(m: HeaderMatcher__Output, path: string): Result<HeaderPredicate> {
  if (!m.name || !HEADER_NAME.test(m.name)) return fail(joinPath(path, 'name'), 'must be a valid HTTP header name');
  const name = m.name.toLowerCase();
  let test: StringPredicate;
  let present = true;
  const kind = m.header_match_specifier;
  switch (kind) {
    case 'exact_match': {
      const want = m.exact_match ?? '';
      test = (v) => want === '' || v === want;
      break;
    }
    case 'safe_regex_match': {
      const r = compileRegexMatcher(m.safe_regex_match ?? null, joinPath(path, 'safe_regex_match'));
      if (!r.ok) return r;
      const re = r.value;
      test = (v) => re.test(v);
      break;
    }
    case 'range_match': {
      const range = m.range_match;
      if (!range) return fail(joinPath(path, 'range_match'), 'value is required');
      const start = BigInt(range.start);
      const end = BigInt(range.end);
      test = (v) => {
        if (!INT.test(v)) return false;
        const n = BigInt(v.trim());
        return n >= start && n < end;
      };
      break;
    }
    case 'prefix_match':
    case 'suffix_match':
    case 'contains_match': {
      const want = m[kind] ?? '';
      if (want.length === 0) return fail(joinPath(path, kind), 'value length must be at least 1 characters');
      test = kind === 'prefix_match' ? (v) => v.startsWith(want) : kind === 'suffix_match' ? (v) => v.endsWith(want) : (v) => v.includes(want);
      break;
    }
    case 'string_match': {
      const r = compileStringMatcher(m.string_match ?? null, joinPath(path, 'string_match'));
      if (!r.ok) return r;
      test = r.value;
      break;
    }
    case 'present_match':
    case undefined:
      // No specifier: Envoy checks presence.
      present = kind === undefined ? true : m.present_match === true;
      test = () => present;
      break;
    default:
      return fail(path, `unsupported header matcher ${String(kind)}`);
  }
  const isPresent = kind === 'present_match' || kind === undefined;
  const invert = m.invert_match;
  const missingAsEmpty = m.treat_missing_header_as_empty;
  return ok((headers) => {
    const values = headers.getAll(name);
    if (values.length === 0 && !missingAsEmpty) return isPresent && !present !== invert;
    const value = values.length === 0 ? '' : values.length === 1 ? values[0]! : values.join(',');
    return test(value) !== invert;
  });
}

/** All matchers must pass (an empty list passes). */
export function compileHeaderMatchers(list: readonly HeaderMatcher__Output[], path: string): Result<HeaderPredicate | undefined> {
  const preds: HeaderPredicate[] = [];
  for (let i = 0; i < list.length; i++) {
    const r = compileHeaderMatcher(list[i]!, `${path}[${i}]`);
    if (!r.ok) return r;
    preds.push(r.value);
  }
  if (preds.length === 0) return ok(undefined);
  return ok((h) => {
    for (const p of preds) if (!p(h)) return false;
    return true;
  });
}

// ---- query parameters ----

/** Splits the query of a `:path` into name -> first value (not percent-decoded, as Envoy's route matching does). */
export function parseQueryFirst(pathHeader: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = pathHeader.indexOf('?');
  if (q < 0) return out;
  let end = pathHeader.indexOf('#', q);
  if (end < 0) end = pathHeader.length;
  for (const part of pathHeader.slice(q + 1, end).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (!out.has(k)) out.set(k, eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

export type QueryPredicate = (query: ReadonlyMap<string, string>) => boolean;

export function compileQueryParameterMatcher(m: QueryParameterMatcher__Output, path: string): Result<QueryPredicate> {
  if (!m.name) return fail(joinPath(path, 'name'), 'value length must be at least 1 characters');
  const name = m.name;
  if (m.query_parameter_match_specifier === 'string_match') {
    const r = compileStringMatcher(m.string_match ?? null, joinPath(path, 'string_match'));
    if (!r.ok) return r;
    const test = r.value;
    return ok((q) => {
      const v = q.get(name);
      return v !== undefined && test(v);
    });
  }
  // present_match (or no specifier): presence only, as Envoy's QueryParameterMatcher does.
  return ok((q) => q.has(name));
}
