// Parses envoy.tcp.metadataexchange.config.MetadataExchange (Istio's TCP `istio.metadata_exchange`):
// the ALPN protocol that selects the exchange.

import { ok, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export const TCP_METADATA_EXCHANGE_NAME = 'istio.metadata_exchange';
export const TCP_METADATA_EXCHANGE_TYPE = 'envoy.tcp.metadataexchange.config.MetadataExchange';

export interface TcpMetadataExchangeConfig {
  /** `istio-peer-exchange` as istiod sets it. */
  readonly protocol: string;
}

export function parseTcpMetadataExchange(message: unknown, _ctx: ParseContext): Result<TcpMetadataExchangeConfig> {
  return ok({ protocol: (message as { readonly protocol: string }).protocol });
}
