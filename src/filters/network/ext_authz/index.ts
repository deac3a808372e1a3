// Registers envoy.filters.network.ext_authz (explicit call from filters/index.ts): a non-terminal
// network filter that holds each connection until the authorization service allows it.

import type { ExtensionRegistry } from '../../registry.ts';
import { NETWORK_EXT_AUTHZ_NAME, NETWORK_EXT_AUTHZ_TYPE, parseNetworkExtAuthz, type NetworkExtAuthzConfig } from './config.ts';
import { NetworkExtAuthzFactory } from './filter.ts';

export { NETWORK_EXT_AUTHZ_NAME, NETWORK_EXT_AUTHZ_TYPE, parseNetworkExtAuthz, type NetworkExtAuthzConfig } from './config.ts';
export { NetworkExtAuthzFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<NetworkExtAuthzConfig, NetworkExtAuthzFactory>({
    name: NETWORK_EXT_AUTHZ_NAME,
    aliases: ['envoy.ext_authz'],
    protoType: NETWORK_EXT_AUTHZ_TYPE,
    category: 'network',
    terminal: false,
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseNetworkExtAuthz,
    factory: (config, ctx) => new NetworkExtAuthzFactory(config, ctx),
  });
}
