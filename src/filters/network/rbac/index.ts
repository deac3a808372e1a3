// Registers envoy.filters.network.rbac (explicit call from filters/index.ts): a non-terminal network
// filter that resets connections its RBAC rules deny.

import type { ExtensionRegistry } from '../../registry.ts';
import { NETWORK_RBAC_NAME, NETWORK_RBAC_TYPE, parseNetworkRbac, type NetworkRbacConfig } from './config.ts';
import { NetworkRbacFactory } from './filter.ts';

export { NETWORK_RBAC_NAME, NETWORK_RBAC_TYPE, parseNetworkRbac, type NetworkRbacConfig } from './config.ts';
export { NetworkRbacFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<NetworkRbacConfig, NetworkRbacFactory>({
    name: NETWORK_RBAC_NAME,
    protoType: NETWORK_RBAC_TYPE,
    category: 'network',
    terminal: false,
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseNetworkRbac,
    factory: (config, ctx) => new NetworkRbacFactory(config, ctx.stats),
  });
}
