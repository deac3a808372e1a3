// proto-loader object form -> proto3 JSON (snake_case names as Envoy's config_dump prints them,
// Anys expanded to `@type` objects, defaults omitted). Tolerant: odd input is printed, not thrown.
// With `redact: 'sensitive'` (what /config_dump asks for), fields marked
// `(udpa.annotations.sensitive)` (private keys, passwords, HMAC secrets) are printed as Envoy's
// MessageUtil::redact prints them: every string inside becomes "[redacted]", every
// bytes value the bytes of "[redacted]".

import protobuf from 'protobufjs';
import { lookupMessageType } from './protos.ts';
import { OBJECT_OPTIONS, WRAPPER_KINDS, formatDuration, fullName, hasSpecialJson, isPlainObject, lowerCamel } from './wkt.ts';
import { structToJson, valueToJson } from './struct-json.ts';

type Obj = Record<string, unknown>;
const MAX_DEPTH = 100;
const REDACTED = '[redacted]';
const SENSITIVE = '(udpa.annotations.sensitive)';

/** 'off': print everything; 'sensitive': redact sensitive fields; 'all': inside a sensitive field. */
export type RedactMode = 'off' | 'sensitive' | 'all';

export function messageToJson(type: protobuf.Type, obj: unknown, depth = 0, redact: RedactMode = 'off'): unknown {
  if (!isPlainObject(obj) || depth > MAX_DEPTH) return obj ?? null;
  const name = fullName(type);
  switch (name) {
    case 'google.protobuf.Any': return anyToJson(obj, depth, redact);
    case 'google.protobuf.Duration': return formatDuration(String(obj['seconds'] ?? '0'), Number(obj['nanos'] ?? 0));
    case 'google.protobuf.Timestamp': {
      const ms = Number(obj['seconds'] ?? 0) * 1000;
      const nanos = Number(obj['nanos'] ?? 0);
      const base = new Date(ms).toISOString().slice(0, 19);
      const frac = nanos === 0 ? '' : `.${String(nanos).padStart(9, '0').replace(/(\d{3})(0{3})+$/, '$1')}`;
      return `${base}${frac}Z`;
    }
    case 'google.protobuf.FieldMask':
      return (Array.isArray(obj['paths']) ? obj['paths'] : []).map((p) => String(p).split('.').map(lowerCamel).join('.')).join(',');
    case 'google.protobuf.Struct': return redactStrings(structToJson(obj), redact);
    case 'google.protobuf.Value': return redactStrings(valueToJson(obj), redact);
    case 'google.protobuf.ListValue': return redactStrings((Array.isArray(obj['values']) ? obj['values'] : []).map(valueToJson), redact);
  }
  const wrapperKind = WRAPPER_KINDS.get(name);
  if (wrapperKind !== undefined) return scalarToJson(wrapperKind, obj['value'], redact);
  const out: Obj = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === null || v === undefined) continue;
    const red: RedactMode = redact === 'sensitive' && field.options?.[SENSITIVE] === true ? 'all' : redact;
    const inOneof = field.partOf !== null && field.partOf !== undefined;
    if (inOneof && typeof obj[field.partOf!.name] === 'string' && obj[field.partOf!.name] !== field.name) continue;
    if (field.map) {
      if (!isPlainObject(v) || Object.keys(v).length === 0) continue;
      const m: Obj = {};
      for (const [k, item] of Object.entries(v)) m[k] = singleToJson(field, item, depth, red);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(v) || v.length === 0) continue;
      out[field.name] = v.map((item) => singleToJson(field, item, depth, red));
    } else {
      if (!inOneof && isDefault(field, v)) continue;
      out[field.name] = singleToJson(field, v, depth, red);
    }
  }
  return out;
}

function redactStrings(json: unknown, redact: RedactMode): unknown {
  if (redact !== 'all') return json;
  if (typeof json === 'string') return REDACTED;
  if (Array.isArray(json)) return json.map((x) => redactStrings(x, 'all'));
  if (isPlainObject(json)) return Object.fromEntries(Object.entries(json).map(([k, x]) => [k, redactStrings(x, 'all')]));
  return json;
}

function isDefault(field: protobuf.Field, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Type) return false;
  if (field.resolvedType instanceof protobuf.Enum) return v === 0 || field.resolvedType.values[String(v)] === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  return v === 0 || v === '' || v === false || v === '0';
}

function singleToJson(field: protobuf.Field, v: unknown, depth: number, redact: RedactMode): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageToJson(rt, v, depth + 1, redact);
  if (rt instanceof protobuf.Enum) {
    if (fullName(rt) === 'google.protobuf.NullValue') return null;
    return typeof v === 'number' ? (rt.valuesById[v] ?? v) : v;
  }
  return scalarToJson(field.type, v, redact);
}

function scalarToJson(kind: string, v: unknown, redact: RedactMode = 'off'): unknown {
  if (redact === 'all' && kind === 'string') return REDACTED;
  if (redact === 'all' && kind === 'bytes') return Buffer.from(REDACTED).toString('base64');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v); // NaN, Infinity, -Infinity
  if (kind.endsWith('64') && (typeof v === 'number' || typeof v === 'bigint')) return String(v);
  if (kind.endsWith('64') && typeof v === 'object' && v !== null) return String(v); // a Long
  return v;
}

function anyToJson(any: Obj, depth: number, redact: RedactMode): unknown {
  const url = any['type_url'];
  if (typeof url !== 'string' || url === '') return {};
  const inner = lookupMessageType(url);
  const bytes = any['value'];
  if (!inner || !(bytes instanceof Uint8Array)) {
    return { '@type': url, ...(bytes instanceof Uint8Array && bytes.length > 0 ? { value: scalarToJson('bytes', bytes) } : {}) };
  }
  let decoded: Obj;
  try {
    decoded = inner.toObject(inner.decode(bytes), OBJECT_OPTIONS);
  } catch {
    return { '@type': url, value: scalarToJson('bytes', bytes) };
  }
  const json = messageToJson(inner, decoded, depth + 1, redact);
  if (hasSpecialJson(inner)) return { '@type': url, value: json };
  return { '@type': url, ...(isPlainObject(json) ? json : {}) };
}
