// Registers envoy.filters.http.header_to_metadata (explicit call from filters/index.ts): request
// and response headers (or cookies) into dynamic metadata.

import type { ExtensionRegistry } from '../../registry.ts';
import { HEADER_TO_METADATA_NAME, HEADER_TO_METADATA_TYPE, parseHeaderToMetadata, type HeaderToMetadataConfig } from './config.ts';
import { HeaderToMetadataFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<HeaderToMetadataConfig, HeaderToMetadataFactory>({
    name: HEADER_TO_METADATA_NAME,
    protoType: HEADER_TO_METADATA_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseHeaderToMetadata,
    factory: (config) => new HeaderToMetadataFactory(config),
  });
}
