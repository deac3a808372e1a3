// RouteConfiguration -> RouteTable: virtual hosts found by `:authority` (exact, longest suffix
// wildcard, longest prefix wildcard, `*`), then routes in order. Config problems are Result errors with field paths.

import { fail, ok, joinPath, type ConfigError, type Result } from '../../config/result.ts';
import { unpackAny } from '../../config/decode.ts';
import { lowerName, type HeaderMap } from './headers.ts';
import type { StreamInfo } from './stream-info.ts';
import type { RouteEntry, RouteTable, VirtualHostEntry } from './route-types.ts';
import { compileHeaderParser, chainHeaderMutators, type HeaderParser } from './header-mutation.ts';
import { compileRouteMatch, RequestView, type CompiledRouteMatch } from './route-match.ts';
import { compileClusterAction, compileDirectResponse, compileRedirect, type ActionContext } from './route-actions.ts';
import { compileMirrorPolicies } from './route-mirror.ts';
import { retryHedgeErrors } from './route-retry-policy.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { VirtualHost__Output } from '../../generated/envoy/config/route/v3/VirtualHost.ts';
import type { Route__Output } from '../../generated/envoy/config/route/v3/Route.ts';
import type { FilterConfig__Output } from '../../generated/envoy/config/route/v3/FilterConfig.ts';
import type { Any__Output } from '../../generated/google/protobuf/Any.ts';
import { rateLimitErrors } from './route-rate-limits.ts';
import { CORS_POLICY_TYPE, corsPolicyErrors } from './cors-policy.ts';
import { compileVirtualClusters } from './virtual-clusters.ts';

export interface RouteTableContext {
  /** Field path of the RouteConfiguration, e.g. `static_resources.listeners[0]...typed_config.route_config`. */
  readonly path: string;
  /** Clusters known now (static bootstrap clusters); undefined when clusters come from CDS. */
  readonly clusterNames: ReadonlySet<string> | undefined;
  /** True for RDS: validate_clusters then defaults to false (it defaults to true for route_config). */
  readonly dynamic?: boolean;
  /**
   * Match virtual hosts on the host without its port, as ignore_port_in_host_matching does. The HCM's
   * strip_any_host_port / strip_matching_host_port rewrite `:authority` itself before matching; this is
   * for callers that want the matching behaviour without touching the header.
   */
  readonly stripPort?: boolean;
  /** Uniform in [0, 1): weighted clusters and runtime_fraction. Math.random by default. */
  readonly random?: () => number;
}

/** Stored in perFilterConfig for a filter that a FilterConfig wrapper marks `disabled: true`. */
export const FILTER_DISABLED: { readonly disabled: true } = Object.freeze({ disabled: true as const });

const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';
const DEFAULT_MAX_DIRECT_BODY = 4096; // bytes, RouteConfiguration.max_direct_response_body_size_bytes

interface CompiledRoute {
  readonly match: CompiledRouteMatch;
  readonly entry: RouteEntry;
}

interface CompiledVirtualHost {
  readonly entry: VirtualHostEntry;
  readonly routes: readonly CompiledRoute[];
  readonly requireTls: 'NONE' | 'EXTERNAL_ONLY' | 'ALL';
  readonly tlsRedirect: RouteEntry | undefined;
}

/** Wildcard domains grouped by the length of their literal part, longest first (Envoy's std::greater map). */
type WildcardIndex = { readonly len: number; readonly byKey: Map<string, CompiledVirtualHost> }[];

function insertWildcard(index: WildcardIndex, key: string, vh: CompiledVirtualHost): boolean {
  let group = index.find((g) => g.len === key.length);
  if (!group) {
    group = { len: key.length, byKey: new Map() };
    index.push(group);
    index.sort((a, b) => b.len - a.len);
  }
  if (group.byKey.has(key)) return false;
  group.byKey.set(key, vh);
  return true;
}

function findWildcard(index: WildcardIndex, host: string, suffix: boolean): CompiledVirtualHost | undefined {
  for (const g of index) {
    // `>=`: `*.foo.com` must not match `.foo.com`.
    if (g.len >= host.length) continue;
    const vh = g.byKey.get(suffix ? host.slice(host.length - g.len) : host.slice(0, g.len));
    if (vh) return vh;
  }
  return undefined;
}

/** Envoy's HeaderUtility::getPortStart: index of `:port`, or -1 (IPv6 literals need their brackets). */
export function portStart(host: string): number {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return -1;
  const v6End = host.lastIndexOf(']');
  if (v6End < 0 || v6End < colon) return colon;
  return -1;
}

/** typed_per_filter_config: each Any unpacked to its proto-loader message (FilterConfig wrappers unwrapped). */
function compilePerFilterConfig(map: Record<string, Any__Output>, path: string, errors: ConfigError[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [name, any] of Object.entries(map)) {
    const p = `${path}["${name}"]`;
    const r = unpackAny<unknown>(any, p);
    if (!r.ok) {
      errors.push(...r.errors);
      continue;
    }
    if (r.value.typeName !== FILTER_CONFIG_TYPE) {
      if (r.value.typeName === CORS_POLICY_TYPE) errors.push(...corsPolicyErrors(r.value.message, p));
      out.set(name, r.value.message);
      continue;
    }
    const fc = r.value.message as FilterConfig__Output;
    if (fc.disabled && !fc.config) {
      out.set(name, FILTER_DISABLED);
      continue;
    }
    if (!fc.config) {
      errors.push({ path: joinPath(p, 'config'), reason: 'value is required' });
      continue;
    }
    const inner = unpackAny<unknown>(fc.config, joinPath(p, 'config'));
    if (inner.ok) {
      if (inner.value.typeName === CORS_POLICY_TYPE) errors.push(...corsPolicyErrors(inner.value.message, joinPath(p, 'config')));
      out.set(name, inner.value.message);
    } else if (!fc.is_optional) errors.push(...inner.errors);
  }
  return out;
}

function mergeMaps(...maps: ReadonlyMap<string, unknown>[]): ReadonlyMap<string, unknown> {
  const out = new Map<string, unknown>();
  for (const m of maps) for (const [k, v] of m) out.set(k, v);
  return out;
}

interface TableLevel {
  readonly perFilter: ReadonlyMap<string, unknown>;
  readonly request: HeaderParser;
  readonly response: HeaderParser;
  readonly mostSpecificWins: boolean;
  readonly actions: ActionContext;
}

function compileRoute(route: Route__Output, path: string, vh: VirtualHostEntry, vhReq: HeaderParser, vhRes: HeaderParser, table: TableLevel, errors: ConfigError[]): CompiledRoute | undefined {
  const m = compileRouteMatch(route.match, joinPath(path, 'match'));
  if (!m.ok) {
    errors.push(...m.errors);
    return undefined;
  }
  let action: RouteEntry['action'] | undefined;
  switch (route.action) {
    case 'route': {
      const r = route.route ? compileClusterAction(route.route, m.value, joinPath(path, 'route'), table.actions) : fail<never>(joinPath(path, 'route'), 'value is required');
      const limits = [...rateLimitErrors(route.route?.rate_limits, joinPath(path, 'route.rate_limits')), ...(route.route?.cors ? corsPolicyErrors(route.route.cors, joinPath(path, 'route.cors')) : [])];
      if (r.ok && limits.length === 0) action = r.value;
      else errors.push(...(r.ok ? [] : r.errors), ...limits);
      break;
    }
    case 'redirect': {
      const r = route.redirect ? compileRedirect(route.redirect, m.value, joinPath(path, 'redirect')) : fail<never>(joinPath(path, 'redirect'), 'value is required');
      if (r.ok) action = r.value;
      else errors.push(...r.errors);
      break;
    }
    case 'direct_response': {
      const d = route.direct_response;
      const r = d ? compileDirectResponse(d, joinPath(path, 'direct_response'), table.actions.maxDirectResponseBodyBytes) : fail<never>(joinPath(path, 'direct_response'), 'value is required');
      if (r.ok) action = r.value;
      else errors.push(...r.errors);
      break;
    }
    case 'filter_action':
    case 'non_forwarding_action':
      errors.push({ path: joinPath(path, route.action), reason: `${route.action} is not supported` });
      break;
    default:
      errors.push({ path: joinPath(path, 'action'), reason: 'value is required' });
  }
  const req = compileHeaderParser(route.request_headers_to_add, route.request_headers_to_remove, path, 'request');
  const res = compileHeaderParser(route.response_headers_to_add, route.response_headers_to_remove, path, 'response');
  if (!req.ok) errors.push(...req.errors);
  if (!res.ok) errors.push(...res.errors);
  const perFilter = compilePerFilterConfig(route.typed_per_filter_config, joinPath(path, 'typed_per_filter_config'), errors);
  if (!action || !req.ok || !res.ok) return undefined;
  const order = <T>(route: T, vhost: T, global: T): T[] => (table.mostSpecificWins ? [global, vhost, route] : [route, vhost, global]);
  const entry: RouteEntry = Object.freeze({
    name: route.name,
    virtualHost: vh,
    action,
    perFilterConfig: mergeMaps(table.perFilter, vh.perFilterConfig, perFilter),
    requestHeaders: chainHeaderMutators(order(req.value, vhReq, table.request)),
    responseHeaders: chainHeaderMutators(order(res.value, vhRes, table.response)),
  });
  return { match: m.value, entry };
}

function compileVirtualHost(v: VirtualHost__Output, path: string, table: TableLevel, errors: ConfigError[]): CompiledVirtualHost | undefined {
  const before = errors.length;
  if (v.matcher) errors.push({ path: joinPath(path, 'matcher'), reason: 'matcher is not supported; use routes' });
  const perFilter = compilePerFilterConfig(v.typed_per_filter_config, joinPath(path, 'typed_per_filter_config'), errors);
  const mirrors = compileMirrorPolicies(v.request_mirror_policies, path, table.actions.validateAgainst);
  if (!mirrors.ok) errors.push(...mirrors.errors);
  errors.push(...retryHedgeErrors(v.retry_policy, v.hedge_policy, path));
  errors.push(...rateLimitErrors(v.rate_limits, joinPath(path, 'rate_limits')));
  if (v.cors) errors.push(...corsPolicyErrors(v.cors, joinPath(path, 'cors')));
  const virtualClusters = compileVirtualClusters(v.virtual_clusters, joinPath(path, 'virtual_clusters'), errors);
  const entry: VirtualHostEntry = Object.freeze({
    name: v.name,
    ...(virtualClusters ? { virtualClusters } : {}),
    perFilterConfig: mergeMaps(table.perFilter, perFilter),
    retryPolicy: v.retry_policy ?? undefined,
    raw: v,
    mirrorPolicies: mirrors.ok ? mirrors.value : undefined,
  });
  const req = compileHeaderParser(v.request_headers_to_add, v.request_headers_to_remove, path, 'request');
  const res = compileHeaderParser(v.response_headers_to_add, v.response_headers_to_remove, path, 'response');
  if (!req.ok) errors.push(...req.errors);
  if (!res.ok) errors.push(...res.errors);
  if (!req.ok || !res.ok) return undefined;
  const routes: CompiledRoute[] = [];
  v.routes.forEach((r, i) => {
    const c = compileRoute(r, joinPath(path, `routes[${i}]`), entry, req.value, res.value, table, errors);
    if (c) routes.push(c);
  });
  if (errors.length > before) return undefined;
  const requireTls = v.require_tls;
  const tlsRedirect: RouteEntry | undefined =
    requireTls === 'NONE'
      ? undefined
      : Object.freeze({
          name: '',
          virtualHost: entry,
          action: Object.freeze({
            kind: 'redirect' as const,
            status: 301,
            location: (h: HeaderMap) => `https://${h.get(':authority') ?? h.get('host') ?? ''}${h.get(':path') ?? '/'}`,
          }),
          perFilterConfig: entry.perFilterConfig,
          requestHeaders: chainHeaderMutators([]),
          responseHeaders: chainHeaderMutators([]),
        });
  return { entry, routes, requireTls, tlsRedirect };
}

class CompiledRouteTable implements RouteTable {
  readonly name: string;
  readonly internalOnlyHeaders: readonly string[];
  readonly #exact: Map<string, CompiledVirtualHost>;
  readonly #suffixes: WildcardIndex;
  readonly #prefixes: WildcardIndex;
  readonly #default: CompiledVirtualHost | undefined;
  readonly #ignorePort: boolean;
  readonly #ignorePathParams: boolean;
  readonly #random: () => number;

  constructor(init: {
    name: string;
    internalOnlyHeaders: readonly string[];
    exact: Map<string, CompiledVirtualHost>;
    suffixes: WildcardIndex;
    prefixes: WildcardIndex;
    default: CompiledVirtualHost | undefined;
    ignorePort: boolean;
    ignorePathParams: boolean;
    random: () => number;
  }) {
    this.name = init.name;
    this.internalOnlyHeaders = init.internalOnlyHeaders;
    this.#exact = init.exact;
    this.#suffixes = init.suffixes;
    this.#prefixes = init.prefixes;
    this.#default = init.default;
    this.#ignorePort = init.ignorePort;
    this.#ignorePathParams = init.ignorePathParams;
    this.#random = init.random;
  }

  /** The virtual host for a request's `:authority`, or undefined (Envoy's RouteMatcher::findVirtualHost). */
  findVirtualHost(headers: HeaderMap): CompiledVirtualHost | undefined {
    if (this.#exact.size === 0 && this.#suffixes.length === 0 && this.#prefixes.length === 0) return this.#default;
    let host = headers.get(':authority') ?? headers.get('host');
    if (host === undefined) return undefined;
    if (this.#ignorePort) {
      const p = portStart(host);
      if (p >= 0) host = host.slice(0, p);
    }
    host = lowerName(host);
    return (
      this.#exact.get(host) ??
      (this.#suffixes.length > 0 ? findWildcard(this.#suffixes, host, true) : undefined) ??
      (this.#prefixes.length > 0 ? findWildcard(this.#prefixes, host, false) : undefined) ??
      this.#default
    );
  }

  match(headers: HeaderMap, _info: StreamInfo): RouteEntry | undefined {
    const vh = this.findVirtualHost(headers);
    if (!vh) return undefined;
    if (vh.tlsRedirect) {
      const proto = headers.get('x-forwarded-proto') ?? headers.get(':scheme');
      if (proto !== 'https' && (vh.requireTls === 'ALL' || headers.get('x-envoy-internal') !== 'true')) return vh.tlsRedirect;
    }
    const req = new RequestView(headers, this.#ignorePathParams, this.#random);
    for (const r of vh.routes) if (r.match.matches(req)) return r.entry;
    return undefined;
  }
}

export function compileRouteTable(rc: RouteConfiguration__Output, ctx: RouteTableContext): Result<RouteTable> {
  const errors: ConfigError[] = [];
  const path = ctx.path;
  if (rc.vhds) return fail(joinPath(path, 'vhds'), 'vhds is not supported');
  if (rc.cluster_specifier_plugins.length > 0) return fail(joinPath(path, 'cluster_specifier_plugins'), 'cluster specifier plugins are not supported');
  const validate = rc.validate_clusters ? rc.validate_clusters.value : !ctx.dynamic;
  const req = compileHeaderParser(rc.request_headers_to_add, rc.request_headers_to_remove, path, 'request');
  const res = compileHeaderParser(rc.response_headers_to_add, rc.response_headers_to_remove, path, 'response');
  if (!req.ok) errors.push(...req.errors);
  if (!res.ok) errors.push(...res.errors);
  const perFilter = compilePerFilterConfig(rc.typed_per_filter_config, joinPath(path, 'typed_per_filter_config'), errors);
  if (!req.ok || !res.ok) return { ok: false, errors };
  const random = ctx.random ?? Math.random;
  const table: TableLevel = {
    perFilter,
    request: req.value,
    response: res.value,
    mostSpecificWins: rc.most_specific_header_mutations_wins,
    actions: {
      validateAgainst: validate ? ctx.clusterNames : undefined,
      random,
      maxDirectResponseBodyBytes: rc.max_direct_response_body_size_bytes?.value ?? DEFAULT_MAX_DIRECT_BODY,
    },
  };

  const exact = new Map<string, CompiledVirtualHost>();
  const suffixes: WildcardIndex = [];
  const prefixes: WildcardIndex = [];
  let dflt: CompiledVirtualHost | undefined;
  rc.virtual_hosts.forEach((v, i) => {
    const vp = joinPath(path, `virtual_hosts[${i}]`);
    if (!v.name) errors.push({ path: joinPath(vp, 'name'), reason: 'value length must be at least 1 characters' });
    if (v.domains.length === 0) errors.push({ path: joinPath(vp, 'domains'), reason: 'value must contain at least 1 item(s)' });
    const vh = compileVirtualHost(v, vp, table, errors);
    if (!vh) return;
    v.domains.forEach((d, j) => {
      const domain = d.toLowerCase();
      const dp = joinPath(vp, `domains[${j}]`);
      let unique: boolean;
      if (domain === '*') {
        if (dflt) {
          errors.push({ path: dp, reason: `Only a single wildcard domain is permitted in route ${rc.name}` });
          return;
        }
        dflt = vh;
        unique = true;
      } else if (domain.startsWith('*')) unique = insertWildcard(suffixes, domain.slice(1), vh);
      else if (domain.endsWith('*')) unique = insertWildcard(prefixes, domain.slice(0, -1), vh);
      else if (exact.has(domain)) unique = false;
      else {
        exact.set(domain, vh);
        unique = true;
      }
      if (!unique) errors.push({ path: dp, reason: `Only unique values for domains are permitted. Duplicate entry of domain ${domain} in route ${rc.name}` });
    });
  });
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    new CompiledRouteTable({
      name: rc.name,
      internalOnlyHeaders: Object.freeze(rc.internal_only_headers.map((h) => h.toLowerCase())),
      exact,
      suffixes,
      prefixes,
      default: dflt,
      ignorePort: rc.ignore_port_in_host_matching || ctx.stripPort === true,
      ignorePathParams: rc.ignore_path_parameters_in_path_matching,
      random,
    }),
  );
}
