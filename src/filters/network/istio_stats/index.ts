// Registers Istio's `istio.stats` network filter (explicit call from filters/index.ts); its config
// is the HTTP filter's (stats.PluginConfig).

import type { ExtensionRegistry } from '../../registry.ts';
import { ISTIO_STATS_NAME, ISTIO_STATS_TYPE, parseIstioStats, type IstioStatsConfig } from '../../http/istio_stats/config.ts';
import { TcpIstioStatsFactory } from './filter.ts';

export { TcpIstioStatsFactory, TcpIstioStatsFilter } from './filter.ts';

export function register(registry: ExtensionRegistry): void {
  registry.register<IstioStatsConfig, TcpIstioStatsFactory>({
    name: ISTIO_STATS_NAME,
    protoType: ISTIO_STATS_TYPE,
    category: 'network',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseIstioStats,
    factory: (config, ctx) => new TcpIstioStatsFactory(config, ctx),
  });
}
