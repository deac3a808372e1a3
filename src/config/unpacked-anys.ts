// Config the main thread has already decoded, handed to a worker in the same message as the config
// holding it: the contents of its Anys (one structured clone, so the Map's keys are that config's
// own Any objects), and the default message of each type a config named without typed_config.
// A worker then builds its config without loading Envoy's protos or protobufjs (default config:
// 16.5 -> 11.7 MB of heap per worker). Whatever is not found here is decoded as before (decode.ts).
// No protobufjs here: workers import this.

/** An Any as decoded config holds it. */
export interface AnyLike {
  readonly type_url: string;
  readonly value: Buffer | Uint8Array;
}

export interface UnpackedAny {
  /** extensionTypeUrl(any): a TypedStruct's inner type URL, otherwise the Any's own. */
  readonly typeUrl: string;
  /** unpackAny(any)'s value when it succeeded (a failure is decoded again, for its error's path). */
  readonly unpacked?: { readonly typeName: string; readonly message: unknown };
}

/** What the main thread sends along with a config (WorkerInit, an xDS update). */
export interface UnpackedConfig {
  readonly anys: Map<object, UnpackedAny>;
  /** decodeJson(typeName, {})'s value by type name. */
  readonly empties: Map<string, unknown>;
}

interface Entry {
  readonly typeUrl: string;
  unpacked: UnpackedAny['unpacked'];
}

const anys = new WeakMap<object, Entry>();
const empties = new Map<string, unknown>();

/** Worker: makes `u` (received with a config) answer unpackAny, extensionTypeUrl and empty decodeJson calls. */
export function adoptUnpacked(u: UnpackedConfig | undefined): void {
  if (!u) return;
  for (const [any, e] of u.anys) anys.set(any, { typeUrl: e.typeUrl, unpacked: e.unpacked });
  for (const [name, message] of u.empties) empties.set(name, message);
  // The message holding `u` may live on (a worker keeps its workerData): keep the messages only here.
  u.anys.clear();
  u.empties.clear();
}

/**
 * The Any's decoded contents, once: the first caller gets the message (Buffers restored: structured
 * clone turns them into plain Uint8Arrays) and it is forgotten, so the worker holds it only as long
 * as its config does, and no two callers ever share (and could modify) one message. A later call
 * returns undefined: the caller decodes the bytes itself, as it always did.
 */
export function takeUnpacked(any: AnyLike): UnpackedAny['unpacked'] {
  const e = anys.get(any);
  const u = e?.unpacked;
  if (!u) return undefined;
  e.unpacked = undefined;
  return { typeName: u.typeName, message: withBuffers(u.message) };
}

/** extensionTypeUrl(any) as the main thread found it; undefined when it was not sent. */
export function unpackedTypeUrl(any: AnyLike): string | undefined {
  return anys.get(any)?.typeUrl;
}

/** A fresh copy of decodeJson(typeName, {})'s value as the main thread found it; undefined when not sent. */
export function emptyMessage(typeName: string): unknown {
  const m = empties.get(typeName);
  return m === undefined ? undefined : withBuffers(structuredClone(m));
}

/** Decoded config holds `bytes` fields as Buffers (OBJECT_OPTIONS); structured clone made them Uint8Arrays. */
function withBuffers(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = withBuffers(v[i]);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) o[k] = withBuffers(o[k]);
  return v;
}
