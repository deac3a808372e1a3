// Registers Istio's `istio.metadata_exchange` HTTP filter (explicit call from filters/index.ts).

import type { ExtensionRegistry } from '../../registry.ts';
import { METADATA_EXCHANGE_NAME, METADATA_EXCHANGE_TYPE, parseMetadataExchange, type MetadataExchangeConfig } from './config.ts';
import { MetadataExchangeFactory } from './filter.ts';

export { METADATA_EXCHANGE_NAME, METADATA_EXCHANGE_TYPE, parseMetadataExchange, type MetadataExchangeConfig } from './config.ts';
export { MetadataExchangeFactory, MetadataExchangeFilter, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<MetadataExchangeConfig, MetadataExchangeFactory>({
    name: METADATA_EXCHANGE_NAME,
    protoType: METADATA_EXCHANGE_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseMetadataExchange,
    factory: (config, ctx) => new MetadataExchangeFactory(config, ctx),
  });
}
