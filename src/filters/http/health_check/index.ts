// Registers envoy.filters.http.health_check (explicit call from filters/index.ts). Config errors are
// Results (NACK / startup error); at run time the filter answers health checks or lets them pass.

import type { ExtensionRegistry } from '../../registry.ts';
import { HEALTH_CHECK_NAME, HEALTH_CHECK_TYPE, parseHealthCheck, type HealthCheckConfig } from './config.ts';
import { HealthCheckFactory } from './filter.ts';

export { HEALTH_CHECK_NAME, HEALTH_CHECK_TYPE, parseHealthCheck, type HealthCheckConfig } from './config.ts';
export { HealthCheckFactory, HealthCheckFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<HealthCheckConfig, HealthCheckFactory>({
    name: HEALTH_CHECK_NAME,
    aliases: ['envoy.health_check'],
    protoType: HEALTH_CHECK_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseHealthCheck,
    factory: (config, ctx) => new HealthCheckFactory(config, ctx),
  });
}
