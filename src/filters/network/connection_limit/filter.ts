// The connection limit filter (Envoy's ConnectionLimitFilter): at most max_connections connections
// through the filter chain at a time, counted process-wide (every worker's copy shares one count);
// a connection over the limit is counted in connection_limit.<stat_prefix>.limited_connections and
// closed, after `delay` when one is set. active_connections is the gauge of those admitted.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter, Gauge } from '../../../proxy/stats.ts';
import type { SharedCell } from '../../../proxy/shared-counters.ts';
import { setLongTimeout } from '../../../proxy/long-timers.ts';
import type { ConnectionLimitConfig } from './config.ts';

export class ConnectionLimitFactory implements NetworkFilterFactory<ConnectionLimitConfig> {
  readonly #rt: RuntimeContext;
  readonly #config: ConnectionLimitConfig;
  readonly #active: SharedCell;
  readonly #limited: Counter;
  readonly #gauge: Gauge;

  constructor(config: ConnectionLimitConfig, rt: RuntimeContext) {
    this.#rt = rt;
    this.#config = config;
    this.#active = rt.shared.cell(config.counterKey);
    this.#limited = rt.stats.counter(`connection_limit.${config.statPrefix}.limited_connections`);
    this.#gauge = rt.stats.gauge(`connection_limit.${config.statPrefix}.active_connections`);
  }

  create(_config: ConnectionLimitConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return {
      onNewConnection: () => {
        const c = this.#config;
        const r = c.runtimeEnabled;
        if (r && !this.#rt.runtime.getBoolean(r.runtimeKey, r.dflt)) return NetworkFilterStatus.Continue;
        if (this.#active.tryIncrement(c.maxConnections)) {
          this.#gauge.inc();
          callbacks.socket.once('close', () => {
            this.#active.add(-1);
            this.#gauge.dec();
          });
          return NetworkFilterStatus.Continue;
        }
        this.#limited.inc();
        if (c.delayMs > 0) {
          const t = setLongTimeout(() => callbacks.close('reset'), c.delayMs);
          callbacks.socket.once('close', () => t.clear());
        } else callbacks.close('reset');
        return NetworkFilterStatus.StopIteration;
      },
    };
  }
}
