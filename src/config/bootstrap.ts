// The bootstrap: reads `-c FILE` (YAML or JSON) and `--config-yaml`, merges the latter over the
// former with protobuf MergeFrom semantics as Envoy does, decodes and validates. Fails as a Result.

import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import protobuf from 'protobufjs';
import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { ConfigError, Result } from './result.ts';
import { decodeJson, validateDecoded } from './decode.ts';
import { lookupMessageType } from './protos.ts';
import { isPlainObject } from './wkt.ts';

const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';
const MAX_ALIAS_COUNT = 10_000; // YAML alias expansions, against "billion laughs"

export interface LoadBootstrapOptions {
  /** `-c`: a .yaml/.yml/.json file. */
  readonly configPath?: string;
  /** `--config-yaml`: YAML merged over the file (or the whole config when there is no file). */
  readonly configYaml?: string;
  /** `--allow-unknown-static-fields`: unknown fields become warnings. */
  readonly allowUnknownFields?: boolean;
}

type Obj = Record<string, unknown>;

export function loadBootstrap(opts: LoadBootstrapOptions): Result<Bootstrap__Output> {
  if (opts.configPath === undefined && (opts.configYaml === undefined || opts.configYaml.trim() === '')) {
    return fail('', 'no configuration given: pass a config file (-c) and/or --config-yaml');
  }
  const decodeOpts = { allowUnknownFields: opts.allowUnknownFields ?? false, skipValidation: true };
  const warnings: string[] = [];
  let base: Obj | undefined;
  if (opts.configPath !== undefined) {
    const text = readConfigFile(opts.configPath);
    if (!text.ok) return text;
    const json = parseYaml(text.value, opts.configPath);
    if (!json.ok) return json;
    const decoded = decodeJson<Obj>(BOOTSTRAP_TYPE, json.value, decodeOpts);
    if (!decoded.ok) return decoded;
    warnings.push(...(decoded.warnings ?? []));
    base = decoded.value;
  }
  if (opts.configYaml !== undefined && opts.configYaml.trim() !== '') {
    const json = parseYaml(opts.configYaml, '--config-yaml');
    if (!json.ok) return json;
    const decoded = decodeJson<Obj>(BOOTSTRAP_TYPE, json.value, decodeOpts);
    if (!decoded.ok) return { ok: false, errors: decoded.errors.map((e) => ({ path: e.path, reason: `${e.reason} (in --config-yaml)` })) };
    warnings.push(...(decoded.warnings ?? []).map((w) => `${w} (in --config-yaml)`));
    const type = lookupMessageType(BOOTSTRAP_TYPE);
    base = base === undefined || !type ? decoded.value : mergeMessage(type, base, decoded.value);
  }
  if (base === undefined) return fail('', 'empty configuration');
  const errors = validateDecoded(BOOTSTRAP_TYPE, base);
  if (errors.length > 0) return { ok: false, errors };
  const value = base as unknown as Bootstrap__Output;
  return warnings.length > 0 ? { ok: true, value, warnings } : { ok: true, value };
}

function readConfigFile(file: string): Result<string> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.pb' || ext === '.pb_text') {
    return fail('', `config file "${file}": binary and text protobuf (${ext}) configs are not supported; use YAML or JSON`);
  }
  try {
    return { ok: true, value: fs.readFileSync(file, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    return fail('', `cannot read config file "${file}": ${why}`);
  }
}

/** YAML (a superset of JSON) -> plain JSON value; syntax errors name line:col. */
export function parseYaml(text: string, source: string): Result<unknown> {
  const doc = YAML.parseDocument(text, { uniqueKeys: true, merge: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const errors: ConfigError[] = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
      const msg = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      return { path: '', reason: `${where}: YAML error: ${msg}` };
    });
    return { ok: false, errors };
  }
  try {
    const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    return { ok: true, value: value ?? {} };
  } catch (e) {
    return fail('', `${source}: YAML error: ${(e as Error).message}`);
  }
}

/**
 * protobuf MergeFrom over proto-loader objects: set scalars replace (proto3 defaults do not),
 * messages merge recursively, repeated fields append, map entries replace, a set oneof member
 * clears its siblings. Returns a new object; inputs are not modified.
 */
export function mergeMessage(type: protobuf.Type, base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const field of type.fieldsArray) {
    const v = over[field.name];
    if (v === null || v === undefined) continue;
    const oneof = field.partOf;
    if (oneof) {
      if (over[oneof.name] !== field.name) continue;
      for (const sibling of oneof.oneof) if (sibling !== field.name) delete out[sibling];
      out[oneof.name] = field.name;
    }
    const prev = out[field.name];
    if (field.map) {
      out[field.name] = { ...(isPlainObject(prev) ? prev : {}), ...(isPlainObject(v) ? v : {}) };
    } else if (field.repeated) {
      out[field.name] = [...(Array.isArray(prev) ? prev : []), ...(Array.isArray(v) ? v : [])];
    } else if (field.resolvedType instanceof protobuf.Type) {
      out[field.name] = isPlainObject(prev) && isPlainObject(v) ? mergeMessage(field.resolvedType, prev, v) : v;
    } else if (oneof || !isDefaultScalar(field, v)) {
      out[field.name] = v;
    }
  }
  return out;
}

function isDefaultScalar(field: protobuf.Field, v: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return field.resolvedType.values[String(v)] === 0 || v === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  return v === 0 || v === '' || v === false || v === '0';
}

function fail<T>(p: string, reason: string): Result<T> {
  return { ok: false, errors: [{ path: p, reason }] };
}
