// Registers Istio's TCP `istio.metadata_exchange` network filter, the server side (explicit call
// from filters/index.ts). Clusters' upstream `filters` (the client side) are not run by legate.

import type { ExtensionRegistry } from '../../registry.ts';
import { parseTcpMetadataExchange, TCP_METADATA_EXCHANGE_NAME, TCP_METADATA_EXCHANGE_TYPE, type TcpMetadataExchangeConfig } from './config.ts';
import { TcpMetadataExchangeFactory } from './filter.ts';

export { TcpMetadataExchangeFactory, TcpMetadataExchangeFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<TcpMetadataExchangeConfig, TcpMetadataExchangeFactory>({
    name: TCP_METADATA_EXCHANGE_NAME,
    protoType: TCP_METADATA_EXCHANGE_TYPE,
    category: 'network',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseTcpMetadataExchange,
    factory: (config, ctx) => new TcpMetadataExchangeFactory(config, ctx),
  });
}
