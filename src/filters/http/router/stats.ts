// The router's stats with Envoy's names: per connection manager (`http.<stat_prefix>.no_route`...)
// and per cluster (`cluster.<name>.upstream_rq_total`...). Objects are made once per worker and reused.

import type { Counter, Gauge, Histogram, StatsStore } from '../../../proxy/stats.ts';

export interface HttpRouterStats {
  readonly rqTotal: Counter;
  readonly noRoute: Counter;
  readonly noCluster: Counter;
  readonly rqDirectResponse: Counter;
  readonly rqRedirect: Counter;
  readonly rqResetAfterDownstreamResponseStarted: Counter;
}

export class ClusterRouterStats {
  readonly rqTotal: Counter;
  readonly rqActive: Gauge;
  readonly rqCompleted: Counter;
  readonly rqTime: Histogram;
  readonly rqTimeout: Counter;
  readonly rqRxReset: Counter;
  readonly rqTxReset: Counter;
  readonly cxNoneHealthy: Counter;
  readonly rqPerTryTimeout: Counter;
  readonly rqPerTryIdleTimeout: Counter;
  readonly rqMaxDurationReached: Counter;
  readonly rqRetry: Counter;
  readonly rqRetrySuccess: Counter;
  readonly rqRetryOverflow: Counter;
  readonly rqRetryLimitExceeded: Counter;
  readonly rqRetryBackoffExponential: Counter;
  readonly rqRetryBackoffRatelimited: Counter;
  readonly retryOrShadowAbandoned: Counter;
  readonly #store: StatsStore;
  readonly #prefix: string;
  /** upstream_rq_<code> and upstream_rq_<N>xx by status code. */
  readonly #codes = new Map<number, readonly [Counter, Counter]>();
  readonly #retryCodes = new Map<number, readonly [Counter, Counter]>();

  constructor(store: StatsStore, prefix: string) {
    this.#store = store;
    this.#prefix = prefix;
    this.rqTotal = store.counter(`${prefix}upstream_rq_total`);
    this.rqActive = store.gauge(`${prefix}upstream_rq_active`);
    this.rqCompleted = store.counter(`${prefix}upstream_rq_completed`);
    this.rqTime = store.histogram(`${prefix}upstream_rq_time`);
    this.rqTimeout = store.counter(`${prefix}upstream_rq_timeout`);
    this.rqRxReset = store.counter(`${prefix}upstream_rq_rx_reset`);
    this.rqTxReset = store.counter(`${prefix}upstream_rq_tx_reset`);
    this.cxNoneHealthy = store.counter(`${prefix}upstream_cx_none_healthy`);
    this.rqPerTryTimeout = store.counter(`${prefix}upstream_rq_per_try_timeout`);
    this.rqPerTryIdleTimeout = store.counter(`${prefix}upstream_rq_per_try_idle_timeout`);
    this.rqMaxDurationReached = store.counter(`${prefix}upstream_rq_max_duration_reached`);
    this.rqRetry = store.counter(`${prefix}upstream_rq_retry`);
    this.rqRetrySuccess = store.counter(`${prefix}upstream_rq_retry_success`);
    this.rqRetryOverflow = store.counter(`${prefix}upstream_rq_retry_overflow`);
    this.rqRetryLimitExceeded = store.counter(`${prefix}upstream_rq_retry_limit_exceeded`);
    this.rqRetryBackoffExponential = store.counter(`${prefix}upstream_rq_retry_backoff_exponential`);
    this.rqRetryBackoffRatelimited = store.counter(`${prefix}upstream_rq_retry_backoff_ratelimited`);
    this.retryOrShadowAbandoned = store.counter(`${prefix}retry_or_shadow_abandoned`);
  }

  /** A response that was retried: `retry.upstream_rq_<code>` and `retry.upstream_rq_<N>xx` (Envoy's chargeBasicResponseStat). */
  chargeRetriedCode(status: number): void {
    let pair = this.#retryCodes.get(status);
    if (!pair) {
      pair = [this.#store.counter(`${this.#prefix}retry.upstream_rq_${status}`), this.#store.counter(`${this.#prefix}retry.upstream_rq_${Math.floor(status / 100)}xx`)];
      this.#retryCodes.set(status, pair);
    }
    pair[0].inc();
    pair[1].inc();
  }

  /** Envoy's CodeStats: upstream_rq_completed, upstream_rq_<N>xx and upstream_rq_<code>. */
  chargeCode(status: number): void {
    let pair = this.#codes.get(status);
    if (!pair) {
      pair = [this.#store.counter(`${this.#prefix}upstream_rq_${status}`), this.#store.counter(`${this.#prefix}upstream_rq_${Math.floor(status / 100)}xx`)];
      this.#codes.set(status, pair);
    }
    this.rqCompleted.inc();
    pair[0].inc();
    pair[1].inc();
  }
}

/** Per-worker caches, keyed by stat prefix (a cluster replaced by CDS keeps its counters). */
export class RouterStatsCache {
  readonly #store: StatsStore;
  readonly #http = new Map<string, HttpRouterStats>();
  readonly #clusters = new Map<string, ClusterRouterStats>();

  constructor(store: StatsStore) {
    this.#store = store;
  }

  http(statPrefix: string): HttpRouterStats {
    let s = this.#http.get(statPrefix);
    if (!s) {
      const p = `http.${statPrefix}.`;
      const st = this.#store;
      s = {
        rqTotal: st.counter(`${p}rq_total`),
        noRoute: st.counter(`${p}no_route`),
        noCluster: st.counter(`${p}no_cluster`),
        rqDirectResponse: st.counter(`${p}rq_direct_response`),
        rqRedirect: st.counter(`${p}rq_redirect`),
        rqResetAfterDownstreamResponseStarted: st.counter(`${p}rq_reset_after_downstream_response_started`),
      };
      this.#http.set(statPrefix, s);
    }
    return s;
  }

  /** `statPrefix` is the cluster's, with its trailing dot (`cluster.backend.`). */
  cluster(statPrefix: string): ClusterRouterStats {
    let s = this.#clusters.get(statPrefix);
    if (!s) this.#clusters.set(statPrefix, (s = new ClusterRouterStats(this.#store, statPrefix)));
    return s;
  }

  readonly #vclusters = new Map<string, VirtualClusterStats>();

  /** A virtual host's virtual cluster: `vhost.<virtualHost>.vcluster.<name>.`. */
  virtualCluster(virtualHost: string, name: string): VirtualClusterStats {
    const prefix = `vhost.${virtualHost}.vcluster.${name}.`;
    let s = this.#vclusters.get(prefix);
    if (!s) this.#vclusters.set(prefix, (s = new VirtualClusterStats(this.#store, prefix)));
    return s;
  }
}

/**
 * A virtual cluster's stats (`vhost.<virtual host>.vcluster.<virtual cluster>.`): Envoy's
 * upstream_rq_total, _time, _timeout, the retry counters and the response codes.
 */
export class VirtualClusterStats {
  readonly rqTotal: Counter;
  readonly rqTime: Histogram;
  readonly rqTimeout: Counter;
  readonly rqRetry: Counter;
  readonly rqRetrySuccess: Counter;
  readonly rqRetryOverflow: Counter;
  readonly rqRetryLimitExceeded: Counter;
  readonly #store: StatsStore;
  readonly #prefix: string;
  readonly #codes = new Map<number, readonly [Counter, Counter]>();

  constructor(store: StatsStore, prefix: string) {
    this.#store = store;
    this.#prefix = prefix;
    this.rqTotal = store.counter(`${prefix}upstream_rq_total`);
    this.rqTime = store.histogram(`${prefix}upstream_rq_time`);
    this.rqTimeout = store.counter(`${prefix}upstream_rq_timeout`);
    this.rqRetry = store.counter(`${prefix}upstream_rq_retry`);
    this.rqRetrySuccess = store.counter(`${prefix}upstream_rq_retry_success`);
    this.rqRetryOverflow = store.counter(`${prefix}upstream_rq_retry_overflow`);
    this.rqRetryLimitExceeded = store.counter(`${prefix}upstream_rq_retry_limit_exceeded`);
  }

  /** upstream_rq_<code> and upstream_rq_<N>xx. */
  chargeCode(status: number): void {
    let pair = this.#codes.get(status);
    if (!pair) {
      pair = [this.#store.counter(`${this.#prefix}upstream_rq_${status}`), this.#store.counter(`${this.#prefix}upstream_rq_${Math.floor(status / 100)}xx`)];
      this.#codes.set(status, pair);
    }
    pair[0].inc();
    pair[1].inc();
  }
}
