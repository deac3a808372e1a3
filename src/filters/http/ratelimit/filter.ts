// The rate limit filter (Envoy's global rate limiting): the request's descriptors (its route's and
// virtual host's `rate_limits` at the filter's stage) go to the rate limit service while the
// request waits. OVER_LIMIT: 429 (rate_limited_status) with the service's body and headers,
// x-envoy-ratelimited, flag RL. OK: the service's request headers are added and the request goes
// on; its response headers are added to the response. A failed call lets the request go on
// (failure_mode_allowed) unless failure_mode_deny: 500 (status_on_error), flag RLSE. Stats under
// cluster.<route cluster>.ratelimit.[<stat_prefix>.]: ok, over_limit, error, failure_mode_allowed.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { requestDescriptors } from '../../common/rate-limit-descriptors.ts';
import { RATELIMIT_NAME, parseRateLimitPerRoute, type RateLimitConfig, type RateLimitPerRouteConfig } from './config.ts';
import { shouldRateLimit, xRateLimitHeaders, type RlsAnswer } from './rls.ts';

const ALWAYS = { numerator: 100, denominator: 'HUNDRED' } as const;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;
type Outcome = 'ok' | 'over_limit' | 'error' | 'failure_mode_allowed';

export class RateLimitFactory implements HttpFilterFactory<RateLimitConfig> {
  readonly config: RateLimitConfig;
  readonly rt: RuntimeContext;
  readonly #perRoute = new PerRouteConfigs<RateLimitPerRouteConfig>(RATELIMIT_NAME, 'RateLimitPerRoute', parseRateLimitPerRoute);
  readonly #counters = new Map<string, Counter>();

  constructor(config: RateLimitConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
  }

  create(_config: RateLimitConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new RateLimitFilter(this, callbacks);
  }

  count(cluster: string, outcome: Outcome): void {
    const name = `cluster.${cluster}.${this.config.statInfix}${outcome}`;
    let c = this.#counters.get(name);
    if (!c) this.#counters.set(name, (c = this.rt.stats.counter(name)));
    c.inc();
  }

  perRoute(callbacks: HttpFilterCallbacks): RateLimitPerRouteConfig | undefined {
    const route = callbacks.route();
    const m = route?.perFilterConfig.get(RATELIMIT_NAME);
    return route && typeof m === 'object' && m !== null ? (this.#perRoute.get(m, route) ?? undefined) : undefined;
  }
}

function addAll(headers: HeaderMap, pairs: ReadonlyArray<readonly [string, string]>): void {
  for (const [k, v] of pairs) headers.add(k, v);
}

export class RateLimitFilter implements HttpFilter {
  readonly #f: RateLimitFactory;
  readonly #cb: HttpFilterCallbacks;
  #call: { cancel(): void } | undefined;
  #cluster = '';
  /** The service's response headers (and x-ratelimit-*), added to the response. */
  #responseHeaders: Array<readonly [string, string]> | undefined;

  constructor(factory: RateLimitFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const { config, rt } = this.#f;
    if (!rt.runtime.featureEnabled('ratelimit.http_filter_enabled', ALWAYS)) return FilterHeadersStatus.Continue;
    const internal = headers.get('x-envoy-internal') === 'true';
    if ((internal && config.requestType === 'external') || (!internal && config.requestType === 'internal')) return FilterHeadersStatus.Continue;
    const route = this.#cb.route();
    if (!route || route.action.kind !== 'route') return FilterHeadersStatus.Continue;
    const info = this.#cb.streamInfo;
    const cluster = route.action.pickCluster(headers, info);
    if (cluster === undefined || !rt.clusterManager.get(cluster)) return FilterHeadersStatus.Continue;
    const perRoute = this.#f.perRoute(this.#cb);
    const descriptors = requestDescriptors(route, config.stage, perRoute?.vhRateLimits ?? 'OVERRIDE', headers, info);
    if (descriptors.length === 0) return FilterHeadersStatus.Continue;
    this.#cluster = cluster;
    this.#call = shouldRateLimit(rt.clusterManager, config.service, perRoute?.domain ?? config.domain, descriptors, (a) => this.#complete(headers, a));
    return FilterHeadersStatus.StopIteration;
  }

  #complete(headers: HeaderMap, a: RlsAnswer | undefined): void {
    this.#call = undefined;
    const f = this.#f;
    const c = f.config;
    const cb = this.#cb;
    if (!a) {
      f.count(this.#cluster, 'error');
      if (c.failureModeDeny) return cb.sendLocalReply(c.errorStatus, '', { details: 'rate_limiter_error', flag: ResponseFlag.RateLimitServiceError });
      f.count(this.#cluster, 'failure_mode_allowed');
      return cb.continueDecoding();
    }
    f.count(this.#cluster, a.overLimit ? 'over_limit' : 'ok');
    const response = [...a.responseHeaders];
    if (a.overLimit && c.xEnvoyRateLimitedHeader) response.push(['x-envoy-ratelimited', 'true']);
    if (c.xRateLimitHeaders) response.push(...xRateLimitHeaders(a.statuses));
    if (a.overLimit && f.rt.runtime.featureEnabled('ratelimit.http_filter_enforcing', ALWAYS)) {
      return cb.sendLocalReply(c.limitedStatus, a.body, {
        details: 'request_rate_limited',
        flag: ResponseFlag.RateLimited,
        grpcStatus: c.asResourceExhausted ? GRPC_RESOURCE_EXHAUSTED : GRPC_UNAVAILABLE,
        modifyHeaders: (h) => {
          // The service's content-type is the body's, over the local reply's text/plain.
          if (response.some(([k]) => k === 'content-type')) h.remove('content-type');
          addAll(h, response);
          addAll(h, c.responseHeadersToAdd);
        },
      });
    }
    addAll(headers, a.requestHeaders);
    this.#responseHeaders = response;
    cb.continueDecoding();
  }

  onRequestBody(): FilterDataStatus {
    return this.#call ? FilterDataStatus.StopIterationAndBuffer : FilterDataStatus.Continue;
  }

  onRequestTrailers(): FilterTrailersStatus {
    return this.#call ? FilterTrailersStatus.StopIteration : FilterTrailersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (this.#responseHeaders) addAll(headers, this.#responseHeaders);
    this.#responseHeaders = undefined;
    return FilterHeadersStatus.Continue;
  }

  onDestroy(): void {
    this.#call?.cancel();
    this.#call = undefined;
  }
}
