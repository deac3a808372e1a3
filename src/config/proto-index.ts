// Where Envoy's v3 .proto files are and which file defines which type, without parsing them into
// protobufjs: a cheap text scan (package, top-level message/enum/service names, imports) so a
// thread loads only the files its config uses. Scanning throws only if the installed protos are broken.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const PROTOBUFJS = path.dirname(require.resolve('protobufjs/package.json'));
const API_DIR = path.join(DEPS, 'envoy-api');
/** Istio's own extension config types (istio-protos/README.md), which Envoy's protos do not hold. */
const ISTIO_DIR = fileURLToPath(new URL('./istio-protos/', import.meta.url));
const INCLUDE_DIRS = [
  API_DIR,
  ISTIO_DIR,
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

/** protobufjs's bundled descriptors (google/protobuf/any.proto ...), used instead of files on disk. */
/** protobufjs' bundled google/protobuf definitions (read when indexing, so protobufjs loads only then). */
const common = (): Record<string, protobuf.INamespace | undefined> => (require('protobufjs') as typeof protobuf).common as unknown as Record<string, protobuf.INamespace | undefined>;

export interface ProtoIndex {
  /** Every file the full Root loads (relative names, as passed to `Root.loadSync`). */
  readonly files: readonly string[];
  /** The file defining the top-level message, enum or service `pkg.Name` (nested types live in their parent's file). */
  readonly fileOfTopLevel: ReadonlyMap<string, string>;
}

/** A file's own path for `target` in the include dirs, if any. */
export function findInclude(target: string): string | undefined {
  for (const dir of INCLUDE_DIRS) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

interface Scanned {
  readonly imports: string[];
  readonly names: string[];
}

/** Package-qualified top-level type names and imports of one .proto source. */
export function scanProto(src: string): Scanned {
  // Drop comments and string literals first, so braces and keywords inside them don't count;
  // the import paths are read before that.
  const imports = [...src.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)].map((m) => m[1] ?? '');
  const code = src.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, ' ');
  const pkg = /\bpackage\s+([\w.]+)\s*;/.exec(code)?.[1];
  const prefix = pkg ? `${pkg}.` : '';
  const names: string[] = [];
  let depth = 0;
  for (const m of code.matchAll(/[{}]|\b(message|enum|service)\s+(\w+)/g)) {
    if (m[0] === '{') depth++;
    else if (m[0] === '}') depth--;
    else if (depth === 0 && m[2]) names.push(prefix + m[2]);
  }
  return { imports, names };
}

/** Type names declared in a bundled (JSON) descriptor, outermost types only. */
function commonNames(ns: protobuf.INamespace, prefix: string, out: string[]): string[] {
  for (const [name, child] of Object.entries(ns.nested ?? {})) {
    const c = child as protobuf.INamespace & { fields?: unknown; values?: unknown; methods?: unknown };
    if (c.fields !== undefined || c.values !== undefined || c.methods !== undefined) out.push(prefix + name);
    else commonNames(c, `${prefix}${name}.`, out);
  }
  return out;
}

function walkProtos(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walkProtos(p, out);
    else if (e.name.endsWith('.proto')) out.push(p);
  }
  return out;
}

let cached: ProtoIndex | undefined;

/** Forgets the index (protos.ts releaseProtos()); the next protoIndex() scans again. */
export function releaseProtoIndex(): void {
  cached = undefined;
}

/**
 * The index over the Envoy v3 protos whose imports all resolve, plus everything they import. A few
 * (OpenCensus, OpenTelemetry, Prometheus tracers/sinks) import protos that @grpc/grpc-js-xds does
 * not ship; v2 protos are skipped. Built once per thread (a text scan, no protobufjs parsing).
 */
export function protoIndex(): ProtoIndex {
  if (cached) return cached;
  const scanned = new Map<string, Scanned | null>(); // null: not found
  const scan = (rel: string): Scanned | null => {
    let s = scanned.get(rel);
    if (s !== undefined) return s;
    const bundled = common();
    const c = Object.hasOwn(bundled, rel) ? bundled[rel] : undefined;
    if (c) s = { imports: [], names: commonNames(c, '', []) };
    else {
      const file = findInclude(rel);
      s = file ? scanProto(fs.readFileSync(file, 'utf8')) : null;
    }
    scanned.set(rel, s);
    return s;
  };
  const memo = new Map<string, boolean>();
  const resolvable = (rel: string): boolean => {
    const known = memo.get(rel);
    if (known !== undefined) return known;
    memo.set(rel, true); // cycles: assume fine while visiting
    const s = scan(rel);
    let ok = s !== null;
    for (const imp of s?.imports ?? []) if (!resolvable(imp)) ok = false;
    memo.set(rel, ok);
    return ok;
  };
  const files = walkProtos(path.join(API_DIR, 'envoy'), [])
    .map((f) => path.relative(API_DIR, f).split(path.sep).join('/'))
    .filter((f) => !/\/v2(alpha\d*)?\//.test(f))
    .filter(resolvable)
    .concat(walkProtos(ISTIO_DIR, []).map((f) => path.relative(ISTIO_DIR, f).split(path.sep).join('/')))
    .concat(EXTRA_FILES);
  // Only what the full Root would hold: the files above and their imports, transitively.
  const fileOfTopLevel = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (rel: string): void => {
    if (seen.has(rel)) return;
    seen.add(rel);
    const s = scan(rel);
    for (const n of s?.names ?? []) if (!fileOfTopLevel.has(n)) fileOfTopLevel.set(n, rel);
    for (const imp of s?.imports ?? []) visit(imp);
  };
  for (const f of files) visit(f);
  // The names are slices of each file's source text; copy them so the sources can be collected (~2 MB).
  const flat = JSON.parse(JSON.stringify([files, [...fileOfTopLevel]])) as [string[], Array<[string, string]>];
  cached = { files: flat[0], fileOfTopLevel: new Map(flat[1]) };
  return cached;
}

/** The file to load for the fully-qualified type `a.b.C` or nested `a.b.C.D`, if the index knows it. */
export function fileDefining(name: string): string | undefined {
  const index = protoIndex().fileOfTopLevel;
  let prefix = name;
  for (;;) {
    const file = index.get(prefix);
    if (file !== undefined) return file;
    const dot = prefix.lastIndexOf('.');
    if (dot < 0) return undefined;
    prefix = prefix.slice(0, dot);
  }
}
