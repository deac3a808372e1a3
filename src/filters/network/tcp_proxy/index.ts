// Registration of envoy.filters.network.tcp_proxy (explicit call, no import side effects).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { TCP_PROXY_TYPE, type TcpProxyConfig, parseTcpProxy } from './config.ts';
import { TcpProxyFactory } from './filter.ts';

export const tcpProxySpec: ExtensionSpec<TcpProxyConfig, TcpProxyFactory> = {
  name: 'envoy.filters.network.tcp_proxy',
  aliases: ['envoy.tcp_proxy'],
  protoType: TCP_PROXY_TYPE,
  category: 'network',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream',
  parse: parseTcpProxy,
  factory: (config, ctx) => new TcpProxyFactory(config, ctx),
};

export function registerTcpProxy(registry: ExtensionRegistry): void {
  registry.register(tcpProxySpec);
}
