// Registers envoy.filters.network.local_ratelimit (explicit call from filters/index.ts): a
// non-terminal network filter that closes connections beyond its token bucket.

import type { ExtensionRegistry } from '../../registry.ts';
import { NETWORK_LOCAL_RATELIMIT_NAME, NETWORK_LOCAL_RATELIMIT_TYPE, parseNetworkLocalRateLimit, type NetworkLocalRateLimitConfig } from './config.ts';
import { NetworkLocalRateLimitFactory } from './filter.ts';

export { NETWORK_LOCAL_RATELIMIT_NAME, NETWORK_LOCAL_RATELIMIT_TYPE, parseNetworkLocalRateLimit, type NetworkLocalRateLimitConfig } from './config.ts';
export { NetworkLocalRateLimitFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<NetworkLocalRateLimitConfig, NetworkLocalRateLimitFactory>({
    name: NETWORK_LOCAL_RATELIMIT_NAME,
    protoType: NETWORK_LOCAL_RATELIMIT_TYPE,
    category: 'network',
    terminal: false,
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseNetworkLocalRateLimit,
    factory: (config, ctx) => new NetworkLocalRateLimitFactory(config, ctx),
  });
}
