// Registration of envoy.filters.listener.proxy_protocol (explicit call, no import side effects).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { type ProxyProtocolConfig, parseProxyProtocol } from './config.ts';
import { ProxyProtocol } from './filter.ts';
import type { ListenerFilter } from '../../../proxy/listener/listener-filters.ts';

export const proxyProtocolSpec: ExtensionSpec<ProxyProtocolConfig, ListenerFilter> = {
  name: 'envoy.filters.listener.proxy_protocol',
  aliases: ['envoy.listener.proxy_protocol'],
  protoType: 'envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
  category: 'listener',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream',
  parse: parseProxyProtocol,
  factory: (config, ctx) => new ProxyProtocol(config, ctx.stats),
};

export function registerProxyProtocol(registry: ExtensionRegistry): void {
  registry.register(proxyProtocolSpec);
}
