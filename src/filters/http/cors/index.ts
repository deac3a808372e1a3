// Registers envoy.filters.http.cors (explicit call from filters/index.ts). Its policies are
// checked with the route table (a bad one rejects the route configuration); at run time the filter
// answers preflights and adds the access-control-* headers, never failing a request.

import type { ExtensionRegistry } from '../../registry.ts';
import { CORS_NAME, CORS_TYPE, parseCors, type CorsConfig } from './config.ts';
import { CorsFactory } from './filter.ts';

export { CORS_NAME, CORS_TYPE, type CorsConfig } from './config.ts';
export { CorsFactory, CorsFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<CorsConfig, CorsFactory>({
    name: CORS_NAME,
    aliases: ['envoy.cors'],
    protoType: CORS_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseCors,
    factory: (_config, ctx) => new CorsFactory(ctx),
  });
}
