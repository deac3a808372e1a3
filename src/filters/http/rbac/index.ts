// Registers envoy.filters.http.rbac (explicit call from filters/index.ts). Config errors are
// Results (NACK / startup error); at run time the filter only ever answers 403 or continues.

import type { ExtensionRegistry } from '../../registry.ts';
import { HTTP_RBAC_NAME, HTTP_RBAC_TYPE, parseHttpRbac, type HttpRbacConfig } from './config.ts';
import { HttpRbacFactory } from './filter.ts';

export { HTTP_RBAC_NAME, HTTP_RBAC_PER_ROUTE_TYPE, HTTP_RBAC_TYPE, parseHttpRbac, parseHttpRbacPerRoute, type HttpRbacConfig } from './config.ts';
export { HttpRbacFactory, HttpRbacFilter, RBAC_DENIED_BODY, RBAC_DENIED_STATUS } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<HttpRbacConfig, HttpRbacFactory>({
    name: HTTP_RBAC_NAME,
    protoType: HTTP_RBAC_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseHttpRbac,
    factory: (config, ctx) => new HttpRbacFactory(config, ctx.stats),
  });
}
