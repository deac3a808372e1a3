// The JWT authentication filter (Envoy's jwt_authn): the request's requirement (the route's
// PerRouteConfig, else the first rule whose match matches) is checked against the tokens the
// providers find in it while the request waits. Passing: the tokens are taken out of their headers
// (unless forward), payload and claim headers are added, and the request goes on. Failing: 401 with
// the reason and `www-authenticate: Bearer realm="<url>"` (`, error="invalid_token"` unless the token
// was missing), 403 for audiences, or bodiless with strip_failure_response. Stats under
// http.<prefix>.jwt_authn.: allowed, denied, cors_preflight_bypassed, jwks_fetch_success/failed.
// payload_in_metadata / header_in_metadata put verified tokens in dynamic metadata for RBAC and logs.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { setDynamicMetadata } from '../../../proxy/http/dynamic-metadata.ts';
import { originalUri } from '../../../proxy/http/original-uri.ts';
import { RequestView } from '../../../proxy/http/route-match.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { JWT_AUTHN_NAME, parseJwtAuthnPerRoute, type JwtAuthnConfig, type JwtAuthnPerRoute, type RequirementSpec } from './config.ts';
import { Provider } from './provider.ts';
import { evaluate, type Requirement } from './requirement.ts';
import { JwtStatus } from './status.ts';

/** Envoy's MaximumUriLength for the realm. */
const MAX_URI = 256;
type Stat = 'allowed' | 'denied' | 'cors_preflight_bypassed' | 'jwks_fetch_success' | 'jwks_fetch_failed';

export class JwtAuthnFactory implements HttpFilterFactory<JwtAuthnConfig> {
  readonly config: JwtAuthnConfig;
  readonly providers = new Map<string, Provider>();
  readonly #perRoute = new PerRouteConfigs<JwtAuthnPerRoute>(JWT_AUTHN_NAME, 'jwt_authn PerRouteConfig', parseJwtAuthnPerRoute);
  readonly #requirements = new Map<RequirementSpec, Requirement>();
  readonly #counters = new Map<string, Counter>();
  readonly #rt: RuntimeContext;
  /** The HCM's stat_prefix, known from its first stream (one HCM per factory), for the key-set fetch counters. */
  #statPrefix: string | undefined;
  /** Fetches counted before the first stream (async_fetch). */
  readonly #early: Stat[] = [];

  constructor(config: JwtAuthnConfig, rt: RuntimeContext) {
    this.config = config;
    this.#rt = rt;
    const fetched = (stat: Stat): void => (this.#statPrefix === undefined ? void this.#early.push(stat) : this.count(this.#statPrefix, stat));
    for (const [name, p] of config.providers) this.providers.set(name, new Provider(p, rt.clusterManager, fetched));
    // async_fetch: remote key sets are fetched as the filter is set up, not by the first request.
    for (const p of this.providers.values()) if (p.config.jwks.kind === 'remote' && p.config.jwks.prefetch) setImmediate(() => void p.keys());
  }

  create(_config: JwtAuthnConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    if (this.#statPrefix === undefined) {
      this.#statPrefix = callbacks.statPrefix;
      for (const stat of this.#early.splice(0)) this.count(this.#statPrefix, stat);
    }
    return new JwtAuthnFilter(this, callbacks);
  }

  count(statPrefix: string, stat: Stat): void {
    const name = `http.${statPrefix}.jwt_authn.${stat}`;
    let c = this.#counters.get(name);
    if (!c) this.#counters.set(name, (c = this.#rt.stats.counter(name)));
    c.inc();
  }

  /** A configured requirement bound to this worker's providers (made once). */
  requirement(spec: RequirementSpec): Requirement {
    let r = this.#requirements.get(spec);
    if (!r) {
      r = this.#bind(spec);
      this.#requirements.set(spec, r);
    }
    return r;
  }

  #bind(spec: RequirementSpec): Requirement {
    switch (spec.kind) {
      case 'provider':
        return { kind: 'provider', provider: this.providers.get(spec.provider)!, audiences: spec.audiences };
      case 'any':
      case 'all':
        return { kind: spec.kind, list: spec.list.map((s) => this.#bind(s)) };
      case 'allow_missing':
      case 'allow_missing_or_failed':
        return { kind: spec.kind, providers: [...this.providers.values()] };
      case 'none':
        return { kind: 'none' };
    }
  }

  /** The route's PerRouteConfig: disabled, a requirement name, or undefined (the rules decide). */
  perRoute(callbacks: HttpFilterCallbacks): JwtAuthnPerRoute | undefined {
    const route = callbacks.route();
    const m = route?.perFilterConfig.get(JWT_AUTHN_NAME);
    if (!route || m === undefined) return undefined;
    if (m === FILTER_DISABLED) return { disabled: true };
    return typeof m === 'object' && m !== null ? (this.#perRoute.get(m, route) ?? undefined) : undefined;
  }
}

function isCorsPreflight(h: HeaderMap): boolean {
  return h.get(':method') === 'OPTIONS' && !!h.get('origin') && !!h.get('access-control-request-method');
}

export class JwtAuthnFilter implements HttpFilter {
  readonly #f: JwtAuthnFactory;
  readonly #cb: HttpFilterCallbacks;
  #calling = false;
  #destroyed = false;

  constructor(factory: JwtAuthnFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const f = this.#f;
    const prefix = this.#cb.statPrefix;
    if (f.config.bypassCorsPreflight && isCorsPreflight(headers)) {
      f.count(prefix, 'cors_preflight_bypassed');
      f.count(prefix, 'allowed');
      return FilterHeadersStatus.Continue;
    }
    let spec: RequirementSpec | undefined;
    const perRoute = f.perRoute(this.#cb);
    if (perRoute && 'requirementName' in perRoute) {
      spec = f.config.requirementMap.get(perRoute.requirementName);
      if (!spec) {
        const msg = `Wrong requirement_name: ${perRoute.requirementName}. It should be one of [${[...f.config.requirementMap.keys()].join(',')}]`;
        f.count(prefix, 'denied');
        this.#cb.sendLocalReply(403, f.config.stripFailureResponse ? '' : `Failed JWT authentication: ${msg}`, { details: details(msg) });
        return FilterHeadersStatus.StopIteration;
      }
    } else if (!perRoute) {
      const view = new RequestView(headers, false, Math.random);
      spec = f.config.rules.find((r) => r.match.matches(view))?.requirement;
    }
    if (!spec || spec.kind === 'none') {
      f.count(prefix, 'allowed');
      return FilterHeadersStatus.Continue;
    }
    this.#calling = true;
    const uri = originalUri(headers, MAX_URI);
    evaluate(f.requirement(spec), headers).then(
      (o) => this.#done(headers, o.status, o.passed, uri),
      () => this.#done(headers, JwtStatus.JwtVerificationFail, [], uri),
    );
    return FilterHeadersStatus.StopIteration;
  }

  #done(headers: HeaderMap, status: JwtStatus, passed: Awaited<ReturnType<typeof evaluate>>['passed'], uri: string): void {
    if (this.#destroyed) return;
    this.#calling = false;
    const f = this.#f;
    const prefix = this.#cb.statPrefix;
    if (status !== JwtStatus.Ok) {
      f.count(prefix, 'denied');
      const code = status === JwtStatus.JwtAudienceNotAllowed ? 403 : 401;
      if (f.config.stripFailureResponse) return this.#cb.sendLocalReply(code, '', { details: details(status) });
      const realm = `Bearer realm="${uri}"${status === JwtStatus.JwtMissed ? '' : ', error="invalid_token"'}`;
      return this.#cb.sendLocalReply(code, status, { details: details(status), headers: { 'www-authenticate': realm } });
    }
    let clear = false;
    for (const p of passed) {
      if (p.provider.apply(headers, p.found, p.jwt) && p.provider.config.clearRouteCache) clear = true;
      const { payloadInMetadata, headerInMetadata } = p.provider.config;
      if (payloadInMetadata) setDynamicMetadata(this.#cb.streamInfo, JWT_AUTHN_NAME, { [payloadInMetadata]: p.jwt.payload });
      if (headerInMetadata) setDynamicMetadata(this.#cb.streamInfo, JWT_AUTHN_NAME, { [headerInMetadata]: p.jwt.header });
    }
    if (clear) this.#cb.clearRouteCache();
    f.count(prefix, 'allowed');
    this.#cb.continueDecoding();
  }

  onRequestBody(): FilterDataStatus {
    return this.#calling ? FilterDataStatus.StopIterationAndBuffer : FilterDataStatus.Continue;
  }

  onRequestTrailers(): FilterTrailersStatus {
    return this.#calling ? FilterTrailersStatus.StopIteration : FilterTrailersStatus.Continue;
  }

  onDestroy(): void {
    this.#destroyed = true;
  }
}

/** Envoy's response code details: jwt_authn_access_denied{<reason, spaces as underscores>}. */
function details(reason: string): string {
  return `jwt_authn_access_denied{${reason.replace(/\s/g, '_')}}`;
}
