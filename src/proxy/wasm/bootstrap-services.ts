// envoy.bootstrap.wasm: Proxy-Wasm plugins that run as services (a root context with timers,
// queues, HTTP/gRPC calls, shared data) rather than as filters, from the bootstrap's
// `bootstrap_extensions` (envoy.extensions.wasm.v3.WasmService). `singleton` runs one instance
// for the process (on worker 0; Envoy runs it on the main thread, which in legate never runs
// plugin code); otherwise every worker runs one. Other bootstrap extensions are ignored with a warning.

import { unpackAny } from '../../config/decode.ts';
import { joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { WasmService__Output } from '../../generated/envoy/extensions/wasm/v3/WasmService.ts';
import { parsePluginConfig, type WasmPluginConfig } from './plugin-config.ts';
import { WasmPluginRuntime, type PluginRuntimeContext } from './plugin-runtime.ts';
import { rootContextApi } from './properties.ts';

export interface WasmServiceConfig {
  readonly plugin: WasmPluginConfig;
  readonly singleton: boolean;
}

const WASM_SERVICE = 'envoy.extensions.wasm.v3.WasmService';

export function parseBootstrapExtensions(b: Bootstrap__Output, warnings: string[]): Result<WasmServiceConfig[]> {
  const errors: ConfigError[] = [];
  const out: WasmServiceConfig[] = [];
  (b.bootstrap_extensions ?? []).forEach((ext, i) => {
    const path = `bootstrap_extensions[${i}]`;
    if (!ext.typed_config) return void errors.push({ path: joinPath(path, 'typed_config'), reason: 'typed_config is required' });
    const any = unpackAny<WasmService__Output>(ext.typed_config, joinPath(path, 'typed_config'));
    if (!any.ok) return void errors.push(...any.errors);
    if (any.value.typeName !== WASM_SERVICE) return void warnings.push(`${path}: bootstrap extension '${ext.name}' (${any.value.typeName}) is not supported; ignored`);
    const svc = any.value.message;
    if (!svc.config) return void errors.push({ path: joinPath(path, 'typed_config.config'), reason: 'config is required' });
    const p = parsePluginConfig(svc.config, joinPath(path, 'typed_config.config'));
    if (!p.ok) return void errors.push(...p.errors);
    out.push({ plugin: p.value, singleton: svc.singleton });
  });
  return errors.length > 0 ? { ok: false, errors } : ok(out);
}

/** Starts this worker's share of the services; returns their runtimes (kept alive by the caller). */
export function startWasmServices(services: readonly WasmServiceConfig[], workerId: number, ctx: PluginRuntimeContext): WasmPluginRuntime[] {
  const running: WasmPluginRuntime[] = [];
  for (const s of services) {
    if (s.singleton && workerId !== 0) continue;
    const rt = new WasmPluginRuntime(s.plugin, ctx);
    rt.root(rootContextApi(s.plugin));
    running.push(rt);
  }
  return running;
}
