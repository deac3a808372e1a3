// The external authorization filter (Envoy's ext_authz): each request (and its body, with
// with_request_body) is described in a CheckRequest sent to envoy.service.auth.v3.Authorization
// /Check on the configured cluster, or in an HTTP request to the HTTP service (http-service.ts),
// while the request waits. OK: the service's header edits are
// applied to the request (and its response_headers_to_add to the response) and the request goes
// on. Denied: the service's status (403 by default), headers and body are the reply (flag UAEX).
// An error (no cluster, unreachable, timeout, bad answer): status_on_error (403), or the request
// goes on with failure_mode_allow. Stats: ok / denied / error / disabled / failure_mode_allowed
// under http.<prefix>.ext_authz. and the route's cluster.<name>.ext_authz. (with stat_prefix:
// ext_authz.<stat_prefix>.). ExtAuthzPerRoute disables the filter or adds context_extensions.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { routeCluster } from '../route-cluster.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { setDynamicMetadata } from '../../../proxy/http/dynamic-metadata.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import { logger } from '../../../proxy/log.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { EXT_AUTHZ_NAME, parseExtAuthzPerRoute, type BodySettings, type ExtAuthzConfig, type ExtAuthzPerRouteConfig } from './config.ts';
import { encodeCheckRequest, type CheckVerdict, type HeaderEdit } from '../../common/ext_authz/check-request.ts';
import { checkOverGrpc } from '../../common/ext_authz/grpc-check.ts';
import { checkOverHttp } from './http-service.ts';

const log = logger('filter');

/** typed_per_filter_config key (the well-known name, as the other filters use). */
const PER_ROUTE_KEY = EXT_AUTHZ_NAME;
const OUTCOMES = ['ok', 'denied', 'error', 'disabled', 'failure_mode_allowed'] as const;
type Outcome = (typeof OUTCOMES)[number];

/** The route's levels merged: the most specific decides `disabled` and body settings; context extensions add up. */
interface RouteSettings {
  readonly disabled: boolean;
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly body: BodySettings | undefined;
}

export class ExtAuthzFactory implements HttpFilterFactory<ExtAuthzConfig> {
  readonly config: ExtAuthzConfig;
  readonly rt: RuntimeContext;
  readonly #parsed = new PerRouteConfigs<ExtAuthzPerRouteConfig>(PER_ROUTE_KEY, 'ExtAuthzPerRoute', parseExtAuthzPerRoute);
  readonly #byRoute = new WeakMap<RouteEntry, RouteSettings>();
  readonly #counters = new Map<string, Counter>();
  readonly #defaults: RouteSettings;

  constructor(config: ExtAuthzConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
    this.#defaults = Object.freeze({ disabled: false, contextExtensions: Object.freeze({}), body: config.withRequestBody });
  }

  create(_config: ExtAuthzConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new ExtAuthzFilter(this, callbacks);
  }

  count(outcome: Outcome, statPrefix: string, cluster: string | undefined): void {
    this.#counter(`http.${statPrefix}.${this.config.statInfix}${outcome}`).inc();
    if (cluster !== undefined) this.#counter(`cluster.${cluster}.${this.config.statInfix}${outcome}`).inc();
  }

  #counter(name: string): Counter {
    let c = this.#counters.get(name);
    if (!c) this.#counters.set(name, (c = this.rt.stats.counter(name)));
    return c;
  }

  settings(route: RouteEntry | undefined): RouteSettings {
    if (!route) return this.#defaults;
    let s = this.#byRoute.get(route);
    if (s === undefined) {
      s = this.#merge(route);
      this.#byRoute.set(route, s);
    }
    return s;
  }

  #merge(route: RouteEntry): RouteSettings {
    const routeLevel = route.perFilterConfig.get(PER_ROUTE_KEY);
    if (routeLevel === undefined) return this.#defaults;
    if (routeLevel === FILTER_DISABLED) return { ...this.#defaults, disabled: true };
    const vhLevel = route.virtualHost.perFilterConfig.get(PER_ROUTE_KEY);
    const levels = [vhLevel === routeLevel ? undefined : vhLevel, routeLevel].map((m) => (m && typeof m === 'object' && m !== FILTER_DISABLED ? this.#parsed.get(m, route) : undefined));
    const contextExtensions: Record<string, string> = {};
    let disabled = false;
    let body = this.config.withRequestBody;
    for (const l of levels) {
      if (!l) continue;
      Object.assign(contextExtensions, l.contextExtensions);
      disabled = l.disabled;
      if (l.disableRequestBodyBuffering) body = undefined;
      else if (l.withRequestBody) body = l.withRequestBody;
    }
    return Object.freeze({ disabled, contextExtensions: Object.freeze(contextExtensions), body });
  }

}

function applyEdits(headers: HeaderMap, list: readonly HeaderEdit[]): void {
  for (const e of list) {
    const existing = headers.get(e.key);
    switch (e.action) {
      case 'append':
        if (existing === undefined) headers.add(e.key, e.value);
        else headers.set(e.key, `${headers.getAll(e.key).join(',')},${e.value}`);
        break;
      case 'add':
        headers.add(e.key, e.value);
        break;
      case 'add-if-absent':
        if (existing === undefined) headers.add(e.key, e.value);
        break;
      case 'overwrite':
        headers.set(e.key, e.value);
        break;
      case 'overwrite-if-exists':
        if (existing !== undefined) headers.set(e.key, e.value);
        break;
    }
  }
}

export class ExtAuthzFilter implements HttpFilter {
  readonly #f: ExtAuthzFactory;
  readonly #cb: HttpFilterCallbacks;
  #headers: HeaderMap | undefined;
  #settings: RouteSettings | undefined;
  #cluster: string | undefined;
  /** Buffering the body before the call (with_request_body). */
  #awaitingBody = false;
  /** The check in flight (gRPC call or HTTP request). */
  #call: { cancel(): void } | undefined;
  #done = false;
  /** This filter answered the request (denied, or an error without failure_mode_allow). */
  #replied = false;
  #responseHeaders: readonly HeaderEdit[] = [];

  constructor(factory: ExtAuthzFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    const c = this.#f.config;
    const route = this.#cb.route();
    const s = (this.#settings = this.#f.settings(route));
    if (s.disabled) return FilterHeadersStatus.Continue;
    this.#cluster = routeCluster(this.#cb, headers);
    if (c.filterEnabled && !this.#f.rt.runtime.featureEnabled(c.filterEnabled.runtimeKey, c.filterEnabled.dflt)) {
      const d = c.denyAtDisable;
      const deny = d !== undefined && this.#f.rt.runtime.getBoolean(d.runtimeKey, d.dflt);
      if (deny) {
        this.#cb.sendLocalReply(c.statusOnError, '', { details: 'ext_authz_disabled', flag: ResponseFlag.UnauthorizedExternalService });
        return FilterHeadersStatus.StopIteration;
      }
      this.#f.count('disabled', this.#cb.statPrefix, this.#cluster);
      return FilterHeadersStatus.Continue;
    }
    this.#headers = headers;
    if (s.body && !endStream) {
      this.#awaitingBody = true;
      return FilterHeadersStatus.StopIteration;
    }
    this.#check(undefined);
    if (!this.#done) return FilterHeadersStatus.StopAllIterationAndBuffer;
    return this.#replied ? FilterHeadersStatus.StopIteration : FilterHeadersStatus.Continue;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    if (!this.#awaitingBody) return this.#call && !this.#done ? FilterDataStatus.StopIterationAndBuffer : FilterDataStatus.Continue;
    const body = this.#settings!.body!;
    const before = this.#cb.bufferedRequestBody();
    const total = before && before.length > 0 ? Buffer.concat([before, data]) : data;
    if (endStream || total.length >= body.maxBytes) {
      if (total.length > body.maxBytes && !body.allowPartial) {
        this.#awaitingBody = false;
        this.#cb.sendLocalReply(413, 'Payload Too Large', { details: 'request_payload_too_large' });
        return FilterDataStatus.StopIterationNoBuffer;
      }
      this.#awaitingBody = false;
      if (total.length > body.maxBytes) this.#headers!.set('x-envoy-auth-partial-body', 'true');
      this.#check(total.subarray(0, body.maxBytes));
      // Failed at once: a reply was sent, or failure_mode_allow lets the body go on.
      if (this.#done) return this.#replied ? FilterDataStatus.StopIterationNoBuffer : FilterDataStatus.Continue;
    }
    return FilterDataStatus.StopIterationAndBuffer;
  }

  onRequestTrailers(): FilterTrailersStatus {
    if (this.#awaitingBody) {
      this.#awaitingBody = false;
      this.#check(this.#cb.bufferedRequestBody() ?? Buffer.alloc(0));
    }
    return (this.#call && !this.#done) || this.#replied ? FilterTrailersStatus.StopIteration : FilterTrailersStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (this.#responseHeaders.length > 0) applyEdits(headers, this.#responseHeaders);
    return FilterHeadersStatus.Continue;
  }

  onDestroy(): void {
    if (!this.#done) this.#call?.cancel();
    this.#done = true;
  }

  #check(body: Buffer | undefined): void {
    const c = this.#f.config;
    if (c.http) {
      this.#call = checkOverHttp(this.#f.rt.clusterManager, c.http, this.#headers!, body, (v) => this.#onVerdict(v === 'error' ? undefined : v));
      return;
    }
    let message: Buffer;
    try {
      message = encodeCheckRequest(c, { headers: this.#headers!, info: this.#cb.streamInfo, body, contextExtensions: this.#settings!.contextExtensions, packAsBytes: c.withRequestBody?.packAsBytes ?? false });
    } catch (e) {
      log.warn(`ext_authz: could not encode the CheckRequest: ${e instanceof Error ? e.message : String(e)}`);
      return this.#error(false);
    }
    this.#call = checkOverGrpc(this.#f.rt.clusterManager, c, message, (v) => this.#onVerdict(v));
  }

  /** The service's answer; undefined: the check failed. */
  #onVerdict(verdict: CheckVerdict | undefined): void {
    if (this.#done) return;
    if (!verdict) return this.#error(true);
    if (verdict.metadata) setDynamicMetadata(this.#cb.streamInfo, EXT_AUTHZ_NAME, verdict.metadata);
    this.#done = true;
    const cb = this.#cb;
    if (verdict.kind === 'denied') {
      this.#replied = true;
      this.#f.count('denied', cb.statPrefix, this.#cluster);
      const edits = verdict.headers;
      cb.sendLocalReply(verdict.status, verdict.body, { details: 'ext_authz_denied', flag: ResponseFlag.UnauthorizedExternalService, modifyHeaders: (h) => applyEdits(h, edits) });
      return;
    }
    this.#f.count('ok', cb.statPrefix, this.#cluster);
    const headers = this.#headers!;
    applyEdits(headers, verdict.headers);
    for (const k of verdict.remove) if (!k.startsWith(':') && k !== 'host') headers.remove(k);
    this.#responseHeaders = verdict.responseHeaders;
    if (this.#f.config.clearRouteCache && (verdict.headers.length > 0 || verdict.remove.length > 0)) cb.clearRouteCache();
    cb.continueDecoding();
  }

  /** The call failed (`async`: from its callback, so decoding must be resumed). */
  #error(async: boolean): void {
    this.#done = true;
    const c = this.#f.config;
    const cb = this.#cb;
    this.#f.count('error', cb.statPrefix, this.#cluster);
    if (c.failureModeAllow) {
      this.#f.count('failure_mode_allowed', cb.statPrefix, this.#cluster);
      if (c.failureModeAllowHeaderAdd) this.#headers!.set('x-envoy-auth-failure-mode-allowed', 'true');
      if (async) cb.continueDecoding();
      return;
    }
    this.#replied = true;
    cb.sendLocalReply(c.statusOnError, '', { details: 'ext_authz_error', flag: ResponseFlag.UnauthorizedExternalService });
  }
}
