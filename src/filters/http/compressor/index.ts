// Registers envoy.filters.http.compressor (explicit call from filters/index.ts).

import type { ExtensionRegistry } from '../../registry.ts';
import { COMPRESSOR_NAME, COMPRESSOR_TYPE, parseCompressor, type CompressorConfig } from './config.ts';
import { CompressorFactory } from './filter.ts';

export { COMPRESSOR_NAME, COMPRESSOR_TYPE, parseCompressor, type CompressorConfig } from './config.ts';
export { CompressorFactory, CompressorFilter, negotiate } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<CompressorConfig, CompressorFactory>({
    name: COMPRESSOR_NAME,
    protoType: COMPRESSOR_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseCompressor,
    factory: (config, ctx) => new CompressorFactory(config, ctx),
  });
}
