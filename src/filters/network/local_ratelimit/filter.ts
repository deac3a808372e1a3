// The network local rate limit filter: each new connection takes one token from a process-wide
// bucket; a connection that finds none is closed at once (no flush) and counted in
// `local_ratelimit.<stat_prefix>.rate_limited`. Runs before the chain's terminal filter.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { sharedTokenBucket, type TokenBucket } from '../../../proxy/token-bucket.ts';
import type { NetworkLocalRateLimitConfig } from './config.ts';

export class NetworkLocalRateLimitFactory implements NetworkFilterFactory<NetworkLocalRateLimitConfig> {
  readonly #rt: RuntimeContext;
  readonly #bucket: TokenBucket;
  readonly #rateLimited: Counter;
  readonly #config: NetworkLocalRateLimitConfig;

  constructor(config: NetworkLocalRateLimitConfig, rt: RuntimeContext) {
    this.#rt = rt;
    this.#config = config;
    this.#bucket = sharedTokenBucket(rt.shared, config.bucketKey, config.tokenBucket);
    this.#rateLimited = rt.stats.counter(`local_ratelimit.${config.statPrefix}.rate_limited`);
  }

  create(_config: NetworkLocalRateLimitConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return {
      onNewConnection: () => {
        const r = this.#config.runtimeEnabled;
        if (r && !this.#rt.runtime.getBoolean(r.runtimeKey, r.dflt)) return NetworkFilterStatus.Continue;
        if (this.#bucket.consume()) return NetworkFilterStatus.Continue;
        this.#rateLimited.inc();
        callbacks.close('reset');
        return NetworkFilterStatus.StopIteration;
      },
    };
  }
}
