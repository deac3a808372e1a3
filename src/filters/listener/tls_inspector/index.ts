// Registration of envoy.filters.listener.tls_inspector (explicit call, no import side effects).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { type TlsInspectorConfig, parseTlsInspector } from './config.ts';
import { TlsInspector } from './filter.ts';
import type { ListenerFilter } from '../../../proxy/listener/listener-filters.ts';

export const tlsInspectorSpec: ExtensionSpec<TlsInspectorConfig, ListenerFilter> = {
  name: 'envoy.filters.listener.tls_inspector',
  aliases: ['envoy.listener.tls_inspector'],
  protoType: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  category: 'listener',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream',
  parse: parseTlsInspector,
  factory: (config, ctx) => new TlsInspector(config, ctx.stats),
};

export function registerTlsInspector(registry: ExtensionRegistry): void {
  registry.register(tlsInspectorSpec);
}
