// Registers envoy.filters.network.http_connection_manager: a terminal network filter whose factory
// builds one connection manager per worker and hands it every connection the filter chain takes over.

import type { ExtensionRegistry, RuntimeContext } from '../../registry.ts';
import type { NetworkFilterCallbacks, NetworkFilterFactory } from '../filter.ts';
import type { HttpConnectionManager__Output } from '../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import { createConnectionManager } from '../../../proxy/http/connection-manager.ts';
import type { ConnectionManager } from '../../../proxy/http/connection-manager-types.ts';
import { parseHttpConnectionManager, type HcmConfig } from './config.ts';

export { parseHttpConnectionManager, parseHttpFilters } from './config.ts';
export type { HcmConfig } from './config.ts';
export { createConnectionManager } from '../../../proxy/http/connection-manager.ts';
export type { ConnectionManager, ConnectionOptions } from '../../../proxy/http/connection-manager-types.ts';

export const HCM_NAME = 'envoy.filters.network.http_connection_manager';
export const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** The network filter factory, with the manager exposed for drain and shutdown. */
export interface HcmNetworkFilterFactory extends NetworkFilterFactory<HcmConfig> {
  readonly manager: ConnectionManager;
}

export function createHcmFactory(config: HcmConfig, ctx: RuntimeContext): HcmNetworkFilterFactory {
  const manager = createConnectionManager(config, ctx);
  return {
    terminal: true,
    manager,
    takeOver(_config: HcmConfig, callbacks: NetworkFilterCallbacks): void {
      const si = callbacks.streamInfo;
      manager.handleConnection(callbacks.socket, {
        connectionId: si.connectionId,
        remote: si.downstreamRemote,
        directRemote: si.downstreamDirectRemote,
        local: si.downstreamLocal,
        bufferLimitBytes: callbacks.bufferLimitBytes,
        ...(si.requestedServerName !== undefined ? { requestedServerName: si.requestedServerName } : {}),
        ...(si.downstreamTls !== undefined ? { downstreamTls: si.downstreamTls } : {}),
      });
    },
    drain: () => manager.drain(),
    close: () => manager.close(),
  };
}

export function register(registry: ExtensionRegistry): void {
  registry.register<HcmConfig, HcmNetworkFilterFactory>({
    name: HCM_NAME,
    aliases: ['envoy.http_connection_manager'],
    protoType: HCM_TYPE,
    category: 'network',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: (message, ctx) => parseHttpConnectionManager(message as HttpConnectionManager__Output, ctx),
    factory: createHcmFactory,
  });
}
