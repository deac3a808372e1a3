// Envoy config in, proto-loader objects out: proto3 JSON/YAML values and protobuf bytes decoded
// against Envoy's protos, then PGV-validated. Failures are Results with field paths, never throws.

import type protobuf from 'protobufjs';
import type { ConfigError, Result } from './result.ts';
import { lookupMessageType, typeNameOf, typeUrlOf } from './protos.ts';
import { createRequire } from 'node:module';
import type { JsonDecodeContext } from './json-decode.ts';
import type { RedactMode } from './proto-json.ts';
import { structToJson } from './struct-json.ts';
import { OBJECT_OPTIONS, TYPED_STRUCT_TYPES, fullName, isPlainObject, toBuffer } from './wkt.ts';
import { emptyMessage, takeUnpacked, unpackedTypeUrl, type AnyLike, type UnpackedAny, type UnpackedConfig } from './unpacked-anys.ts';

export { lookupMessageType, protoRoot, typeNameOf, typeUrlOf } from './protos.ts';

export interface DecodeJsonOptions {
  /** Prefix for every error path (e.g. `static_resources.clusters[0]`). */
  readonly path?: string;
  /** Unknown fields become warnings instead of errors (Envoy's --allow-unknown-static-fields). */
  readonly allowUnknownFields?: boolean;
  /** Skip the PGV pass (default false). */
  readonly skipValidation?: boolean;
}

type Obj = Record<string, unknown>;

// The decoders, validator and printer (which load protobufjs) are required on first use: a worker
// given its config's Anys already decoded (unpacked-anys.ts) never loads them.
const lazy = createRequire(import.meta.url);
let heavy: { jd: typeof import('./json-decode.ts'); pgv: typeof import('./pgv.ts'); pj: typeof import('./proto-json.ts') } | undefined;
function decoders(): NonNullable<typeof heavy> {
  return (heavy ??= {
    jd: lazy('./json-decode.ts') as typeof import('./json-decode.ts'),
    pgv: lazy('./pgv.ts') as typeof import('./pgv.ts'),
    pj: lazy('./proto-json.ts') as typeof import('./proto-json.ts'),
  });
}
const normalizeMessage: typeof import('./json-decode.ts').normalizeMessage = (...a) => decoders().jd.normalizeMessage(...a);
const validateMessage: typeof import('./pgv.ts').validateMessage = (...a) => decoders().pgv.validateMessage(...a);
const messageToJson: typeof import('./proto-json.ts').messageToJson = (...a) => decoders().pj.messageToJson(...a);

function failWith<T>(errors: readonly ConfigError[]): Result<T> {
  return { ok: false, errors };
}

/** Decodes a YAML/JSON value of type `typeName` (strict proto3 JSON) into proto-loader form, then validates it. */
export function decodeJson<T>(typeName: string, json: unknown, opts: DecodeJsonOptions = {}): Result<T> {
  const path = opts.path ?? '';
  const empty = isPlainObject(json) && Object.keys(json).length === 0;
  if (empty) {
    const sent = emptyMessage(typeName);
    if (sent !== undefined) return { ok: true, value: sent as T };
  }
  const type = lookupMessageType(typeName);
  if (!type) return failWith([{ path, reason: `unknown message type "${typeName}"` }]);
  const ctx: JsonDecodeContext = { errors: [], warnings: [], allowUnknownFields: opts.allowUnknownFields ?? false };
  let normalized: Obj | undefined;
  try {
    normalized = normalizeMessage(type, json, path, ctx);
  } catch (e) {
    ctx.errors.push({ path, reason: `cannot decode ${fullName(type)}: ${(e as Error).message}` });
  }
  if (ctx.errors.length > 0 || normalized === undefined) return failWith(ctx.errors.length ? ctx.errors : [{ path, reason: 'invalid value' }]);
  let out: Obj;
  try {
    out = type.toObject(type.fromObject(normalized), OBJECT_OPTIONS);
  } catch (e) {
    return failWith([{ path, reason: `cannot decode ${fullName(type)}: ${(e as Error).message}` }]);
  }
  const r = finish<T>(type, out, path, opts.skipValidation ?? false, ctx.warnings);
  if (empty && r.ok && !opts.skipValidation) emptyDecoded.add(typeName);
  return r;
}

/** Types decodeJson has decoded (and validated) from `{}`: their defaults go to workers (collectUnpacked). */
const emptyDecoded = new Set<string>();

/** Decodes protobuf bytes of type `typeName` (e.g. an xDS resource) into proto-loader form, then validates it. */
export function decodeBinary<T>(typeName: string, bytes: Uint8Array, path = ''): Result<T> {
  const type = lookupMessageType(typeName);
  if (!type) return failWith([{ path, reason: `unknown message type "${typeName}"` }]);
  let out: Obj;
  try {
    out = type.toObject(type.decode(bytes), OBJECT_OPTIONS);
  } catch (e) {
    return failWith([{ path, reason: `invalid ${fullName(type)} bytes: ${(e as Error).message}` }]);
  }
  return finish<T>(type, out, path, false, []);
}

function finish<T>(type: protobuf.Type, out: Obj, path: string, skipValidation: boolean, warnings: string[]): Result<T> {
  if (!skipValidation) {
    const errors: ConfigError[] = [];
    validateMessage(type, out, path, errors);
    if (errors.length > 0) return failWith(errors);
  }
  return warnings.length > 0 ? { ok: true, value: out as T, warnings } : { ok: true, value: out as T };
}

/** Runs the PGV pass alone over an already decoded message (e.g. after merging two of them). */
export function validateDecoded(typeName: string, message: unknown, path = ''): readonly ConfigError[] {
  const type = lookupMessageType(typeName);
  if (!type) return [{ path, reason: `unknown message type "${typeName}"` }];
  const errors: ConfigError[] = [];
  if (message !== null && typeof message === 'object') validateMessage(type, message as Obj, path, errors);
  return errors;
}

/**
 * Decodes an Any's bytes with the type its URL names, into proto-loader form (not re-validated:
 * decodeJson/decodeBinary already validated nested Anys). A TypedStruct (udpa/xds) whose
 * `type_url` names a known type is converted into that type, as Envoy does, and validated.
 */
export function unpackAny<T>(any: AnyLike, path: string): Result<{ typeName: string; message: T }> {
  const sent = takeUnpacked(any);
  if (sent) return { ok: true, value: sent as { typeName: string; message: T } };
  const type = lookupMessageType(any.type_url);
  if (!type) return failWith([{ path, reason: `unknown type URL "${any.type_url}"` }]);
  let message: Obj;
  try {
    message = type.toObject(type.decode(any.value), OBJECT_OPTIONS);
  } catch (e) {
    return failWith([{ path, reason: `invalid ${fullName(type)} bytes: ${(e as Error).message}` }]);
  }
  if (TYPED_STRUCT_TYPES.has(fullName(type))) {
    const innerUrl = message['type_url'];
    const innerType = typeof innerUrl === 'string' ? lookupMessageType(innerUrl) : undefined;
    if (innerType) {
      const inner = decodeJson<T>(fullName(innerType), structToJson(message['value']), { path });
      if (!inner.ok) return inner;
      return { ok: true, value: { typeName: fullName(innerType), message: inner.value } };
    }
  }
  return { ok: true, value: { typeName: fullName(type), message: message as T } };
}

/**
 * The type URL that selects an extension: a TypedStruct's inner `type_url` (Envoy looks the
 * factory up by it), otherwise the Any's own. Never fails; undecodable bytes give the outer URL.
 */
export function extensionTypeUrl(any: AnyLike): string {
  const sent = unpackedTypeUrl(any);
  if (sent !== undefined) return sent;
  const type = lookupMessageType(any.type_url);
  if (!type || !TYPED_STRUCT_TYPES.has(fullName(type))) return any.type_url;
  try {
    const inner = (type.toObject(type.decode(any.value), OBJECT_OPTIONS) as Obj)['type_url'];
    return typeof inner === 'string' && inner !== '' ? inner : any.type_url;
  } catch {
    return any.type_url;
  }
}

/**
 * Main thread: everything a worker would decode with protobufjs in `config` (an object it is about
 * to post): every Any in it, and in those Anys' contents, unpacked; the defaults of the types
 * decoded from `{}` so far. Post the result in the same message as `config` (adoptUnpacked()).
 * Anys are recognised by shape: an object of exactly `type_url` (string) and `value` (bytes).
 */
export function collectUnpacked(config: unknown): UnpackedConfig {
  const anys = new Map<object, UnpackedAny>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return;
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    const o = v as Record<string, unknown>;
    if (isAnyLike(o)) {
      if (anys.has(o)) return;
      const u = unpackAny<unknown>(o, '');
      anys.set(o, u.ok ? { typeUrl: extensionTypeUrl(o), unpacked: u.value } : { typeUrl: extensionTypeUrl(o) });
      if (u.ok) visit(u.value.message);
      return;
    }
    for (const k in o) visit(o[k]);
  };
  visit(config);
  const empties = new Map<string, unknown>();
  for (const name of emptyDecoded) {
    const d = decodeJson(name, {});
    if (d.ok) empties.set(name, d.value);
  }
  return { anys, empties };
}

function isAnyLike(o: Record<string, unknown>): o is Record<string, unknown> & AnyLike {
  if (typeof o['type_url'] !== 'string' || !(o['value'] instanceof Uint8Array)) return false;
  let n = 0;
  for (const _ in o) n++;
  return n === 2;
}

/** Packs a proto-loader object of `typeName` into an Any. Throws if the type is unknown (a programming error). */
export function encodeAny(typeName: string, obj: unknown): { type_url: string; value: Buffer } {
  const type = lookupMessageType(typeName);
  if (!type) throw new Error(`encodeAny: unknown message type "${typeName}"`);
  return { type_url: typeUrlOf(fullName(type)), value: encodeMessage(type, obj) };
}

/** Encodes a proto-loader object of `typeName` to protobuf bytes. Throws if the type is unknown. */
export function encodeBinary(typeName: string, obj: unknown): Buffer {
  const type = lookupMessageType(typeName);
  if (!type) throw new Error(`encodeBinary: unknown message type "${typeNameOf(typeName)}"`);
  return encodeMessage(type, obj);
}

function encodeMessage(type: protobuf.Type, obj: unknown): Buffer {
  const msg = type.fromObject((obj ?? {}) as Obj);
  return toBuffer(type.encode(msg).finish());
}

/**
 * proto-loader form -> proto3 JSON with Anys expanded to `@type` objects. /config_dump passes
 * `redact: 'sensitive'` so private keys and other sensitive fields print as "[redacted]".
 */
export function toProto3Json(typeName: string, obj: unknown, opts: { redact?: RedactMode } = {}): unknown {
  const type = lookupMessageType(typeName);
  if (!type) return obj;
  return messageToJson(type, obj, 0, opts.redact ?? 'off');
}
