// Registers envoy.filters.http.wasm (envoy.extensions.filters.http.wasm.v3.Wasm): a Proxy-Wasm
// plugin as an HTTP filter. The module is read and compiled at config time (a bad one is a config
// error naming `config.vm_config.code`); each worker runs its own VMs.

import { fail, joinPath, type Result } from '../../../config/result.ts';
import type { Wasm__Output } from '../../../generated/envoy/extensions/filters/http/wasm/v3/Wasm.ts';
import { parsePluginConfig, type WasmPluginConfig } from '../../../proxy/wasm/plugin-config.ts';
import type { ExtensionRegistry, ParseContext } from '../../registry.ts';
import { WasmHttpFilterFactory } from './filter.ts';

export const WASM_HTTP_NAME = 'envoy.filters.http.wasm';
export const WASM_HTTP_TYPE = 'envoy.extensions.filters.http.wasm.v3.Wasm';

export function parseWasmHttp(message: unknown, ctx: ParseContext): Result<WasmPluginConfig> {
  const m = message as Wasm__Output;
  if (!m.config) return fail(joinPath(ctx.path, 'config'), 'config is required');
  return parsePluginConfig(m.config, joinPath(ctx.path, 'config'));
}

export function register(registry: ExtensionRegistry): void {
  registry.register<WasmPluginConfig, WasmHttpFilterFactory>({
    name: WASM_HTTP_NAME,
    protoType: WASM_HTTP_TYPE,
    category: 'http',
    status: 'alpha',
    securityPosture: 'unknown',
    parse: parseWasmHttp,
    factory: (config, ctx) => new WasmHttpFilterFactory(config, ctx),
  });
}
