// The HTTP header mutation filter (Envoy's HeaderMutation): on request headers it applies the filter
// config's request_mutations, then every route level's HeaderMutationPerRoute; on response headers
// the same with response_mutations. Everything is compiled at config time (route overrides on first
// use, cached per route); the common case, no route override, costs one map lookup per request.
// It never fails a request: a route override that fails to parse is logged once and ignored.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { HEADER_MUTATION_NAME, parseHeaderMutationPerRoute, type HeaderMutationConfig, type HeaderMutationPerRouteConfig } from './config.ts';

/**
 * typed_per_filter_config key the filter answers to. Envoy keys overrides by the filter's configured
 * name; the callbacks do not carry that name yet, so the well-known name is used (as RBAC does).
 */
const PER_ROUTE_KEY = HEADER_MUTATION_NAME;

/** The route levels' configs of one route, in evaluation order; undefined when the route disables the filter. */
type RouteLevels = readonly HeaderMutationPerRouteConfig[];

const NO_LEVELS: RouteLevels = Object.freeze([]);

/** Per worker: the filter config and the compiled route overrides. */
export class HeaderMutationFactory implements HttpFilterFactory<HeaderMutationConfig> {
  readonly top: HeaderMutationConfig;
  /** Parsed HeaderMutationPerRoute by unpacked message (null: invalid, ignored). */
  readonly #overrides = new PerRouteConfigs<HeaderMutationPerRouteConfig>(PER_ROUTE_KEY, 'HeaderMutationPerRoute', parseHeaderMutationPerRoute);
  readonly #byRoute = new WeakMap<RouteEntry, RouteLevels>();

  constructor(config: HeaderMutationConfig) {
    this.top = config;
  }

  create(_config: HeaderMutationConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new HeaderMutationFilter(this, callbacks);
  }

  /** The route levels to apply after the filter's own mutations; undefined when the route disables the filter. */
  levels(route: RouteEntry | undefined): RouteLevels | undefined {
    // The route's map holds the most specific level's value: absent there, absent everywhere.
    const o = route?.perFilterConfig.get(PER_ROUTE_KEY);
    if (o === undefined || route === undefined) return NO_LEVELS;
    if (o === FILTER_DISABLED) return undefined;
    let l = this.#byRoute.get(route);
    if (l === undefined) {
      l = this.#compileLevels(route, o);
      this.#byRoute.set(route, l);
    }
    return l;
  }

  /**
   * Envoy evaluates every level that configures the filter. The route table keeps the route's and
   * the virtual host's merged maps, so the levels seen are the route's and the virtual host's (or,
   * when the virtual host sets none, the route configuration's).
   */
  #compileLevels(route: RouteEntry, routeLevel: unknown): RouteLevels {
    const vhLevel = route.virtualHost.perFilterConfig.get(PER_ROUTE_KEY);
    const raw = vhLevel === routeLevel ? [routeLevel] : [routeLevel, vhLevel]; // most specific first
    const out: HeaderMutationPerRouteConfig[] = [];
    for (const m of raw) {
      if (m === undefined || m === FILTER_DISABLED || typeof m !== 'object' || m === null) continue;
      const c = this.#overrides.get(m, route);
      if (c) out.push(c);
    }
    // Default: most specific first, so less specific levels win on overwrite (Envoy's order).
    if (this.top.mostSpecificWins) out.reverse();
    return Object.freeze(out);
  }

}

export class HeaderMutationFilter implements HttpFilter {
  readonly #f: HeaderMutationFactory;
  readonly #cb: HttpFilterCallbacks;
  /** Resolved on request headers (or on response headers for a reply sent before them). */
  #levels: RouteLevels | undefined | null = null;

  constructor(factory: HeaderMutationFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const levels = (this.#levels = this.#f.levels(this.#cb.route()));
    if (levels === undefined) return FilterHeadersStatus.Continue;
    const info = this.#cb.streamInfo;
    const top = this.#f.top;
    if (!top.requestEmpty) top.request.apply(headers, info);
    for (let i = 0; i < levels.length; i++) {
      const l = levels[i]!;
      if (!l.requestEmpty) l.request.apply(headers, info);
    }
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    let levels = this.#levels;
    if (levels === null) levels = this.#levels = this.#f.levels(this.#cb.route());
    if (levels === undefined) return FilterHeadersStatus.Continue;
    const info = this.#cb.streamInfo;
    // %RESP(...)% reads the stream's response headers, which the connection manager records only
    // after the encoder filters ran: point it at the headers being mutated (the same map).
    info.responseHeaders = headers;
    const top = this.#f.top;
    if (!top.responseEmpty) top.response.apply(headers, info);
    for (let i = 0; i < levels.length; i++) {
      const l = levels[i]!;
      if (!l.responseEmpty) l.response.apply(headers, info);
    }
    return FilterHeadersStatus.Continue;
  }
}
