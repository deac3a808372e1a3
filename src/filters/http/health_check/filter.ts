// The health check filter (Envoy's HealthCheckFilter): a request its `headers` match is a health
// check (StreamInfo.healthCheck, for access logs' not_health_check_filter). Outside pass-through mode
// legate answers it: 503 (flag LH) while the server fails its health checks (admin
// /healthcheck/fail), 503 when a cluster in cluster_min_healthy_percentages is missing, empty or has
// too few available (healthy or degraded) hosts, else 200. In pass-through mode it goes upstream,
// unless the server is failing or a cached answer (cache_time) is fresh. Health check responses
// carry x-envoy-upstream-healthchecked-cluster (node.cluster); other responses, while the server
// is failing, x-envoy-immediate-health-check-fail.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import { healthCheckFailed } from '../../../proxy/server-health.ts';
import { localNode } from '../../../proxy/local-info.ts';
import type { HealthCheckConfig } from './config.ts';

/** The last upstream answer to a health check, reused for cache_time (Envoy's HealthCheckCacheManager). */
interface Cached {
  readonly status: number;
  readonly degraded: boolean;
  readonly at: number;
}

/** Per worker: the config and the pass-through cache. */
export class HealthCheckFactory implements HttpFilterFactory<HealthCheckConfig> {
  readonly config: HealthCheckConfig;
  readonly rt: RuntimeContext;
  #cached: Cached | undefined;

  constructor(config: HealthCheckConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
  }

  create(_config: HealthCheckConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new HealthCheckFilter(this, callbacks);
  }

  failed(): boolean {
    return healthCheckFailed(this.rt.shared);
  }

  /** A cached answer younger than cache_time, if any. */
  cached(): Cached | undefined {
    const c = this.#cached;
    return c !== undefined && performance.now() - c.at < this.config.cacheTimeMs ? c : undefined;
  }

  remember(status: number, degraded: boolean): void {
    if (this.config.cacheTimeMs > 0) this.#cached = { status, degraded, at: performance.now() };
  }

  /** 200, or 503 with Envoy's details when a cluster has too few available hosts. */
  clusterVerdict(): { status: number; details: string } {
    let details = 'health_check_ok';
    for (const [name, min] of this.config.minHealthy) {
      details = 'health_check_ok_cluster_healthy';
      const cluster = this.rt.clusterManager.get(name);
      if (!cluster) return { status: 503, details: 'health_check_failed_no_cluster_found' };
      const hosts = cluster.hosts();
      if (hosts.length === 0) {
        if (min === 0) continue;
        return { status: 503, details: 'health_check_failed_cluster_empty' };
      }
      let available = 0;
      for (const h of hosts) if (h.health !== 'unhealthy') available++;
      if (100 * available < hosts.length * min) return { status: 503, details: 'health_check_failed_cluster_unhealthy' };
    }
    return { status: 200, details };
  }
}

export class HealthCheckFilter implements HttpFilter {
  readonly #f: HealthCheckFactory;
  readonly #cb: HttpFilterCallbacks;
  #isHealthCheck = false;
  /** This filter answers the request (it never reaches the router). */
  #handling = false;

  constructor(factory: HealthCheckFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    const c = this.#f.config;
    if (c.matches === undefined || c.matches(headers)) {
      this.#isHealthCheck = true;
      this.#cb.streamInfo.healthCheck = true;
      this.#handling = !c.passThrough || this.#f.failed() || this.#f.cached() !== undefined;
    }
    if (endStream && this.#handling) this.#complete();
    return this.#handling ? FilterHeadersStatus.StopIteration : FilterHeadersStatus.Continue;
  }

  onRequestBody(_data: Buffer, endStream: boolean): FilterDataStatus {
    if (endStream && this.#handling) this.#complete();
    return this.#handling ? FilterDataStatus.StopIterationNoBuffer : FilterDataStatus.Continue;
  }

  onRequestTrailers(): FilterTrailersStatus {
    if (this.#handling) this.#complete();
    return this.#handling ? FilterTrailersStatus.StopIteration : FilterTrailersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (this.#isHealthCheck) {
      if (!this.#handling) this.#f.remember(Number(headers.get(':status')), headers.get('x-envoy-degraded') !== undefined);
      headers.set('x-envoy-upstream-healthchecked-cluster', localNode()?.cluster ?? '');
    } else if (this.#f.failed()) {
      headers.set('x-envoy-immediate-health-check-fail', 'true');
    }
    return FilterHeadersStatus.Continue;
  }

  #complete(): void {
    let status = 200;
    let details = 'health_check_ok';
    let degraded = false;
    if (this.#f.failed()) {
      status = 503;
      details = 'health_check_failed';
    } else {
      const cached = this.#f.cached();
      if (cached !== undefined) {
        status = cached.status;
        degraded = cached.degraded;
        details = 'health_check_cached';
      } else ({ status, details } = this.#f.clusterVerdict());
    }
    const flag = status < 200 || status >= 300 ? ResponseFlag.FailedLocalHealthCheck : undefined;
    this.#cb.sendLocalReply(status, '', { details, ...(flag ? { flag } : {}), ...(degraded ? { headers: { 'x-envoy-degraded': '' } } : {}) });
  }
}
