// envoy.extensions.wasm.v3.PluginConfig -> a frozen WasmPluginConfig: the module (read from
// `code.local`, or `code.remote` from the verified cache of remote-code.ts, and compiled here, so a
// bad module is a config error naming the field), the root
// id, the plugin and VM configurations as the bytes the plugin will read, environment variables,
// fail_open. Shared by the HTTP and network Wasm filters.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { toProto3Json, unpackAny } from '../../config/decode.ts';
import { fail, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import type { PluginConfig__Output } from '../../generated/envoy/extensions/wasm/v3/PluginConfig.ts';
import type { DataSource__Output } from '../../generated/envoy/config/core/v3/DataSource.ts';
import type { Any__Output } from '../../generated/google/protobuf/Any.ts';
import type { Pairs } from './pairs.ts';
import { checkModule, WasmLoadError } from './vm-api.ts';
import { remoteCode } from './remote-code.ts';

export const RUNTIMES: ReadonlySet<string> = new Set(['envoy.wasm.runtime.v8', 'envoy.wasm.runtime.wamr', 'envoy.wasm.runtime.wasmtime', 'envoy.wasm.runtime.wavm']);
const DEFAULT_RUNTIME = 'envoy.wasm.runtime.v8';
/** Stands in for remote code under --mode validate (which never fetches). */
const EMPTY_MODULE = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

export interface WasmPluginConfig {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  /** As configured (every runtime name runs on Node's WebAssembly); stats use it. */
  readonly runtime: string;
  readonly module: WebAssembly.Module;
  /** sha256 of the code: with vm_id, which plugins share a VM. */
  readonly codeSha256: string;
  readonly configuration: Buffer;
  readonly vmConfiguration: Buffer;
  readonly environment: Pairs;
  readonly failOpen: boolean;
}

function dataSourceBytes(ds: DataSource__Output, path: string): Result<Buffer> {
  switch (ds.specifier) {
    case 'inline_bytes':
      return ok(Buffer.from(ds.inline_bytes ?? []));
    case 'inline_string':
      return ok(Buffer.from(ds.inline_string ?? '', 'utf8'));
    case 'filename':
      try {
        return ok(readFileSync(ds.filename ?? ''));
      } catch (e) {
        return fail(joinPath(path, 'filename'), `unable to read file '${ds.filename}': ${(e as Error).message}`);
      }
    default:
      return fail(path, 'code.local must be filename, inline_bytes or inline_string');
  }
}

/**
 * Envoy's rule for `configuration`: a StringValue or BytesValue is passed as its raw value,
 * anything else as its proto3 JSON.
 */
function configurationBytes(any: Any__Output | null, path: string): Result<Buffer> {
  if (!any || !any.type_url) return ok(Buffer.alloc(0));
  const u = unpackAny<{ value?: unknown }>(any, path);
  if (!u.ok) return u;
  if (u.value.typeName === 'google.protobuf.StringValue') return ok(Buffer.from(String(u.value.message.value ?? ''), 'utf8'));
  if (u.value.typeName === 'google.protobuf.BytesValue') return ok(Buffer.from((u.value.message.value as Uint8Array | undefined) ?? []));
  const json = toProto3Json(u.value.typeName, u.value.message);
  const body = json && typeof json === 'object' && 'value' in json && Object.keys(json).length === 1 ? (json as { value: unknown }).value : json;
  return ok(Buffer.from(JSON.stringify(body), 'utf8'));
}

export function parsePluginConfig(pc: PluginConfig__Output, path: string): Result<WasmPluginConfig> {
  const errors: ConfigError[] = [];
  const vmPath = joinPath(path, 'vm_config');
  const vm = pc.vm_config;
  if (!vm) return fail(vmPath, 'vm_config is required');
  const runtime = vm.runtime || DEFAULT_RUNTIME;
  if (runtime === 'envoy.wasm.runtime.null') errors.push({ path: joinPath(vmPath, 'runtime'), reason: 'envoy.wasm.runtime.null runs plugins compiled into Envoy; legate runs .wasm modules only' });
  else if (!RUNTIMES.has(runtime)) errors.push({ path: joinPath(vmPath, 'runtime'), reason: `unknown Wasm runtime '${runtime}'` });
  const codePath = joinPath(vmPath, 'code');
  let code: Buffer | undefined;
  if (!vm.code) errors.push({ path: codePath, reason: 'code is required' });
  else if (vm.code.specifier === 'remote') {
    const remote = vm.code.remote;
    const r = remote ? remoteCode(remote) : ({ kind: 'missing', reason: 'remote is empty' } as const);
    if (r.kind === 'bytes') code = r.bytes;
    else if (r.kind === 'validate-only') code = EMPTY_MODULE;
    else errors.push({ path: joinPath(codePath, 'remote'), reason: r.reason });
  } else if (vm.code.local) {
    const r = dataSourceBytes(vm.code.local, joinPath(codePath, 'local'));
    if (r.ok) code = r.value;
    else errors.push(...r.errors);
  }
  const cfg = configurationBytes(pc.configuration, joinPath(path, 'configuration'));
  if (!cfg.ok) errors.push(...cfg.errors);
  const vmCfg = configurationBytes(vm.configuration, joinPath(vmPath, 'configuration'));
  if (!vmCfg.ok) errors.push(...vmCfg.errors);
  const environment: Array<[string, string]> = [];
  const ev = vm.environment_variables;
  if (ev) {
    for (const name of ev.host_env_keys) {
      const v = process.env[name];
      if (v !== undefined) environment.push([name, v]);
    }
    for (const [k, v] of Object.entries(ev.key_values ?? {})) environment.push([k, v]);
  }
  let module: WebAssembly.Module | undefined;
  if (code) {
    try {
      module = new WebAssembly.Module(code);
      if (code !== EMPTY_MODULE) checkModule(module);
    } catch (e) {
      const why = e instanceof WasmLoadError ? e.message : `not a valid WebAssembly module: ${e instanceof Error ? e.message : String(e)}`;
      errors.push({ path: joinPath(codePath, 'local'), reason: why });
    }
  }
  if (errors.length > 0 || !module || !code || !cfg.ok || !vmCfg.ok) return { ok: false, errors };
  return ok(
    Object.freeze({
      name: pc.name,
      rootId: pc.root_id,
      vmId: vm.vm_id,
      runtime,
      module,
      codeSha256: createHash('sha256').update(code).digest('hex'),
      configuration: cfg.value,
      vmConfiguration: vmCfg.value,
      environment,
      failOpen: pc.fail_open,
    }),
  );
}
