// Envoy's v3 .proto files in one protobufjs Root per thread, loaded lazily: a type lookup loads
// only the file defining it (and what that imports), found through a text index (proto-index.ts),
// so a thread holds just the types its config uses. Loading throws only if the installed protos are broken.

import type protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import { fileDefining, findInclude, protoIndex, releaseProtoIndex } from './proto-index.ts';

/**
 * protobufjs, loaded on first use: a worker given its config's Anys already decoded
 * (unpacked-anys.ts) never needs it (~1 MB of heap per worker).
 */
let pbModule: typeof protobuf | undefined;
export function pb(): typeof protobuf {
  return (pbModule ??= createRequire(import.meta.url)('protobufjs') as typeof protobuf);
}

const TYPE_URL_PREFIX = 'type.googleapis.com/';

let root: protobuf.Root | undefined;
let fullyLoaded = false;
let loadMs = 0;

function sharedRoot(): protobuf.Root {
  if (root) return root;
  root = new (pb().Root)();
  root.resolvePath = (_origin: string, target: string): string => findInclude(target) ?? target;
  return root;
}

/** Loads `files` (relative names) and their imports into the shared Root; resolves all references. */
function load(files: string | string[]): protobuf.Root {
  const t0 = performance.now();
  const r = sharedRoot().loadSync(files, { keepCase: true }); // loadSync also runs resolveAll()
  unsliceStrings(r, new Set());
  loadMs += performance.now() - t0;
  return r;
}

/** Strings shorter than this are copied by V8 anyway, never sliced (SlicedString::kMinLength). */
const MIN_SLICED_LENGTH = 13;
const unsliced = new WeakSet<object>();

/**
 * Replaces the long strings protobufjs kept (type names, field types, option values) by copies.
 * Its tokenizer returns substrings of each .proto source, and V8 makes those slices that keep the
 * whole source alive (~45 files, 0.6 MB of source, for an HTTP listener's config; measured 0.25 MB
 * less heap per worker).
 * Walks reflection objects once each, and the plain objects and arrays they hold (options).
 */
function unsliceStrings(o: object, seen: Set<object>): void {
  if (seen.has(o) || unsliced.has(o)) return;
  seen.add(o);
  const protobuf = pb();
  const reflection = o instanceof protobuf.ReflectionObject;
  const rec = o as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    const v = rec[key];
    if (typeof v === 'string') {
      if (v.length >= MIN_SLICED_LENGTH) rec[key] = JSON.parse(JSON.stringify(v)) as string;
    } else if (v !== null && typeof v === 'object') {
      const proto = Object.getPrototypeOf(v) as unknown;
      // Nested reflection objects are reached through `nestedArray`/`fieldsArray`, never `parent`.
      if (key === 'parent' || key === 'resolvedType' || key === 'root') continue;
      if (proto === Object.prototype || proto === Array.prototype || proto === null || v instanceof protobuf.ReflectionObject) unsliceStrings(v, seen);
    }
  }
  if (o instanceof protobuf.Namespace) for (const child of o.nestedArray) unsliceStrings(child, seen);
  if (o instanceof protobuf.Type) for (const f of o.fieldsArray) unsliceStrings(f, seen);
  if (reflection) unsliced.add(o);
}

/**
 * The Root holding every loadable Envoy v3 proto plus google.protobuf, udpa, xds and validate.
 * Loads them all (slow, ~40 MB): for callers that walk every type; lookups need not call it.
 */
export function protoRoot(): protobuf.Root {
  if (fullyLoaded) return sharedRoot();
  const r = load([...protoIndex().files]);
  fullyLoaded = true;
  return r;
}

/**
 * Forgets this thread's Root, type cache and file index; the next lookup loads again what it needs
 * (tens of ms per file). For a main thread whose config is loaded and validated and that expects no
 * more of it (no xDS, no SDS): measured 6.8 MB of heap for the default config. Callers must not keep
 * protobufjs types across this call (a kept one would hold the old Root alive).
 */
export function releaseProtos(): void {
  root = undefined;
  fullyLoaded = false;
  typeCache.clear();
  releaseProtoIndex();
}

/** Time spent loading .proto files into this thread's Root so far, in ms (0 before the first load). */
export function protoLoadMs(): number {
  return loadMs;
}

/** Strips `type.googleapis.com/` (or any `host/path/`) and a leading dot: the fully-qualified name. */
export function typeNameOf(nameOrTypeUrl: string): string {
  const slash = nameOrTypeUrl.lastIndexOf('/');
  const name = slash >= 0 ? nameOrTypeUrl.slice(slash + 1) : nameOrTypeUrl;
  return name.startsWith('.') ? name.slice(1) : name;
}

/** `x.y.Z` -> `type.googleapis.com/x.y.Z`. */
export function typeUrlOf(typeName: string): string {
  return TYPE_URL_PREFIX + typeNameOf(typeName);
}

/**
 * The reflection object whose fully-qualified name is exactly `name`, loading the file that
 * defines it first if needed. Exact, because protobufjs's lookup also searches nested namespaces
 * (`envoy.type.FractionalPercent` would find `envoy.type.v3.FractionalPercent` while only v3 is
 * loaded), which would make the answer depend on what happened to be loaded before.
 */
function lookupLoading(name: string): protobuf.ReflectionObject | null {
  if (!/^[A-Za-z_][\w.]*$/.test(name)) return null;
  const exact = (r: protobuf.Root): protobuf.ReflectionObject | null => {
    const found = r.lookup(name);
    return found && found.fullName === `.${name}` ? found : null;
  };
  const found = exact(sharedRoot());
  if (found || fullyLoaded) return found;
  const file = fileDefining(name);
  return file === undefined ? null : exact(load(file));
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type named `x.y.Z` or `type.googleapis.com/x.y.Z`; undefined if unknown or not a message. */
export function lookupMessageType(nameOrTypeUrl: string): protobuf.Type | undefined {
  const name = typeNameOf(nameOrTypeUrl);
  const cached = typeCache.get(name);
  if (cached !== undefined) return cached ?? undefined;
  const r = lookupLoading(name);
  const found = r instanceof pb().Type ? r : null;
  typeCache.set(name, found);
  return found ?? undefined;
}

/** The enum type named `x.y.E`, if any. */
export function lookupEnumType(name: string): protobuf.Enum | undefined {
  const r = lookupLoading(typeNameOf(name));
  return r instanceof pb().Enum ? r : undefined;
}
