// Registers envoy.filters.http.header_mutation (explicit call from filters/index.ts). Config errors
// are Results (NACK / startup error); at run time the filter only mutates headers and continues.

import type { ExtensionRegistry } from '../../registry.ts';
import { HEADER_MUTATION_NAME, HEADER_MUTATION_TYPE, parseHeaderMutation, type HeaderMutationConfig } from './config.ts';
import { HeaderMutationFactory } from './filter.ts';

export {
  HEADER_MUTATION_NAME,
  HEADER_MUTATION_PER_ROUTE_TYPE,
  HEADER_MUTATION_TYPE,
  parseHeaderMutation,
  parseHeaderMutationPerRoute,
  type HeaderMutationConfig,
  type HeaderMutationPerRouteConfig,
} from './config.ts';
export { HeaderMutationFactory, HeaderMutationFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<HeaderMutationConfig, HeaderMutationFactory>({
    name: HEADER_MUTATION_NAME,
    protoType: HEADER_MUTATION_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream_and_upstream',
    parse: parseHeaderMutation,
    factory: (config) => new HeaderMutationFactory(config),
  });
}
