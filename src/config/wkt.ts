// Shared facts about protobuf types for the decoders: conversion options (the proto-loader
// object form), well-known types, field lookup by proto or JSON name, path joining. Never fails.

import type protobuf from 'protobufjs';

/** Exactly @grpc/proto-loader's options: the object form every decoded config in legate takes. */
export const OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** Wrapper message -> the scalar kind of its `value` field. */
export const WRAPPER_KINDS: ReadonlyMap<string, string> = new Map([
  ['google.protobuf.DoubleValue', 'double'],
  ['google.protobuf.FloatValue', 'float'],
  ['google.protobuf.Int64Value', 'int64'],
  ['google.protobuf.UInt64Value', 'uint64'],
  ['google.protobuf.Int32Value', 'int32'],
  ['google.protobuf.UInt32Value', 'uint32'],
  ['google.protobuf.BoolValue', 'bool'],
  ['google.protobuf.StringValue', 'string'],
  ['google.protobuf.BytesValue', 'bytes'],
]);

/** Types whose proto3 JSON form is not an object of fields; inside an Any their payload is under `value`. */
const SPECIAL_JSON = new Set([
  'google.protobuf.Any',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.FieldMask',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  ...WRAPPER_KINDS.keys(),
]);

export const TYPED_STRUCT_TYPES: ReadonlySet<string> = new Set(['udpa.type.v1.TypedStruct', 'xds.type.v3.TypedStruct']);

/** `x.y.Z` without protobufjs's leading dot. */
export function fullName(t: protobuf.ReflectionObject): string {
  return t.fullName.startsWith('.') ? t.fullName.slice(1) : t.fullName;
}

export function hasSpecialJson(t: protobuf.Type): boolean {
  return SPECIAL_JSON.has(fullName(t));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Date);
}

/** The JSON type of a decoded YAML/JSON value, for `expected X, got Y` messages. */
export function jsonTypeOf(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'bigint') return 'number';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

/** A field by its proto name (`is_optional`) or its lowerCamelCase JSON name (`isOptional`). */
export function findField(type: protobuf.Type, key: string): protobuf.Field | undefined {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const f of type.fieldsArray) {
      index.set(f.name, f);
      const json = f.options?.['json_name'] as string | undefined;
      index.set(json ?? lowerCamel(f.name), f);
    }
    fieldIndex.set(type, index);
  }
  return index.get(key);
}

export function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `a` + field -> `a.field`; `a` + 3 -> `a[3]`; map keys as `.key`, or `["odd key"]`. */
export function fieldPath(base: string, name: string): string {
  return base ? `${base}.${name}` : name;
}
export function indexPath(base: string, i: number): string {
  return `${base}[${i}]`;
}
export function keyPath(base: string, key: string): string {
  if (/^[A-Za-z_][\w-]*$/.test(key)) return fieldPath(base, key);
  return `${base}[${JSON.stringify(key)}]`;
}

/** Proto message bytes -> a Buffer sharing memory (no copy). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Formats a Duration ({seconds, nanos}) as proto3 JSON: `5s`, `0.250s`, `-1.000000001s`. */
export function formatDuration(seconds: string | number, nanos: number): string {
  const s = BigInt(seconds);
  const neg = s < 0n || nanos < 0;
  const abs = s < 0n ? -s : s;
  const n = Math.abs(nanos);
  let frac = '';
  if (n !== 0) {
    frac = String(n).padStart(9, '0');
    frac = n % 1e6 === 0 ? frac.slice(0, 3) : n % 1e3 === 0 ? frac.slice(0, 6) : frac;
    frac = `.${frac}`;
  }
  return `${neg ? '-' : ''}${abs}${frac}s`;
}
