// Registers envoy.filters.http.basic_auth (explicit call from filters/index.ts): HTTP Basic
// credentials checked against htpasswd SHA-1 users.

import type { ExtensionRegistry } from '../../registry.ts';
import { BASIC_AUTH_NAME, BASIC_AUTH_TYPE, parseBasicAuth, type BasicAuthConfig } from './config.ts';
import { BasicAuthFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<BasicAuthConfig, BasicAuthFactory>({
    name: BASIC_AUTH_NAME,
    protoType: BASIC_AUTH_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseBasicAuth,
    factory: (config, ctx) => new BasicAuthFactory(config, ctx),
  });
}
