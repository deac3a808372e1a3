// Registers envoy.filters.http.grpc_stats (explicit call from filters/index.ts): per-cluster (and
// optionally per-method) gRPC call and message counters; it never changes traffic.

import type { ExtensionRegistry } from '../../registry.ts';
import { GRPC_STATS_NAME, GRPC_STATS_TYPE, parseGrpcStats, type GrpcStatsConfig } from './config.ts';
import { GrpcStatsFactory } from './filter.ts';

export { GRPC_STATS_NAME, GRPC_STATS_TYPE, parseGrpcStats, type GrpcStatsConfig } from './config.ts';
export { GrpcStatsFactory, GrpcStatsFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<GrpcStatsConfig, GrpcStatsFactory>({
    name: GRPC_STATS_NAME,
    protoType: GRPC_STATS_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseGrpcStats,
    factory: (config, ctx) => new GrpcStatsFactory(config, ctx),
  });
}
