// Strict proto3 JSON -> protobufjs `fromObject` input, walking the reflection Type. Every
// problem is collected as {path, reason}; nothing throws for bad input.

import protobuf from 'protobufjs';
import type { ConfigError } from './result.ts';
import { lookupMessageType } from './protos.ts';
import {
  WRAPPER_KINDS, fieldPath, findField, fullName, hasSpecialJson, indexPath, isPlainObject, jsonTypeOf, keyPath,
  snakeCase, toBuffer,
} from './wkt.ts';

export interface JsonDecodeContext {
  readonly errors: ConfigError[];
  readonly warnings: string[];
  readonly allowUnknownFields: boolean;
}

type Obj = Record<string, unknown>;
const MAX_DEPTH = 100;
const MAX_DURATION_SECONDS = 315576000000n; // 10,000 years, protobuf's limit

/** Normalizes `json` for `type.fromObject`; undefined when an error was recorded. */
export function normalizeMessage(type: protobuf.Type, json: unknown, path: string, ctx: JsonDecodeContext, depth = 0, optionalAny = false): Obj | undefined {
  if (depth > MAX_DEPTH) return err(ctx, path, 'message nesting too deep');
  switch (fullName(type)) {
    case 'google.protobuf.Any': return normalizeAny(json, path, ctx, depth, optionalAny);
    case 'google.protobuf.Duration': if (typeof json === 'string') return parseDuration(json, path, ctx); break;
    case 'google.protobuf.Timestamp': if (typeof json === 'string') return parseTimestamp(json, path, ctx); break;
    case 'google.protobuf.FieldMask':
      if (typeof json === 'string') return { paths: json.split(',').filter((p) => p !== '').map((p) => p.split('.').map(snakeCase).join('.')) };
      break;
    case 'google.protobuf.Struct': return normalizeStruct(json, path, ctx, depth);
    case 'google.protobuf.Value': return normalizeValue(json, path, ctx, depth);
    case 'google.protobuf.ListValue': return normalizeList(json, path, ctx, depth);
    default: {
      const kind = WRAPPER_KINDS.get(fullName(type));
      if (kind !== undefined) {
        const v = normalizeScalar(kind, json, path, ctx);
        return v === undefined ? undefined : { value: v };
      }
    }
  }
  if (!isPlainObject(json)) {
    const what = fullName(type) === 'google.protobuf.Duration' ? 'duration string like "5s"' : 'object';
    return err(ctx, path, `expected ${what}, got ${jsonTypeOf(json)}`);
  }
  const before = ctx.errors.length;
  const out: Obj = {};
  const oneofMembers = new Map<string, string[]>();
  const isOptional = json['is_optional'] === true || json['isOptional'] === true;
  for (const [key, raw] of Object.entries(json)) {
    const field = findField(type, key);
    if (!field) {
      if (ctx.allowUnknownFields) ctx.warnings.push(`${fieldPath(path, key)}: unknown field ignored`);
      else err(ctx, fieldPath(path, key), `unknown field "${key}"`);
      continue;
    }
    const fpath = fieldPath(path, field.name);
    if (Object.hasOwn(out, field.name)) {
      err(ctx, fpath, `field "${field.name}" set more than once`);
      continue;
    }
    if (raw === null || raw === undefined) {
      const isValue = field.resolvedType instanceof protobuf.Type && fullName(field.resolvedType) === 'google.protobuf.Value';
      if (!isValue || field.repeated || field.map) continue; // null = absent
    }
    // An optional extension (HttpFilter.is_optional, route FilterConfig.is_optional) may name a type we lack.
    const anyMayBeUnknown = isOptional && field.resolvedType instanceof protobuf.Type && fullName(field.resolvedType) === 'google.protobuf.Any';
    const value = normalizeField(field, raw, fpath, ctx, depth, anyMayBeUnknown);
    if (value === undefined) continue;
    out[field.name] = value;
    if (field.partOf && field.partOf.oneof.length > 1) {
      const members = oneofMembers.get(field.partOf.name) ?? [];
      members.push(field.name);
      oneofMembers.set(field.partOf.name, members);
    }
  }
  for (const members of oneofMembers.values()) {
    if (members.length > 1) err(ctx, path, `only one of ${members.join(', ')} may be set`);
  }
  return ctx.errors.length === before ? out : undefined;
}

function normalizeField(field: protobuf.Field, raw: unknown, path: string, ctx: JsonDecodeContext, depth: number, optionalAny: boolean): unknown {
  if (field.map) {
    if (!isPlainObject(raw)) return err(ctx, path, `expected object (map), got ${jsonTypeOf(raw)}`);
    const keyType = (field as unknown as protobuf.MapField).keyType;
    const out: Obj = {};
    for (const [k, v] of Object.entries(raw)) {
      const kpath = keyPath(path, k);
      if (keyType !== 'string' && normalizeMapKey(keyType, k) === undefined) {
        err(ctx, kpath, `invalid ${keyType} map key "${k}"`);
        continue;
      }
      const value = normalizeSingle(field, v, kpath, ctx, depth, false);
      if (value !== undefined) out[normalizeMapKey(keyType, k) ?? k] = value;
    }
    return out;
  }
  if (field.repeated) {
    // Like protobuf's C++ JSON parser (and so Envoy), a lone value stands for a one-item list.
    const items = Array.isArray(raw) ? raw : [raw];
    const out: unknown[] = [];
    items.forEach((item, i) => {
      const ipath = indexPath(path, i);
      if (item === null && !(field.resolvedType instanceof protobuf.Type && fullName(field.resolvedType) === 'google.protobuf.Value')) {
        err(ctx, ipath, 'null is not allowed in a repeated field');
        return;
      }
      const value = normalizeSingle(field, item, ipath, ctx, depth, false);
      if (value !== undefined) out.push(value);
    });
    return out;
  }
  return normalizeSingle(field, raw, path, ctx, depth, optionalAny);
}

function normalizeSingle(field: protobuf.Field, raw: unknown, path: string, ctx: JsonDecodeContext, depth: number, optionalAny: boolean): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return normalizeMessage(rt, raw, path, ctx, depth + 1, optionalAny);
  if (rt instanceof protobuf.Enum) return normalizeEnum(rt, raw, path, ctx);
  return normalizeScalar(field.type, raw, path, ctx);
}

function normalizeMapKey(keyType: string, k: string): string | undefined {
  if (keyType === 'bool') return k === 'true' || k === 'false' ? k : undefined;
  if (/^-?\d+$/.test(k)) return intInRange(keyType, BigInt(k)) ? k : undefined;
  return keyType === 'string' ? k : undefined;
}

function normalizeAny(json: unknown, path: string, ctx: JsonDecodeContext, depth: number, optional: boolean): Obj | undefined {
  if (!isPlainObject(json)) return err(ctx, path, `expected object with "@type", got ${jsonTypeOf(json)}`);
  const typeUrl = json['@type'];
  if (typeUrl === undefined) {
    if (Object.keys(json).length === 0) return {};
    return err(ctx, path, 'missing "@type" in Any');
  }
  if (typeof typeUrl !== 'string') return err(ctx, fieldPath(path, '@type'), `expected string, got ${jsonTypeOf(typeUrl)}`);
  if (!typeUrl.includes('/')) return err(ctx, fieldPath(path, '@type'), `invalid type URL "${typeUrl}" (expected "type.googleapis.com/<type name>")`);
  const inner = lookupMessageType(typeUrl);
  if (!inner) {
    if (optional) return { type_url: typeUrl, value: Buffer.alloc(0) };
    return err(ctx, path, `unknown type URL "${typeUrl}"`);
  }
  const rest: Obj = { ...json };
  delete rest['@type'];
  let payload: unknown = rest;
  if (hasSpecialJson(inner)) {
    const extra = Object.keys(rest).filter((k) => k !== 'value');
    if (extra.length > 0) return err(ctx, fieldPath(path, extra[0] ?? ''), `unknown field "${extra[0]}" (a ${fullName(inner)} in an Any goes under "value")`);
    payload = rest['value'];
  }
  const normalized = normalizeMessage(inner, payload, path, ctx, depth + 1);
  if (normalized === undefined) return undefined;
  try {
    return { type_url: typeUrl, value: toBuffer(inner.encode(inner.fromObject(normalized)).finish()) };
  } catch (e) {
    return err(ctx, path, `cannot encode ${fullName(inner)}: ${(e as Error).message}`);
  }
}

function normalizeStruct(json: unknown, path: string, ctx: JsonDecodeContext, depth: number): Obj | undefined {
  if (!isPlainObject(json)) return err(ctx, path, `expected object, got ${jsonTypeOf(json)}`);
  const fields: Obj = {};
  let ok = true;
  for (const [k, v] of Object.entries(json)) {
    const value = normalizeValue(v, keyPath(path, k), ctx, depth + 1);
    if (value === undefined) ok = false;
    else fields[k] = value;
  }
  return ok ? { fields } : undefined;
}

function normalizeList(json: unknown, path: string, ctx: JsonDecodeContext, depth: number): Obj | undefined {
  if (!Array.isArray(json)) return err(ctx, path, `expected array, got ${jsonTypeOf(json)}`);
  const values: unknown[] = [];
  let ok = true;
  json.forEach((v, i) => {
    const value = normalizeValue(v, indexPath(path, i), ctx, depth + 1);
    if (value === undefined) ok = false;
    else values.push(value);
  });
  return ok ? { values } : undefined;
}

// google.protobuf.Value's fields come from protobufjs's bundled struct.proto, which (as in
// @grpc/proto-loader) names them in camelCase: numberValue, structValue...
function normalizeValue(json: unknown, path: string, ctx: JsonDecodeContext, depth: number): Obj | undefined {
  if (depth > MAX_DEPTH) return err(ctx, path, 'value nesting too deep');
  if (json === null) return { nullValue: 'NULL_VALUE' };
  switch (typeof json) {
    case 'number': return { numberValue: json };
    case 'bigint': return { numberValue: Number(json) };
    case 'string': return { stringValue: json };
    case 'boolean': return { boolValue: json };
    case 'object': {
      if (Array.isArray(json)) {
        const list = normalizeList(json, path, ctx, depth);
        return list && { listValue: list };
      }
      const struct = normalizeStruct(json, path, ctx, depth);
      return struct && { structValue: struct };
    }
    default: return err(ctx, path, `expected a JSON value, got ${jsonTypeOf(json)}`);
  }
}

function normalizeEnum(e: protobuf.Enum, json: unknown, path: string, ctx: JsonDecodeContext): unknown {
  if (json === null && fullName(e) === 'google.protobuf.NullValue') return 'NULL_VALUE';
  if (typeof json === 'string') {
    if (Object.hasOwn(e.values, json)) return json;
    const names = Object.keys(e.values);
    const hint = names.length <= 16 ? ` (expected one of ${names.join(', ')})` : '';
    return err(ctx, path, `unknown enum value "${json}" for ${fullName(e)}${hint}`);
  }
  if (typeof json === 'number' && Number.isInteger(json) && intInRange('int32', BigInt(json))) return json;
  return err(ctx, path, `expected enum ${fullName(e)} (name or number), got ${jsonTypeOf(json)}`);
}

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};

function intInRange(kind: string, v: bigint): boolean {
  const r = INT_RANGES[kind];
  return r !== undefined && v >= r[0] && v <= r[1];
}

const FLOAT_MAX = 3.4028234663852886e38;

/** A scalar for fromObject: numbers for 32-bit and floating kinds, decimal strings for 64-bit, Buffer for bytes. */
export function normalizeScalar(kind: string, json: unknown, path: string, ctx: JsonDecodeContext): unknown {
  switch (kind) {
    case 'string':
      return typeof json === 'string' ? json : err(ctx, path, `expected string, got ${jsonTypeOf(json)}`);
    case 'bool':
      return typeof json === 'boolean' ? json : err(ctx, path, `expected bool, got ${jsonTypeOf(json)}`);
    case 'bytes': {
      if (typeof json !== 'string') return err(ctx, path, `expected base64 string, got ${jsonTypeOf(json)}`);
      const s = json.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return err(ctx, path, 'invalid base64 string');
      return Buffer.from(s, 'base64');
    }
    case 'double':
    case 'float': {
      let n: number;
      if (typeof json === 'number') n = json;
      else if (typeof json === 'bigint') n = Number(json);
      else if (typeof json === 'string' && (json === 'NaN' || json === 'Infinity' || json === '-Infinity')) n = Number(json);
      else if (typeof json === 'string' && json.trim() !== '' && json.trim() === json && !Number.isNaN(Number(json))) n = Number(json);
      else return err(ctx, path, `expected ${kind}, got ${jsonTypeOf(json)}`);
      if (kind === 'float' && Number.isFinite(n) && Math.abs(n) > FLOAT_MAX) return err(ctx, path, `value out of range for float: ${n}`);
      return n;
    }
    default: {
      if (!(kind in INT_RANGES)) return err(ctx, path, `unsupported field type ${kind}`);
      let v: bigint;
      if (typeof json === 'number') {
        if (!Number.isInteger(json)) return err(ctx, path, `expected ${kind}, got non-integer number ${json}`);
        v = BigInt(json);
      } else if (typeof json === 'bigint') {
        v = json;
      } else if (typeof json === 'string' && /^-?\d+$/.test(json)) {
        v = BigInt(json);
      } else if (typeof json === 'string' && /^-?\d+(\.\d*)?[eE][+-]?\d+$/.test(json) && Number.isInteger(Number(json))) {
        v = BigInt(Number(json));
      } else {
        return err(ctx, path, `expected ${kind}, got ${jsonTypeOf(json)}${typeof json === 'string' ? ` "${json}"` : ''}`);
      }
      if (!intInRange(kind, v)) return err(ctx, path, `value out of range for ${kind}: ${v}`);
      return kind.endsWith('64') ? v.toString() : Number(v);
    }
  }
}

function parseDuration(s: string, path: string, ctx: JsonDecodeContext): Obj | undefined {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (!m) return err(ctx, path, `invalid duration "${s}" (expected e.g. "5s", "0.25s")`);
  const seconds = BigInt(m[2] ?? '0');
  if (seconds > MAX_DURATION_SECONDS) return err(ctx, path, `duration "${s}" out of range`);
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  const sign = m[1] ? -1 : 1;
  return { seconds: (seconds * BigInt(sign)).toString(), nanos: nanos === 0 ? 0 : nanos * sign };
}

function parseTimestamp(s: string, path: string, ctx: JsonDecodeContext): Obj | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return err(ctx, path, `invalid timestamp "${s}" (expected RFC 3339, e.g. "2024-01-02T03:04:05Z")`);
  const [, y, mo, d, h, mi, se, frac, zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(se));
  const check = new Date(ms);
  if (Number.isNaN(ms) || check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 59) {
    return err(ctx, path, `invalid timestamp "${s}"`);
  }
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number((frac ?? '').padEnd(9, '0')) };
}

function err(ctx: JsonDecodeContext, path: string, reason: string): undefined {
  ctx.errors.push({ path, reason });
  return undefined;
}
