// Registration of envoy.filters.listener.original_dst (explicit call, no import side effects).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { type OriginalDstConfig, parseOriginalDst } from './config.ts';
import { OriginalDst } from './filter.ts';
import type { ListenerFilter } from '../../../proxy/listener/listener-filters.ts';

export const ORIGINAL_DST_FILTER = 'envoy.filters.listener.original_dst';

export const originalDstSpec: ExtensionSpec<OriginalDstConfig, ListenerFilter> = {
  name: ORIGINAL_DST_FILTER,
  aliases: ['envoy.listener.original_dst'],
  protoType: 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  category: 'listener',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream',
  parse: parseOriginalDst,
  factory: () => new OriginalDst(),
};

export function registerOriginalDst(registry: ExtensionRegistry): void {
  registry.register(originalDstSpec);
}
