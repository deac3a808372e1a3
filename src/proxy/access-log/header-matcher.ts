// Envoy's HeaderMatcher (route.v3) compiled into a predicate over a HeaderMap, for access log
// header_filter. Bad regexes and unsupported matchers are Result errors with their field path.

import { fail, joinPath, ok, type Result } from '../../config/result.ts';
import type { HeaderMatcher__Output } from '../../generated/envoy/config/route/v3/HeaderMatcher.ts';
import type { StringMatcher__Output } from '../../generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { HeaderMap } from '../http/headers.ts';

export type HeaderPredicate = (headers: HeaderMap | undefined) => boolean;

/** RE2 (Envoy's safe_regex) → a JS RegExp matching the whole value. */
function fullRegex(src: string, path: string, flags = ''): Result<RegExp> {
  try {
    return ok(new RegExp(`^(?:${src})$`, flags));
  } catch (e) {
    return fail(path, `invalid regex '${src}': ${(e as Error).message}`);
  }
}

/** StringMatcher → a predicate on a string. */
export function compileStringMatcher(m: StringMatcher__Output, path: string): Result<(v: string) => boolean> {
  const ic = m.ignore_case;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  switch (m.match_pattern) {
    case 'exact': {
      const x = norm(m.exact ?? '');
      return ok((v) => norm(v) === x);
    }
    case 'prefix': {
      const x = norm(m.prefix ?? '');
      return ok((v) => norm(v).startsWith(x));
    }
    case 'suffix': {
      const x = norm(m.suffix ?? '');
      return ok((v) => norm(v).endsWith(x));
    }
    case 'contains': {
      const x = norm(m.contains ?? '');
      return ok((v) => norm(v).includes(x));
    }
    case 'safe_regex': {
      const re = fullRegex(m.safe_regex?.regex ?? '', joinPath(path, 'safe_regex.regex'));
      if (!re.ok) return re;
      return ok((v) => re.value.test(v));
    }
    default:
      return fail(path, `string matcher ${m.match_pattern ?? '(none)'} is not supported`);
  }
}

export function compileHeaderMatcher(h: HeaderMatcher__Output, path: string): Result<HeaderPredicate> {
  if (!h.name) return fail(joinPath(path, 'name'), 'header name is required');
  const name = h.name.toLowerCase();
  const invert = h.invert_match;
  let test: (v: string) => boolean;
  switch (h.header_match_specifier) {
    case undefined:
    case 'present_match': {
      // Presence only: present_match false (or unset specifier with false) matches absence.
      const want = h.header_match_specifier === undefined ? true : h.present_match !== false;
      return ok((headers) => ((headers?.get(name) !== undefined) === want) !== invert);
    }
    case 'exact_match': {
      const x = h.exact_match ?? '';
      test = (v) => v === x;
      break;
    }
    case 'prefix_match': {
      const x = h.prefix_match ?? '';
      test = (v) => v.startsWith(x);
      break;
    }
    case 'suffix_match': {
      const x = h.suffix_match ?? '';
      test = (v) => v.endsWith(x);
      break;
    }
    case 'contains_match': {
      const x = h.contains_match ?? '';
      test = (v) => v.includes(x);
      break;
    }
    case 'safe_regex_match': {
      const re = fullRegex(h.safe_regex_match?.regex ?? '', joinPath(path, 'safe_regex_match.regex'));
      if (!re.ok) return re;
      test = (v) => re.value.test(v);
      break;
    }
    case 'range_match': {
      const start = Number(h.range_match?.start ?? 0);
      const end = Number(h.range_match?.end ?? 0);
      test = (v) => {
        if (!/^-?[0-9]+$/.test(v)) return false;
        const n = Number(v);
        return n >= start && n < end;
      };
      break;
    }
    case 'string_match': {
      if (!h.string_match) return fail(joinPath(path, 'string_match'), 'string_match is required');
      const sm = compileStringMatcher(h.string_match, joinPath(path, 'string_match'));
      if (!sm.ok) return sm;
      test = sm.value;
      break;
    }
    default:
      return fail(path, `header matcher ${String(h.header_match_specifier)} is not supported`);
  }
  const missingAsEmpty = h.treat_missing_header_as_empty;
  return ok((headers) => {
    const all = headers?.getAll(name) ?? [];
    if (all.length === 0) {
      // An absent header never matches a value matcher, inverted or not (Envoy's rule).
      if (!missingAsEmpty) return false;
      return test('') !== invert;
    }
    // Repeated headers are matched as one comma-joined value, as Envoy does.
    return test(all.length === 1 ? all[0]! : all.join(',')) !== invert;
  });
}
