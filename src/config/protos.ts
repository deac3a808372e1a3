// Envoy's v3 .proto files loaded once into one protobufjs Root (lazily, then cached), and
// type lookup by name or type URL. Loading throws only if the installed protos are broken.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const PROTOBUFJS = path.dirname(require.resolve('protobufjs/package.json'));
const INCLUDE_DIRS = [
  path.join(DEPS, 'envoy-api'),
  path.join(DEPS, 'xds'),
  path.join(DEPS, 'googleapis'),
  path.join(DEPS, 'protoc-gen-validate'),
  PROTOBUFJS, // google/protobuf/descriptor.proto
];

/** Loaded in addition to every v3 proto under envoy/: the TypedStruct carriers and all well-known types. */
const EXTRA_FILES = [
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
  ...['any', 'duration', 'timestamp', 'empty', 'struct', 'wrappers', 'field_mask'].map((n) => `google/protobuf/${n}.proto`),
];

const TYPE_URL_PREFIX = 'type.googleapis.com/';

let cachedRoot: protobuf.Root | undefined;
let loadMs = 0;

function findInclude(target: string): string | undefined {
  for (const dir of INCLUDE_DIRS) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

function walkProtos(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkProtos(p, out);
    else if (e.name.endsWith('.proto')) out.push(p);
  }
  return out;
}

/**
 * The Envoy v3 protos whose imports all resolve. A few (OpenCensus, OpenTelemetry, Prometheus
 * tracers/sinks) import protos that @grpc/grpc-js-xds does not ship; v2 protos are skipped.
 */
function loadableFiles(): string[] {
  const apiDir = path.join(DEPS, 'envoy-api');
  const memo = new Map<string, boolean>();
  const common = protobuf.common as unknown as Record<string, unknown>;
  const resolvable = (rel: string): boolean => {
    const known = memo.get(rel);
    if (known !== undefined) return known;
    if (Object.hasOwn(common, rel)) return true;
    memo.set(rel, true); // cycles: assume fine while visiting
    const file = findInclude(rel);
    let ok = file !== undefined;
    if (file) {
      const src = fs.readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)) {
        if (!resolvable(m[1] ?? '')) ok = false;
      }
    }
    memo.set(rel, ok);
    return ok;
  };
  return walkProtos(path.join(apiDir, 'envoy'), [])
    .map((f) => path.relative(apiDir, f).split(path.sep).join('/'))
    .filter((f) => !/\/v2(alpha\d*)?\//.test(f))
    .filter(resolvable)
    .concat(EXTRA_FILES);
}

/** The Root holding every loadable Envoy v3 proto plus google.protobuf, udpa, xds and validate. */
export function protoRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const t0 = performance.now();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => findInclude(target) ?? target;
  root.loadSync(loadableFiles(), { keepCase: true });
  root.resolveAll();
  loadMs = performance.now() - t0;
  cachedRoot = root;
  return root;
}

/** How long the first protoRoot() call took, in ms (0 before it). */
export function protoLoadMs(): number {
  return loadMs;
}

/** Strips `type.googleapis.com/` (or any `host/path/`) and a leading dot: the fully-qualified name. */
export function typeNameOf(nameOrTypeUrl: string): string {
  const slash = nameOrTypeUrl.lastIndexOf('/');
  const name = slash >= 0 ? nameOrTypeUrl.slice(slash + 1) : nameOrTypeUrl;
  return name.startsWith('.') ? name.slice(1) : name;
}

/** `x.y.Z` → `type.googleapis.com/x.y.Z`. */
export function typeUrlOf(typeName: string): string {
  return TYPE_URL_PREFIX + typeNameOf(typeName);
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type named `x.y.Z` or `type.googleapis.com/x.y.Z`; undefined if unknown or not a message. */
export function lookupMessageType(nameOrTypeUrl: string): protobuf.Type | undefined {
  const name = typeNameOf(nameOrTypeUrl);
  const cached = typeCache.get(name);
  if (cached !== undefined) return cached ?? undefined;
  let found: protobuf.Type | null = null;
  if (/^[A-Za-z_][\w.]*$/.test(name)) {
    const r = protoRoot().lookup(name);
    if (r instanceof protobuf.Type) found = r;
  }
  typeCache.set(name, found);
  return found ?? undefined;
}

/** The enum type named `x.y.E`, if any. */
export function lookupEnumType(name: string): protobuf.Enum | undefined {
  const r = protoRoot().lookup(typeNameOf(name));
  return r instanceof protobuf.Enum ? r : undefined;
}
