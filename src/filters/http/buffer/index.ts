// Registers envoy.filters.http.buffer (explicit call from filters/index.ts).

import type { ExtensionRegistry } from '../../registry.ts';
import { BUFFER_NAME, BUFFER_TYPE, parseBuffer, type BufferConfig } from './config.ts';
import { BufferFactory } from './filter.ts';

export { BUFFER_NAME, BUFFER_TYPE, parseBuffer, parseBufferPerRoute, type BufferConfig } from './config.ts';
export { BufferFactory, BufferFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<BufferConfig, BufferFactory>({
    name: BUFFER_NAME,
    aliases: ['envoy.buffer'],
    protoType: BUFFER_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseBuffer,
    factory: (config) => new BufferFactory(config),
  });
}
