// protoc-gen-validate: applies the `(validate.rules)` / `(validate.required)` annotations of
// Envoy's protos to a decoded (proto-loader form) message, recursing into Any values. Collects errors.

import protobuf from 'protobufjs';
import type { ConfigError } from './result.ts';
import { lookupMessageType } from './protos.ts';
import { normalizeMessage } from './json-decode.ts';
import { structToJson } from './struct-json.ts';
import { OBJECT_OPTIONS, TYPED_STRUCT_TYPES, WRAPPER_KINDS, fieldPath, formatDuration, fullName, indexPath, isPlainObject, keyPath } from './wkt.ts';

type Obj = Record<string, unknown>;
type Rules = Record<string, unknown>;
const MAX_DEPTH = 100;

/** Validates `msg` (proto-loader object form of `type`) and appends every violation to `errors`. */
export function validateMessage(type: protobuf.Type, msg: Obj, path: string, errors: ConfigError[], depth = 0): void {
  if (depth > MAX_DEPTH) return;
  const opts = type.options;
  if (opts?.['(validate.disabled)'] === true || opts?.['(validate.ignored)'] === true) return;
  for (const oneof of type.oneofsArray) {
    if (oneof.options?.['(validate.required)'] === true && (msg[oneof.name] === undefined || msg[oneof.name] === null)) {
      errors.push({ path, reason: `exactly one of fields [${oneof.oneof.join(', ')}] must be set` });
    }
  }
  for (const field of type.fieldsArray) {
    if (field.partOf && msg[field.partOf.name] !== field.name) continue; // oneof member not set
    const value = msg[field.name];
    const rules = rulesOf(field);
    const fpath = fieldPath(path, field.name);
    if (field.map) validateMap(field, rules, value, fpath, errors, depth);
    else if (field.repeated) validateRepeated(field, rules, value, fpath, errors, depth);
    else validateSingle(field, rules, value, fpath, errors, depth);
  }
}

const rulesCache = new WeakMap<protobuf.Field, Rules | null>();

/** The field's `(validate.rules)`, merged from every option statement that sets part of it. */
function rulesOf(field: protobuf.Field): Rules | null {
  const cached = rulesCache.get(field);
  if (cached !== undefined) return cached;
  let merged: Rules | null = null;
  for (const entry of field.parsedOptions ?? []) {
    const r = (entry as Obj)['(validate.rules)'];
    if (isPlainObject(r)) merged = deepMerge(merged ?? {}, r);
  }
  rulesCache.set(field, merged);
  return merged;
}

function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isPlainObject(prev) && isPlainObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

function validateMap(field: protobuf.Field, rules: Rules | null, value: unknown, path: string, errors: ConfigError[], depth: number): void {
  const entries = isPlainObject(value) ? Object.entries(value) : [];
  const r = sub(rules, 'map');
  if (r && !(r['ignore_empty'] === true && entries.length === 0)) {
    if (r['min_pairs'] !== undefined && entries.length < Number(r['min_pairs'])) errors.push({ path, reason: `value must contain at least ${r['min_pairs']} pair(s)` });
    if (r['max_pairs'] !== undefined && entries.length > Number(r['max_pairs'])) errors.push({ path, reason: `value must contain no more than ${r['max_pairs']} pair(s)` });
  }
  const keyRules = sub(r, 'keys');
  const valueRules = sub(r, 'values');
  const keyKind = (field as unknown as protobuf.MapField).keyType;
  for (const [k, v] of entries) {
    const kpath = keyPath(path, k);
    if (keyRules) checkScalar(keyKind, keyRules, keyKind === 'string' ? k : k, kpath, errors);
    validateSingle(field, valueRules, v, kpath, errors, depth);
  }
}

function validateRepeated(field: protobuf.Field, rules: Rules | null, value: unknown, path: string, errors: ConfigError[], depth: number): void {
  const items = Array.isArray(value) ? value : [];
  const r = sub(rules, 'repeated');
  if (r && !(r['ignore_empty'] === true && items.length === 0)) {
    if (r['min_items'] !== undefined && items.length < Number(r['min_items'])) errors.push({ path, reason: `value must contain at least ${r['min_items']} item(s)` });
    if (r['max_items'] !== undefined && items.length > Number(r['max_items'])) errors.push({ path, reason: `value must contain no more than ${r['max_items']} item(s)` });
    if (r['unique'] === true && field.resolvedType === null) {
      const seen = new Set(items.map((i) => (Buffer.isBuffer(i) ? i.toString('base64') : String(i))));
      if (seen.size !== items.length) errors.push({ path, reason: 'repeated value must contain unique items' });
    }
  }
  const itemRules = sub(r, 'items');
  items.forEach((item, i) => validateSingle(field, itemRules, item, indexPath(path, i), errors, depth));
}

/** One value of `field` (a singular field, a repeated item or a map value) against `rules`. */
function validateSingle(field: protobuf.Field, rules: Rules | null, value: unknown, path: string, errors: ConfigError[], depth: number): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    if (rules) checkEnum(rt, sub(rules, 'enum'), value, path, errors);
    return;
  }
  if (!(rt instanceof protobuf.Type)) {
    if (rules) checkScalar(field.type, rules, value, path, errors);
    return;
  }
  const name = fullName(rt);
  const msgRules = sub(rules, 'message');
  const isSet = value !== null && value !== undefined;
  const required = msgRules?.['required'] === true || sub(rules, 'duration')?.['required'] === true
    || sub(rules, 'timestamp')?.['required'] === true || sub(rules, 'any')?.['required'] === true;
  if (!isSet) {
    if (required) errors.push({ path, reason: 'value is required' });
    return;
  }
  if (!isPlainObject(value)) return;
  const wrapperKind = WRAPPER_KINDS.get(name);
  if (wrapperKind !== undefined) {
    if (rules) checkScalar(wrapperKind, rules, value['value'], path, errors);
    return;
  }
  if (name === 'google.protobuf.Duration') {
    const d = sub(rules, 'duration');
    if (d) checkDuration(d, value, path, errors);
    return;
  }
  if (name === 'google.protobuf.Any') {
    const a = sub(rules, 'any');
    const url = String(value['type_url'] ?? '');
    if (a && Array.isArray(a['in']) && !a['in'].includes(url)) errors.push({ path, reason: `type URL must be in the list [${a['in'].join(', ')}]` });
    if (a && Array.isArray(a['not_in']) && a['not_in'].includes(url)) errors.push({ path, reason: `type URL must not be in the list [${a['not_in'].join(', ')}]` });
    if (msgRules?.['skip'] !== true) validateAnyContent(value, path, errors, depth);
    return;
  }
  if (msgRules?.['skip'] === true) return;
  validateMessage(rt, value, path, errors, depth + 1);
}

/** Decodes an Any's bytes with its type (when known) and validates them, errors under the Any's path. */
export function validateAnyContent(any: Obj, path: string, errors: ConfigError[], depth: number): void {
  const url = any['type_url'];
  const bytes = any['value'];
  if (typeof url !== 'string' || url === '' || !(bytes instanceof Uint8Array)) return;
  const inner = lookupMessageType(url);
  if (!inner) return; // unknown types are the extension registry's business (and optional ones have no bytes)
  let decoded: Obj;
  try {
    decoded = inner.toObject(inner.decode(bytes), OBJECT_OPTIONS);
  } catch (e) {
    errors.push({ path, reason: `invalid ${fullName(inner)} bytes: ${(e as Error).message}` });
    return;
  }
  validateMessage(inner, decoded, path, errors, depth + 1);
  if (TYPED_STRUCT_TYPES.has(fullName(inner))) validateTypedStruct(decoded, path, errors, depth);
}

/** A TypedStruct naming a known type is checked as that type (Envoy converts it), errors under `.value`. */
function validateTypedStruct(ts: Obj, path: string, errors: ConfigError[], depth: number): void {
  const url = ts['type_url'];
  const target = typeof url === 'string' && url !== '' ? lookupMessageType(url) : undefined;
  if (!target) return;
  const vpath = fieldPath(path, 'value');
  const ctx = { errors: [] as ConfigError[], warnings: [] as string[], allowUnknownFields: false };
  const normalized = normalizeMessage(target, structToJson(ts['value']), vpath, ctx, depth + 1);
  errors.push(...ctx.errors);
  if (!normalized) return;
  try {
    validateMessage(target, target.toObject(target.fromObject(normalized), OBJECT_OPTIONS), vpath, errors, depth + 1);
  } catch (e) {
    errors.push({ path: vpath, reason: `cannot decode ${fullName(target)}: ${(e as Error).message}` });
  }
}

function sub(rules: Rules | null | undefined, key: string): Rules | null {
  const r = rules?.[key];
  return isPlainObject(r) ? r : null;
}

function list(v: unknown): unknown[] | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

const INT_KINDS = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);

/** Scalar rules (`string`, `bytes`, `bool`, numeric kinds) for one value of proto kind `kind`. */
function checkScalar(kind: string, rules: Rules, value: unknown, path: string, errors: ConfigError[]): void {
  if (kind === 'string') {
    const r = sub(rules, 'string');
    if (r && typeof value === 'string') checkString(r, value, path, errors);
  } else if (kind === 'bytes') {
    const r = sub(rules, 'bytes');
    if (r && value instanceof Uint8Array) checkBytes(r, value, path, errors);
  } else if (kind === 'bool') {
    const r = sub(rules, 'bool');
    if (r && r['const'] !== undefined && value !== r['const']) errors.push({ path, reason: `value must equal ${r['const']}` });
  } else {
    const r = sub(rules, kind);
    if (!r || value === null || value === undefined) return;
    if (INT_KINDS.has(kind)) checkRange(r, toBig(value), toBig, String, path, errors);
    else checkRange(r, Number(value), Number, String, path, errors);
  }
}

function toBig(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  try {
    return BigInt(String(v));
  } catch {
    return 0n;
  }
}

/** const / lt / lte / gt / gte / in / not_in, with PGV's wording (ranges like `[1, 10)`). */
function checkRange<V extends number | bigint>(r: Rules, v: V, conv: (x: unknown) => V, show: (x: V) => string, path: string, errors: ConfigError[]): void {
  if (r['ignore_empty'] === true && (v === 0 || v === 0n)) return;
  const push = (reason: string): void => void errors.push({ path, reason });
  if (r['const'] !== undefined && v !== conv(r['const'])) push(`value must equal ${show(conv(r['const']))}`);
  const has = (k: string): boolean => r[k] !== undefined && r[k] !== null;
  const lt = has('lt') ? conv(r['lt']) : has('lte') ? conv(r['lte']) : undefined;
  const gt = has('gt') ? conv(r['gt']) : has('gte') ? conv(r['gte']) : undefined;
  const ltIncl = !has('lt');
  const gtIncl = !has('gt');
  const belowOk = lt === undefined || (ltIncl ? v <= lt : v < lt);
  const aboveOk = gt === undefined || (gtIncl ? v >= gt : v > gt);
  if (lt !== undefined && gt !== undefined) {
    const range = `${gtIncl ? '[' : '('}${show(gt)}, ${show(lt)}${ltIncl ? ']' : ')'}`;
    if (lt > gt) {
      if (!belowOk || !aboveOk) push(`value must be inside range ${range}`);
    } else if (belowOk === false && aboveOk === false) {
      push(`value must be outside range ${ltIncl ? '(' : '['}${show(lt)}, ${show(gt)}${gtIncl ? ')' : ']'}`);
    }
  } else if (lt !== undefined && !belowOk) {
    push(`value must be less than ${ltIncl ? 'or equal to ' : ''}${show(lt)}`);
  } else if (gt !== undefined && !aboveOk) {
    push(`value must be greater than ${gtIncl ? 'or equal to ' : ''}${show(gt)}`);
  }
  const inList = list(r['in'])?.map(conv);
  if (inList && !inList.includes(v)) push(`value must be in list [${inList.map(show).join(', ')}]`);
  const notIn = list(r['not_in'])?.map(conv);
  if (notIn?.includes(v)) push(`value must not be in list [${notIn.map(show).join(', ')}]`);
}

const regexCache = new Map<string, RegExp | null>();

function compile(pattern: string): RegExp | null {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null; // RE2 syntax JavaScript lacks: not checked
    }
    regexCache.set(pattern, re);
  }
  return re;
}

function checkString(r: Rules, s: string, path: string, errors: ConfigError[]): void {
  if (r['ignore_empty'] === true && s === '') return;
  const push = (reason: string): void => void errors.push({ path, reason });
  const chars = [...s].length;
  const bytes = Buffer.byteLength(s);
  if (r['const'] !== undefined && s !== r['const']) push(`value must equal ${r['const']}`);
  if (r['len'] !== undefined && chars !== Number(r['len'])) push(`value length must be ${r['len']} characters`);
  if (r['min_len'] !== undefined && chars < Number(r['min_len'])) push(`value length must be at least ${r['min_len']} characters`);
  if (r['max_len'] !== undefined && chars > Number(r['max_len'])) push(`value length must be at most ${r['max_len']} characters`);
  if (r['len_bytes'] !== undefined && bytes !== Number(r['len_bytes'])) push(`value length must be ${r['len_bytes']} bytes`);
  if (r['min_bytes'] !== undefined && bytes < Number(r['min_bytes'])) push(`value length must be at least ${r['min_bytes']} bytes`);
  if (r['max_bytes'] !== undefined && bytes > Number(r['max_bytes'])) push(`value length must be at most ${r['max_bytes']} bytes`);
  if (typeof r['prefix'] === 'string' && !s.startsWith(r['prefix'])) push(`value does not have prefix "${r['prefix']}"`);
  if (typeof r['suffix'] === 'string' && !s.endsWith(r['suffix'])) push(`value does not have suffix "${r['suffix']}"`);
  if (typeof r['contains'] === 'string' && !s.includes(r['contains'])) push(`value does not contain substring "${r['contains']}"`);
  if (typeof r['not_contains'] === 'string' && s.includes(r['not_contains'])) push(`value contains substring "${r['not_contains']}"`);
  if (typeof r['pattern'] === 'string') {
    const re = compile(r['pattern']);
    if (re && !re.test(s)) push(`value does not match regex pattern "${r['pattern']}"`);
  }
  const inList = list(r['in']);
  if (inList && !inList.includes(s)) push(`value must be in list [${inList.join(', ')}]`);
  const notIn = list(r['not_in']);
  if (notIn?.includes(s)) push(`value must not be in list [${notIn.join(', ')}]`);
  // well_known (hostname, header names/values...): not checked; Envoy's data plane re-checks headers anyway.
}

function checkBytes(r: Rules, b: Uint8Array, path: string, errors: ConfigError[]): void {
  if (r['ignore_empty'] === true && b.length === 0) return;
  if (r['len'] !== undefined && b.length !== Number(r['len'])) errors.push({ path, reason: `value length must be ${r['len']} bytes` });
  if (r['min_len'] !== undefined && b.length < Number(r['min_len'])) errors.push({ path, reason: `value length must be at least ${r['min_len']} bytes` });
  if (r['max_len'] !== undefined && b.length > Number(r['max_len'])) errors.push({ path, reason: `value length must be at most ${r['max_len']} bytes` });
}

function checkEnum(e: protobuf.Enum, r: Rules | null, value: unknown, path: string, errors: ConfigError[]): void {
  if (!r) return;
  const num = typeof value === 'number' ? value : typeof value === 'string' ? e.values[value] : undefined;
  if (r['defined_only'] === true && (num === undefined || e.valuesById[num] === undefined)) {
    errors.push({ path, reason: 'value must be one of the defined enum values' });
  }
  if (num === undefined) return;
  checkRange(r, num, Number, String, path, errors);
}

function durationNanos(d: unknown): bigint {
  if (!isPlainObject(d)) return 0n;
  return toBig(d['seconds'] ?? 0) * 1_000_000_000n + toBig(d['nanos'] ?? 0);
}

function checkDuration(r: Rules, value: Obj, path: string, errors: ConfigError[]): void {
  const show = (n: bigint): string => formatDuration((n / 1_000_000_000n).toString(), Number(n % 1_000_000_000n));
  const conv = (x: unknown): bigint => durationNanos(x);
  const rr: Rules = {};
  for (const k of ['const', 'lt', 'lte', 'gt', 'gte', 'in', 'not_in']) if (r[k] !== undefined) rr[k] = r[k];
  checkRange(rr, durationNanos(value), conv, show, path, errors);
}
