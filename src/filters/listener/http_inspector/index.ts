// Registration of envoy.filters.listener.http_inspector (explicit call, no import side effects).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { type HttpInspectorConfig, parseHttpInspector } from './config.ts';
import { HttpInspector } from './filter.ts';
import type { ListenerFilter } from '../../../proxy/listener/listener-filters.ts';

export const httpInspectorSpec: ExtensionSpec<HttpInspectorConfig, ListenerFilter> = {
  name: 'envoy.filters.listener.http_inspector',
  aliases: ['envoy.listener.http_inspector'],
  protoType: 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  category: 'listener',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream',
  parse: parseHttpInspector,
  factory: (config, ctx) => new HttpInspector(config, ctx.stats),
};

export function registerHttpInspector(registry: ExtensionRegistry): void {
  registry.register(httpInspectorSpec);
}
