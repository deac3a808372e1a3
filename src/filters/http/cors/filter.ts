// The CORS filter (Envoy's CorsFilter). On request headers it finds the route's policies, most
// specific first: the typed_per_filter_config CorsPolicy of the route and of its virtual host, or,
// when neither sets one, the route's and the virtual host's `cors`. Each setting comes from the first
// policy that sets it; whether the filter is on (filter_enabled, shadow_enabled) from the first. A
// request with an Origin is a CORS request: the origin is checked (http.<prefix>.cors.origin_valid /
// origin_invalid), a preflight (OPTIONS with access-control-request-method) is answered here with 200
// unless an unmatched origin is forwarded (forward_not_matching_preflights, default true), and an
// allowed origin gets access-control-allow-origin / -allow-credentials / -expose-headers on the
// response. Redirect and direct_response routes are left alone, as in Envoy.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { compileCorsPolicy, type CorsPolicy } from '../../../proxy/http/cors-policy.ts';
import type { RuntimeFraction } from '../../../config/runtime-fraction.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { CORS_NAME, type CorsConfig } from './config.ts';

/**
 * typed_per_filter_config key the filter answers to. Envoy keys overrides by the filter's configured
 * name; the callbacks do not carry that name yet, so the well-known name is used (as RBAC does).
 */
const PER_ROUTE_KEY = CORS_NAME;

type Policies = readonly CorsPolicy[];
const NONE: Policies = Object.freeze([]);

interface CorsStats {
  readonly originValid: Counter;
  readonly originInvalid: Counter;
}

/** Per worker: the route policies, compiled once per route, and the stats per connection manager. */
export class CorsFactory implements HttpFilterFactory<CorsConfig> {
  readonly rt: RuntimeContext;
  /** The route table already rejected a bad policy: this only guards a table built without that check. */
  readonly #compiled = new PerRouteConfigs<CorsPolicy>(PER_ROUTE_KEY, 'CORS policy', compileCorsPolicy);
  readonly #byRoute = new WeakMap<RouteEntry, Policies>();
  readonly #stats = new Map<string, CorsStats>();

  constructor(rt: RuntimeContext) {
    this.rt = rt;
  }

  create(_config: CorsConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new CorsFilter(this, callbacks);
  }

  stats(statPrefix: string): CorsStats {
    let s = this.#stats.get(statPrefix);
    if (!s) {
      const p = `http.${statPrefix}.cors.`;
      s = { originValid: this.rt.stats.counter(`${p}origin_valid`), originInvalid: this.rt.stats.counter(`${p}origin_invalid`) };
      this.#stats.set(statPrefix, s);
    }
    return s;
  }

  /** The route's policies, most specific first; empty when none applies. */
  policies(route: RouteEntry): Policies {
    let p = this.#byRoute.get(route);
    if (p === undefined) {
      p = this.#collect(route);
      this.#byRoute.set(route, p);
    }
    return p;
  }

  #collect(route: RouteEntry): Policies {
    if (route.action.kind !== 'route') return NONE;
    // The route's map holds the most specific level's value, the virtual host's its own (or the
    // route configuration's).
    const routeLevel = route.perFilterConfig.get(PER_ROUTE_KEY);
    if (routeLevel === FILTER_DISABLED) return NONE;
    const vhLevel = route.virtualHost.perFilterConfig.get(PER_ROUTE_KEY);
    let raw: unknown[] = routeLevel === undefined ? [] : vhLevel === routeLevel || vhLevel === FILTER_DISABLED ? [routeLevel] : [routeLevel, vhLevel];
    // Without typed_per_filter_config, the route's and the virtual host's `cors` fields.
    if (raw.length === 0) raw = [(route.action.raw as { cors?: unknown } | undefined)?.cors, (route.virtualHost.raw as { cors?: unknown } | undefined)?.cors];
    const out: CorsPolicy[] = [];
    for (const m of raw) {
      if (m === undefined || m === null || typeof m !== 'object') continue;
      const c = this.#compiled.get(m, route);
      if (c) out.push(c);
    }
    return out.length > 0 ? Object.freeze(out) : NONE;
  }

}

/** The first policy's non-empty string setting. */
function firstString(ps: Policies, pick: (p: CorsPolicy) => string): string {
  for (const p of ps) {
    const v = pick(p);
    if (v !== '') return v;
  }
  return '';
}

/** The first policy's explicit boolean setting, else `dflt`. */
function firstBool(ps: Policies, pick: (p: CorsPolicy) => boolean | undefined, dflt: boolean): boolean {
  for (const p of ps) {
    const v = pick(p);
    if (v !== undefined) return v;
  }
  return dflt;
}

export class CorsFilter implements HttpFilter {
  readonly #f: CorsFactory;
  readonly #cb: HttpFilterCallbacks;
  #policies: Policies = NONE;
  /** The request carried an Origin and the filter is enforcing. */
  #isCors = false;
  /** The request's Origin, when allowed. */
  #origin: string | undefined;

  constructor(factory: CorsFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  #on(f: RuntimeFraction | undefined, dflt: boolean): boolean {
    return f === undefined ? dflt : this.#f.rt.runtime.featureEnabled(f.runtimeKey, f.dflt);
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const route = this.#cb.route();
    if (route === undefined) return FilterHeadersStatus.Continue;
    const ps = this.#f.policies(route);
    if (ps.length === 0) return FilterHeadersStatus.Continue;
    const enabled = this.#on(ps[0]!.filterEnabled, true);
    const shadow = this.#on(ps[0]!.shadowEnabled, false);
    if (!enabled && !shadow) return FilterHeadersStatus.Continue;
    const origin = headers.get('origin');
    if (origin === undefined || origin === '') return FilterHeadersStatus.Continue;
    this.#policies = ps;
    const allowed = this.#allowed(origin);
    const stats = this.#f.stats(this.#cb.statPrefix);
    if (allowed) {
      stats.originValid.inc();
      this.#origin = origin;
    } else stats.originInvalid.inc();
    if (!enabled) return FilterHeadersStatus.Continue; // shadow: counted, not enforced
    this.#isCors = true;
    if (headers.get(':method') !== 'OPTIONS') return FilterHeadersStatus.Continue;
    const requestMethod = headers.get('access-control-request-method');
    if (requestMethod === undefined || requestMethod === '') return FilterHeadersStatus.Continue;
    // A preflight.
    if (!allowed && firstBool(ps, (p) => p.forwardNotMatchingPreflights, true)) return FilterHeadersStatus.Continue;
    this.#cb.encodeHeaders(this.#preflightResponse(headers, origin, allowed, requestMethod), true);
    this.#cb.streamInfo.responseCodeDetails = 'cors_response';
    return FilterHeadersStatus.StopIteration;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    const origin = this.#origin;
    if (!this.#isCors || origin === undefined) return FilterHeadersStatus.Continue;
    const ps = this.#policies;
    headers.set('access-control-allow-origin', origin);
    if (firstBool(ps, (p) => p.allowCredentials, false)) headers.set('access-control-allow-credentials', 'true');
    const expose = firstString(ps, (p) => p.exposeHeaders);
    if (expose !== '') headers.set('access-control-expose-headers', expose);
    return FilterHeadersStatus.Continue;
  }

  /** Any matcher of the first policy with allow_origin_string_match that matches "*" or the origin. */
  #allowed(origin: string): boolean {
    for (const p of this.#policies) {
      if (p.allowOrigins.length === 0) continue;
      return p.allowOrigins.some((m) => m('*') || m(origin));
    }
    return false;
  }

  #preflightResponse(req: HeaderMap, origin: string, allowed: boolean, requestMethod: string): HeaderMap {
    const ps = this.#policies;
    const h = new HeaderMap();
    h.set(':status', '200');
    if (allowed) h.set('access-control-allow-origin', origin);
    if (firstBool(ps, (p) => p.allowCredentials, false)) h.set('access-control-allow-credentials', 'true');
    const methods = firstString(ps, (p) => p.allowMethods);
    if (methods !== '') h.set('access-control-allow-methods', methods === '*' ? requestMethod : methods);
    const allowHeaders = firstString(ps, (p) => p.allowHeaders);
    if (allowHeaders !== '') h.set('access-control-allow-headers', allowHeaders === '*' ? (req.get('access-control-request-headers') ?? '') : allowHeaders);
    const maxAge = firstString(ps, (p) => p.maxAge);
    if (maxAge !== '') h.set('access-control-max-age', maxAge);
    if (firstBool(ps, (p) => p.allowPrivateNetworkAccess, false) && req.get('access-control-request-private-network') === 'true') h.set('access-control-allow-private-network', 'true');
    return h;
  }
}
