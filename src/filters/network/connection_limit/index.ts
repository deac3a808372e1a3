// Registers envoy.filters.network.connection_limit (explicit call from filters/index.ts): a
// non-terminal network filter that closes connections beyond its process-wide limit.

import type { ExtensionRegistry } from '../../registry.ts';
import { CONNECTION_LIMIT_NAME, CONNECTION_LIMIT_TYPE, parseConnectionLimit, type ConnectionLimitConfig } from './config.ts';
import { ConnectionLimitFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<ConnectionLimitConfig, ConnectionLimitFactory>({
    name: CONNECTION_LIMIT_NAME,
    protoType: CONNECTION_LIMIT_TYPE,
    category: 'network',
    terminal: false,
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseConnectionLimit,
    factory: (config, ctx) => new ConnectionLimitFactory(config, ctx),
  });
}
