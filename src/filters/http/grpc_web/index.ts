// Registers envoy.filters.http.grpc_web (explicit call from filters/index.ts): gRPC-Web clients
// (browsers) to gRPC upstreams.

import type { ExtensionRegistry } from '../../registry.ts';
import { GRPC_WEB_NAME, GRPC_WEB_TYPE, parseGrpcWeb, type GrpcWebConfig } from './config.ts';
import { GrpcWebFactory } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<GrpcWebConfig, GrpcWebFactory>({
    name: GRPC_WEB_NAME,
    aliases: ['envoy.grpc_web'],
    protoType: GRPC_WEB_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseGrpcWeb,
    factory: (_config, ctx) => new GrpcWebFactory(ctx),
  });
}
