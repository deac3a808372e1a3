// Registers envoy.filters.http.ratelimit (explicit call from filters/index.ts): global rate
// limiting through a rate limit service (envoy.service.ratelimit.v3) on an envoy_grpc cluster.

import type { ExtensionRegistry } from '../../registry.ts';
import { RATELIMIT_NAME, RATELIMIT_TYPE, parseRateLimit, type RateLimitConfig } from './config.ts';
import { RateLimitFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<RateLimitConfig, RateLimitFactory>({
    name: RATELIMIT_NAME,
    aliases: ['envoy.rate_limit'],
    protoType: RATELIMIT_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseRateLimit,
    factory: (config, ctx) => new RateLimitFactory(config, ctx),
  });
}
