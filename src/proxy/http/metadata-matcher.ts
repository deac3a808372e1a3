// Envoy's MetadataMatcher over a stream's dynamic metadata (RBAC's metadata permissions and
// principals): the value at `filter` + `path`, tested with a ValueMatcher (null, double exact or
// range, string, bool, present, list one_of, or), `invert` negating the result.

import { joinPath, type ConfigError } from '../../config/result.ts';
import { compileStringMatcher } from './matchers.ts';
import { dynamicMetadataValue } from './dynamic-metadata.ts';
import type { StreamInfo } from './stream-info.ts';
import type { MetadataMatcher__Output } from '../../generated/envoy/type/matcher/v3/MetadataMatcher.ts';
import type { ValueMatcher__Output } from '../../generated/envoy/type/matcher/v3/ValueMatcher.ts';

type ValueTest = (v: unknown) => boolean;
const NEVER: ValueTest = () => false;

function compileValue(m: ValueMatcher__Output | null, path: string, errors: ConfigError[]): ValueTest {
  switch (m?.match_pattern) {
    case 'null_match':
      return (v) => v === null;
    case 'double_match': {
      const d = m.double_match;
      if (d?.match_pattern === 'exact') return (v) => typeof v === 'number' && v === d.exact;
      const r = d?.range;
      if (!r) return NEVER;
      return (v) => typeof v === 'number' && v >= r.start && v < r.end; // [start, end)
    }
    case 'string_match': {
      const s = compileStringMatcher(m.string_match ?? null, joinPath(path, 'string_match'));
      if (!s.ok) {
        errors.push(...s.errors);
        return NEVER;
      }
      return (v) => typeof v === 'string' && s.value(v);
    }
    case 'bool_match':
      return (v) => typeof v === 'boolean' && v === m.bool_match;
    case 'present_match':
      // Envoy: true matches any value there; false never matches.
      return m.present_match ? (v) => v !== undefined : NEVER;
    case 'list_match': {
      const one = compileValue(m.list_match?.one_of ?? null, joinPath(path, 'list_match.one_of'), errors);
      return (v) => Array.isArray(v) && v.some(one);
    }
    case 'or_match': {
      const list = (m.or_match?.value_matchers ?? []).map((x, i) => compileValue(x, joinPath(path, `or_match.value_matchers[${i}]`), errors));
      return (v) => list.some((t) => t(v));
    }
    default:
      errors.push({ path, reason: 'one of null_match, double_match, string_match, bool_match, present_match, list_match, or_match is required' });
      return NEVER;
  }
}

/** A compiled MetadataMatcher over `info.dynamicMetadata`. */
export function compileMetadataMatcher(m: MetadataMatcher__Output, path: string, errors: ConfigError[]): (info: StreamInfo) => boolean {
  if (!m.filter) errors.push({ path: joinPath(path, 'filter'), reason: 'value length must be at least 1 characters' });
  if (m.path.length === 0) errors.push({ path: joinPath(path, 'path'), reason: 'value must contain at least 1 item(s)' });
  const keys = m.path.map((s) => s.key ?? '');
  const test = compileValue(m.value, joinPath(path, 'value'), errors);
  const invert = m.invert;
  return (info) => test(dynamicMetadataValue(info, m.filter, keys)) !== invert;
}
