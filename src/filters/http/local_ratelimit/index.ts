// Registers envoy.filters.http.local_ratelimit (explicit call from filters/index.ts). Config errors
// are Results (NACK / startup error); at run time the filter only ever answers 429 or continues.

import type { ExtensionRegistry } from '../../registry.ts';
import { LOCAL_RATELIMIT_NAME, LOCAL_RATELIMIT_TYPE, parseLocalRateLimitFilter, type LocalRateLimitConfig } from './config.ts';
import { LocalRateLimitFactory } from './filter.ts';

export { LOCAL_RATELIMIT_NAME, LOCAL_RATELIMIT_TYPE, parseLocalRateLimit, parseLocalRateLimitFilter, type LocalRateLimitConfig } from './config.ts';
export { LocalRateLimitFactory, LocalRateLimitFilter, RateLimiter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<LocalRateLimitConfig, LocalRateLimitFactory>({
    name: LOCAL_RATELIMIT_NAME,
    protoType: LOCAL_RATELIMIT_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseLocalRateLimitFilter,
    factory: (config, ctx) => new LocalRateLimitFactory(config, ctx),
  });
}
