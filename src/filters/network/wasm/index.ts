// Registers envoy.filters.network.wasm (envoy.extensions.filters.network.wasm.v3.Wasm): a Proxy-Wasm
// plugin as a network filter in front of tcp_proxy. Config is parsed as for the HTTP Wasm filter.

import { fail, joinPath, type Result } from '../../../config/result.ts';
import type { Wasm__Output } from '../../../generated/envoy/extensions/filters/network/wasm/v3/Wasm.ts';
import { parsePluginConfig, type WasmPluginConfig } from '../../../proxy/wasm/plugin-config.ts';
import type { ExtensionRegistry, ParseContext } from '../../registry.ts';
import { WasmNetworkFilterFactory } from './filter.ts';

export const WASM_NETWORK_NAME = 'envoy.filters.network.wasm';
export const WASM_NETWORK_TYPE = 'envoy.extensions.filters.network.wasm.v3.Wasm';

export function parseWasmNetwork(message: unknown, ctx: ParseContext): Result<WasmPluginConfig> {
  const m = message as Wasm__Output;
  if (!m.config) return fail(joinPath(ctx.path, 'config'), 'config is required');
  return parsePluginConfig(m.config, joinPath(ctx.path, 'config'));
}

export function register(registry: ExtensionRegistry): void {
  registry.register<WasmPluginConfig, WasmNetworkFilterFactory>({
    name: WASM_NETWORK_NAME,
    protoType: WASM_NETWORK_TYPE,
    category: 'network',
    terminal: false,
    status: 'alpha',
    securityPosture: 'unknown',
    parse: parseWasmNetwork,
    factory: (config, ctx) => new WasmNetworkFilterFactory(config, ctx),
  });
}
