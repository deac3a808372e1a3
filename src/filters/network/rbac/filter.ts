// The network RBAC filter (Envoy's network RoleBasedAccessControlFilter): a non-terminal filter that
// checks each new connection against the shadow rules (counted, never enforced) and the enforced
// rules, and resets a denied connection before the terminal filter (tcp_proxy, HCM) sees a byte.
// Counters: `<stat_prefix>.rbac.{allowed,denied}` and `<stat_prefix>.rbac.<shadow prefix>shadow_*`.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { StatsStore } from '../../../proxy/stats.ts';
import { checkEnforced, checkShadow, NO_HEADERS, RbacStats, responseDetail } from '../../common/rbac/index.ts';
import type { NetworkRbacConfig } from './config.ts';

export class NetworkRbacFactory implements NetworkFilterFactory<NetworkRbacConfig> {
  readonly #config: NetworkRbacConfig;
  readonly #stats: RbacStats;

  constructor(config: NetworkRbacConfig, store: StatsStore) {
    this.#config = config;
    // The network filter has no rules_stat_prefix (Envoy passes "").
    this.#stats = new RbacStats(store, config.statPrefix, '', config.shadowRulesStatPrefix, 'envoy.filters.network.rbac');
  }

  create(_config: NetworkRbacConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    const config = this.#config;
    const stats = this.#stats;
    return {
      onNewConnection: () => {
        // Envoy checks on the first byte (ONE_TIME_ON_FIRST_BYTE) or on every read (CONTINUOUS); the
        // rules see only connection properties here (addresses, SNI, the TLS peer -- the handshake is
        // done before network filters run), so one check at connection time gives the same answer,
        // only earlier. Header and url_path rules see no headers at L4.
        const input = { headers: NO_HEADERS, info: callbacks.streamInfo };
        if (config.shadowEngine) checkShadow(config.shadowEngine, input, stats, false);
        if (!config.engine) return NetworkFilterStatus.Continue;
        const d = checkEnforced(config.engine, input, stats, false);
        if (d.allowed) return NetworkFilterStatus.Continue;
        callbacks.streamInfo.terminationDetails = responseDetail(d.policy);
        callbacks.close('reset');
        return NetworkFilterStatus.StopIteration;
      },
    };
  }
}
