// Parses envoy.extensions.filters.http.header_to_metadata.v3.Config (also its per-route form):
// request and response rules from a header or a cookie into dynamic metadata. PROTOBUF_VALUE
// values are refused with their field path.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { compileRegexSubstitution, type RegexSubstitution } from '../../../proxy/http/matchers.ts';
import type { RegexMatchAndSubstitute__Output } from '../../../generated/envoy/type/matcher/v3/RegexMatchAndSubstitute.ts';

export const HEADER_TO_METADATA_NAME = 'envoy.filters.http.header_to_metadata';
export const HEADER_TO_METADATA_TYPE = 'envoy.extensions.filters.http.header_to_metadata.v3.Config';

interface KeyValuePair__Output {
  readonly metadata_namespace: string;
  readonly key: string;
  readonly value: string;
  readonly regex_value_rewrite: RegexMatchAndSubstitute__Output | null;
  readonly type: string | number;
  readonly encode: string | number;
}
interface Rule__Output {
  readonly header: string;
  readonly cookie: string;
  readonly on_header_present: KeyValuePair__Output | null;
  readonly on_header_missing: KeyValuePair__Output | null;
  readonly remove: boolean;
}
interface Config__Output {
  readonly request_rules: readonly Rule__Output[];
  readonly response_rules: readonly Rule__Output[];
}

export interface MetadataTarget {
  readonly namespace: string;
  readonly key: string;
  /** A fixed value; undefined: the header's (rewritten by `rewrite`). */
  readonly value: string | undefined;
  readonly rewrite: RegexSubstitution | undefined;
  readonly number: boolean;
  readonly base64: boolean;
}

export interface HeaderRule {
  /** Lower-case header name, or undefined for a cookie rule. */
  readonly header: string | undefined;
  readonly cookie: string | undefined;
  readonly onPresent: MetadataTarget | undefined;
  readonly onMissing: MetadataTarget | undefined;
  readonly remove: boolean;
}

export interface HeaderToMetadataConfig {
  readonly requestRules: readonly HeaderRule[];
  readonly responseRules: readonly HeaderRule[];
}

function target(kv: KeyValuePair__Output | null, path: string, missing: boolean, errors: ConfigError[]): MetadataTarget | undefined {
  if (!kv) return undefined;
  const type = String(kv.type);
  if (type === 'PROTOBUF_VALUE' || type === '2') errors.push({ path: joinPath(path, 'type'), reason: 'PROTOBUF_VALUE is not supported' });
  if (missing && !kv.value) errors.push({ path: joinPath(path, 'value'), reason: 'on_header_missing needs a value' });
  let rewrite: RegexSubstitution | undefined;
  if (kv.regex_value_rewrite) {
    const r = compileRegexSubstitution(kv.regex_value_rewrite, joinPath(path, 'regex_value_rewrite'));
    if (r.ok) rewrite = r.value;
    else errors.push(...r.errors);
  }
  return {
    namespace: kv.metadata_namespace || HEADER_TO_METADATA_NAME,
    key: kv.key,
    value: kv.value || undefined,
    rewrite,
    number: type === 'NUMBER' || type === '1',
    base64: String(kv.encode) === 'BASE64' || String(kv.encode) === '1',
  };
}

function rules(list: readonly Rule__Output[], path: string, errors: ConfigError[]): HeaderRule[] {
  return list.map((r, i) => {
    const p = joinPath(path, `[${i}]`);
    if (!r.header && !r.cookie) errors.push({ path: p, reason: 'one of header or cookie is required' });
    if (r.cookie && r.remove) errors.push({ path: joinPath(p, 'remove'), reason: 'cannot remove a cookie' });
    if (!r.on_header_present && !r.on_header_missing) errors.push({ path: p, reason: 'one of on_header_present or on_header_missing is required' });
    return {
      header: r.header ? r.header.toLowerCase() : undefined,
      cookie: r.cookie || undefined,
      onPresent: target(r.on_header_present, joinPath(p, 'on_header_present'), false, errors),
      onMissing: target(r.on_header_missing, joinPath(p, 'on_header_missing'), true, errors),
      remove: r.remove,
    };
  });
}

export function parseHeaderToMetadata(message: unknown, ctx: { readonly path: string }): Result<HeaderToMetadataConfig> {
  const m = message as Config__Output;
  const errors: ConfigError[] = [];
  const value = Object.freeze({ requestRules: rules(m.request_rules, joinPath(ctx.path, 'request_rules'), errors), responseRules: rules(m.response_rules, joinPath(ctx.path, 'response_rules'), errors) });
  return errors.length > 0 ? { ok: false, errors } : ok(value);
}
