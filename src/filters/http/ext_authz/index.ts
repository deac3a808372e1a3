// Registers envoy.filters.http.ext_authz (explicit call from filters/index.ts). Config errors are
// Results (NACK / startup error); at run time the filter asks the authorization service per request.

import type { ExtensionRegistry } from '../../registry.ts';
import { EXT_AUTHZ_NAME, EXT_AUTHZ_TYPE, parseExtAuthz, type ExtAuthzConfig } from './config.ts';
import { ExtAuthzFactory } from './filter.ts';

export { EXT_AUTHZ_NAME, EXT_AUTHZ_PER_ROUTE_TYPE, EXT_AUTHZ_TYPE, parseExtAuthz, parseExtAuthzPerRoute, type ExtAuthzConfig } from './config.ts';
export { ExtAuthzFactory, ExtAuthzFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<ExtAuthzConfig, ExtAuthzFactory>({
    name: EXT_AUTHZ_NAME,
    aliases: ['envoy.ext_authz'],
    protoType: EXT_AUTHZ_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseExtAuthz,
    factory: (config, ctx) => new ExtAuthzFactory(config, ctx),
  });
}
