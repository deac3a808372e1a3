// The HTTP RBAC filter (Envoy's RoleBasedAccessControlFilter): on request headers it picks the
// engines (the route's RBACPerRoute or the filter's), runs the shadow rules (counted, never
// enforced) then the enforced rules, and answers a denied request with 403 `RBAC: access denied`
// (details `rbac_access_denied_matched_policy[<policy>|none]`). Same path for HTTP/1.1 and HTTP/2.
// A route override that fails to parse (parsed on first use) denies every request on that route:
// access control fails closed.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import type { StatsStore } from '../../../proxy/stats.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { formatErrors } from '../../../config/result.ts';
import { logger } from '../../../proxy/log.ts';
import { checkEnforced, checkShadow, RbacEngine, RbacStats, responseDetail } from '../../common/rbac/index.ts';
import { HTTP_RBAC_NAME, parseHttpRbacPerRoute, type HttpRbacConfig } from './config.ts';

const log = logger('filter');

/** Envoy's local reply for a denied request. */
export const RBAC_DENIED_STATUS = 403;
export const RBAC_DENIED_BODY = 'RBAC: access denied';

/** What an unparseable route override becomes: an ALLOW engine without policies denies everything. */
const DENY_ALL: HttpRbacConfig = Object.freeze({
  engine: new RbacEngine('ALLOW', []),
  shadowEngine: undefined,
  rulesStatPrefix: '',
  shadowRulesStatPrefix: '',
  trackPerRuleStats: false,
});

/**
 * typed_per_filter_config key the filter answers to. Envoy keys overrides by the filter's configured
 * name; the callbacks do not carry that name yet, so the well-known name is used.
 */
const PER_ROUTE_KEY = HTTP_RBAC_NAME;

/** Per worker: the filter config, parsed route overrides, and counters per connection manager. */
export class HttpRbacFactory implements HttpFilterFactory<HttpRbacConfig> {
  readonly #top: HttpRbacConfig;
  readonly #store: StatsStore;
  readonly #stats = new Map<string, RbacStats>();
  readonly #overrides = new WeakMap<object, HttpRbacConfig>();

  constructor(config: HttpRbacConfig, store: StatsStore) {
    this.#top = config;
    this.#store = store;
  }

  create(_config: HttpRbacConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new HttpRbacFilter(this, callbacks);
  }

  /** The engines for this request: the route's override, the filter's, or undefined when the route disables the filter. */
  resolve(route: RouteEntry | undefined): HttpRbacConfig | undefined {
    const o = route?.perFilterConfig.get(PER_ROUTE_KEY);
    if (o === undefined || route === undefined) return this.#top;
    if (o === FILTER_DISABLED) return undefined;
    if (typeof o !== 'object' || o === null) return DENY_ALL;
    let c = this.#overrides.get(o);
    if (!c) {
      const r = parseHttpRbacPerRoute(o, `typed_per_filter_config["${PER_ROUTE_KEY}"]`);
      if (!r.ok) log.warn(`route ${route.virtualHost.name}/${route.name}: invalid RBACPerRoute, denying its requests: ${formatErrors(r.errors)}`);
      c = r.ok ? r.value : DENY_ALL;
      this.#overrides.set(o, c);
    }
    return c;
  }

  /**
   * Counters under `http.<hcm stat_prefix>.rbac.`, with the filter config's rules prefixes (route
   * overrides count there too, as in Envoy, where the stats belong to the filter config).
   */
  stats(hcmStatPrefix: string): RbacStats {
    let s = this.#stats.get(hcmStatPrefix);
    if (!s) {
      s = new RbacStats(this.#store, `http.${hcmStatPrefix}.`, this.#top.rulesStatPrefix, this.#top.shadowRulesStatPrefix, 'envoy.filters.http.rbac');
      this.#stats.set(hcmStatPrefix, s);
    }
    return s;
  }
}

export class HttpRbacFilter implements HttpFilter {
  readonly #f: HttpRbacFactory;
  readonly #cb: HttpFilterCallbacks;

  constructor(factory: HttpRbacFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const active = this.#f.resolve(this.#cb.route());
    if (!active || (!active.engine && !active.shadowEngine)) return FilterHeadersStatus.Continue;
    const stats = this.#f.stats(this.#cb.statPrefix);
    // The per-request StreamInfo carries the connection's TLS session (authenticated principals).
    const input = { headers, info: this.#cb.streamInfo };
    if (active.shadowEngine) checkShadow(active.shadowEngine, input, stats, active.trackPerRuleStats);
    if (!active.engine) return FilterHeadersStatus.Continue;
    const d = checkEnforced(active.engine, input, stats, active.trackPerRuleStats);
    if (d.allowed) return FilterHeadersStatus.Continue;
    // Envoy sets no response flag for an RBAC denial; the details name the policy.
    this.#cb.sendLocalReply(RBAC_DENIED_STATUS, RBAC_DENIED_BODY, { details: responseDetail(d.policy) });
    return FilterHeadersStatus.StopIteration;
  }
}
