// Registers Istio's `istio.stats` HTTP filter (explicit call from filters/index.ts); the network
// filter of the same name is in filters/network/istio_stats.

import type { ExtensionRegistry } from '../../registry.ts';
import { ISTIO_STATS_NAME, ISTIO_STATS_TYPE, parseIstioStats, type IstioStatsConfig } from './config.ts';
import { IstioStatsFactory } from './filter.ts';

export { ISTIO_STATS_NAME, ISTIO_STATS_TYPE, parseIstioStats, type IstioStatsConfig } from './config.ts';
export { IstioStatsFactory, IstioStatsFilter } from './filter.ts';
export { IstioStatsRecorder } from './recorder.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<IstioStatsConfig, IstioStatsFactory>({
    name: ISTIO_STATS_NAME,
    protoType: ISTIO_STATS_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseIstioStats,
    factory: (config, ctx) => new IstioStatsFactory(config, ctx),
  });
}
