// Registers envoy.filters.http.jwt_authn (explicit call from filters/index.ts): JWTs checked
// against local or remote key sets before a request goes on.

import type { ExtensionRegistry } from '../../registry.ts';
import { JWT_AUTHN_NAME, JWT_AUTHN_TYPE, parseJwtAuthn, type JwtAuthnConfig } from './config.ts';
import { JwtAuthnFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<JwtAuthnConfig, JwtAuthnFactory>({
    name: JWT_AUTHN_NAME,
    protoType: JWT_AUTHN_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseJwtAuthn,
    factory: (config, ctx) => new JwtAuthnFactory(config, ctx),
  });
}
