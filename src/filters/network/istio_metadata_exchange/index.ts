// Registers Istio's TCP `istio.metadata_exchange`: the network filter (server side, inbound chains)
// and the cluster upstream filter (client side), both with envoy.tcp.metadataexchange.config.MetadataExchange.

import type { ExtensionRegistry } from '../../registry.ts';
import { parseTcpMetadataExchange, TCP_METADATA_EXCHANGE_NAME, TCP_METADATA_EXCHANGE_TYPE, type TcpMetadataExchangeConfig } from './config.ts';
import { TcpMetadataExchangeFactory, UpstreamMetadataExchangeFactory } from './filter.ts';

export { TcpMetadataExchangeFactory, TcpMetadataExchangeFilter, UpstreamMetadataExchangeFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  const common = { name: TCP_METADATA_EXCHANGE_NAME, protoType: TCP_METADATA_EXCHANGE_TYPE, status: 'stable', securityPosture: 'unknown', parse: parseTcpMetadataExchange } as const;
  registry.register<TcpMetadataExchangeConfig, TcpMetadataExchangeFactory>({ ...common, category: 'network', factory: (config, ctx) => new TcpMetadataExchangeFactory(config, ctx) });
  registry.register<TcpMetadataExchangeConfig, UpstreamMetadataExchangeFactory>({ ...common, category: 'upstream_network', factory: (config) => new UpstreamMetadataExchangeFactory(config) });
}
