// Route actions compiled once: forward to a cluster (with rewrites, timeouts, hashing, weighted
// picks), redirect, or answer directly. Unknown clusters, bad regexes or retry/hedge policies and oversize
// bodies are Result errors.

import { fail, ok, joinPath, type ConfigError, type Result } from '../../config/result.ts';
import { durationMs } from '../../config/values.ts';
import { Limits } from '../limits.ts';
import type { HeaderMap } from './headers.ts';
import type { ClusterMutations, ClusterRouteAction, DirectResponseAction, RedirectAction } from './route-types.ts';
import type { StreamInfo } from './stream-info.ts';
import { compileRegexSubstitution, type RegexSubstitution } from './matchers.ts';
import { compileHashPolicy } from './route-hash.ts';
import { compileMirrorPolicies } from './route-mirror.ts';
import { retryHedgeErrors } from './route-retry-policy.ts';
import { compileHeaderParser, chainHeaderMutators } from './header-mutation.ts';
import { stripQuery, type CompiledRouteMatch } from './route-match.ts';
import type { RouteAction__Output } from '../../generated/envoy/config/route/v3/RouteAction.ts';
import type { RedirectAction__Output } from '../../generated/envoy/config/route/v3/RedirectAction.ts';
import type { DirectResponseAction__Output } from '../../generated/envoy/config/route/v3/DirectResponseAction.ts';
import { readDataSource } from '../../config/data-source.ts';

export interface ActionContext {
  /** Cluster names to check `cluster`/`weighted_clusters` against; undefined skips the check. */
  readonly validateAgainst: ReadonlySet<string> | undefined;
  readonly random: () => number;
  /** max_direct_response_body_size_bytes (default 4096). */
  readonly maxDirectResponseBodyBytes: number;
}

const NOT_FOUND_STATUS: Record<string, number> = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 };
const REDIRECT_STATUS: Record<string, number> = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 };

type PathRewrite = (rawPath: string) => string;

/**
 * Envoy's currentUrlPathAfterRewrite: prefix_rewrite swaps the matched prefix (the configured
 * prefix/path, or the whole query-less path for regex routes) keeping the rest and the query;
 * regex_rewrite substitutes in the query-less path and keeps the query.
 */
function compilePathRewrite(
  match: CompiledRouteMatch,
  prefixRewrite: string,
  regex: RegexSubstitution | undefined,
): PathRewrite | undefined {
  if (prefixRewrite !== '') {
    if (match.kind === 'connect_matcher') return undefined;
    const fixed = match.matched;
    return (raw) => prefixRewrite + raw.slice(fixed !== undefined ? fixed.length : stripQuery(raw).length);
  }
  if (regex) {
    return (raw) => {
      const just = stripQuery(raw);
      return regex.replaceAll(just) + raw.slice(just.length);
    };
  }
  return undefined;
}

function compileRegexRewrite(m: RouteAction__Output['regex_rewrite'], path: string): Result<RegexSubstitution | undefined> {
  if (!m) return ok(undefined);
  return compileRegexSubstitution(m, path);
}

/** Sets `:authority`, appending the old one to x-forwarded-host when asked and it changed (Envoy's Http::Utility::updateAuthority). */
export function setAuthority(headers: HeaderMap, host: string, appendXfh: boolean): void {
  if (appendXfh) {
    const old = headers.get(':authority');
    if (old && old !== host) {
      const xfh = headers.get('x-forwarded-host');
      headers.set('x-forwarded-host', xfh ? `${xfh},${old}` : old);
    }
  }
  headers.set(':authority', host);
}

interface WeightedEntry {
  readonly name: string;
  readonly header: string;
  readonly weight: number;
}

export function compileClusterAction(
  ra: RouteAction__Output,
  match: CompiledRouteMatch,
  path: string,
  ctx: ActionContext,
): Result<ClusterRouteAction> {
  const errors: ConfigError[] = [];
  const known = ctx.validateAgainst;
  let pickCluster: (headers: HeaderMap, info?: StreamInfo) => string | undefined;
  const perCluster = new Map<string, ClusterMutations>();

  switch (ra.cluster_specifier) {
    case 'cluster': {
      const name = ra.cluster ?? '';
      if (!name) return fail(joinPath(path, 'cluster'), 'value length must be at least 1 characters');
      if (known && !known.has(name)) return fail(joinPath(path, 'cluster'), `unknown cluster "${name}"`);
      pickCluster = () => name;
      break;
    }
    case 'cluster_header': {
      const h = (ra.cluster_header ?? '').toLowerCase();
      if (!h) return fail(joinPath(path, 'cluster_header'), 'value length must be at least 1 characters');
      pickCluster = (headers) => headers.get(h) || undefined;
      break;
    }
    case 'weighted_clusters': {
      const wc = ra.weighted_clusters;
      const wp = joinPath(path, 'weighted_clusters');
      if (!wc || wc.clusters.length === 0) return fail(joinPath(wp, 'clusters'), 'value must contain at least 1 item(s)');
      const entries: WeightedEntry[] = [];
      let total = 0;
      wc.clusters.forEach((c, i) => {
        const cp = joinPath(wp, `clusters[${i}]`);
        if (!c.name && !c.cluster_header) {
          errors.push({ path: cp, reason: 'At least one of name or cluster_header need to be specified' });
          return;
        }
        if (c.name && known && !known.has(c.name)) errors.push({ path: joinPath(cp, 'name'), reason: `unknown cluster "${c.name}"` });
        const weight = c.weight ? c.weight.value : 0;
        total += weight;
        entries.push({ name: c.name, header: c.cluster_header.toLowerCase(), weight });
        const req = compileHeaderParser(c.request_headers_to_add, c.request_headers_to_remove, cp, 'request');
        const res = compileHeaderParser(c.response_headers_to_add, c.response_headers_to_remove, cp, 'response');
        if (!req.ok) errors.push(...req.errors);
        if (!res.ok) errors.push(...res.errors);
        if (req.ok && res.ok && c.name && !perCluster.has(c.name)) {
          let request = chainHeaderMutators([req.value]);
          const hostLiteral = c.host_rewrite_literal;
          if (hostLiteral) {
            const inner = request;
            request = {
              apply(h, info) {
                inner.apply(h, info);
                h.set(':authority', hostLiteral);
              },
            };
          }
          if (!req.value.empty || !res.value.empty || hostLiteral) perCluster.set(c.name, { request, response: chainHeaderMutators([res.value]) });
        }
      });
      if (errors.length > 0) return { ok: false, errors };
      if (total === 0) return fail(joinPath(wp, 'clusters'), 'Sum of weights in the weighted_cluster must be greater than 0.');
      if (total > 0xffffffff) return fail(joinPath(wp, 'clusters'), 'The sum of weights of all weighted clusters of route exceeds 4294967295');
      const randomHeader = wc.random_value_specifier === 'header_name' ? (wc.header_name ?? '').toLowerCase() : '';
      const random = ctx.random;
      // Envoy picks a weighted cluster once per request (with the route): every filter that asks
      // (the router, fault's upstream_cluster, rate limit's destination_cluster) gets that pick.
      pickCluster = (headers, info) => {
        const prev = info?.weightedPick;
        if (prev !== undefined && prev.from === entries) return prev.cluster;
        let r: number | undefined;
        if (randomHeader) {
          const v = headers.get(randomHeader);
          if (v !== undefined && /^\d+$/.test(v)) r = Number(BigInt(v) % BigInt(total));
        }
        r ??= Math.floor(random() * total);
        let sum = 0;
        let cluster: string | undefined;
        for (const e of entries) {
          sum += e.weight;
          if (r < sum) {
            cluster = e.header ? headers.get(e.header) || undefined : e.name;
            break;
          }
        }
        if (info) info.weightedPick = { from: entries, cluster };
        return cluster;
      };
      break;
    }
    case 'cluster_specifier_plugin':
    case 'inline_cluster_specifier_plugin':
      return fail(joinPath(path, ra.cluster_specifier), 'cluster specifier plugins are not supported');
    default:
      return fail(joinPath(path, 'cluster_specifier'), 'value is required');
  }

  // Path rewrites.
  const specified = [ra.prefix_rewrite !== '', ra.regex_rewrite !== null, ra.path_rewrite_policy !== null].filter(Boolean).length;
  if (specified > 1) return fail(path, 'Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy');
  if (ra.path_rewrite_policy) return fail(joinPath(path, 'path_rewrite_policy'), 'path_rewrite_policy is not supported');
  const rr = compileRegexRewrite(ra.regex_rewrite, joinPath(path, 'regex_rewrite'));
  if (!rr.ok) return rr;
  const pathRewrite = compilePathRewrite(match, ra.prefix_rewrite, rr.value);

  // Host rewrites.
  const xfh = ra.append_x_forwarded_host;
  let hostRewrite: ((headers: HeaderMap) => void) | undefined;
  switch (ra.host_rewrite_specifier) {
    case 'host_rewrite_literal': {
      const host = ra.host_rewrite_literal ?? '';
      if (host) hostRewrite = (h) => setAuthority(h, host, xfh);
      break;
    }
    case 'host_rewrite_header': {
      const name = (ra.host_rewrite_header ?? '').toLowerCase();
      if (name) {
        hostRewrite = (h) => {
          const v = h.get(name);
          if (v) setAuthority(h, v, xfh);
        };
      }
      break;
    }
    case 'host_rewrite_path_regex': {
      const r = compileRegexSubstitution(ra.host_rewrite_path_regex ?? null, joinPath(path, 'host_rewrite_path_regex'));
      if (!r.ok) return r;
      const sub = r.value;
      hostRewrite = (h) => setAuthority(h, sub.replaceAll(stripQuery(h.get(':path') ?? '')), xfh);
      break;
    }
    default:
      break;
  }

  const hp = compileHashPolicy(ra.hash_policy, joinPath(path, 'hash_policy'));
  if (!hp.ok) return hp;
  const hash = hp.value;
  const mirrors = compileMirrorPolicies(ra.request_mirror_policies, path, known);
  if (!mirrors.ok) return mirrors;
  // Envoy rejects a bad retry_policy / hedge_policy at load; the router would otherwise silently not retry.
  const policyErrors = retryHedgeErrors(ra.retry_policy, ra.hedge_policy, path);
  if (policyErrors.length > 0) return { ok: false, errors: policyErrors };

  const action: ClusterRouteAction = {
    kind: 'route',
    pickCluster,
    clusterNotFoundStatus: NOT_FOUND_STATUS[ra.cluster_not_found_response_code] ?? 503,
    rewrite(headers: HeaderMap, opts?: { insertOriginalPath?: boolean }): void {
      // Host first: host_rewrite_path_regex reads the path before it is rewritten (as Envoy does).
      if (hostRewrite) hostRewrite(headers);
      if (pathRewrite) {
        const raw = headers.get(':path');
        if (raw === undefined) return;
        if (opts?.insertOriginalPath !== false) headers.set('x-envoy-original-path', raw);
        headers.set(':path', pathRewrite(raw));
      }
    },
    autoHostRewrite: ra.host_rewrite_specifier === 'auto_host_rewrite' && ra.auto_host_rewrite?.value === true,
    appendXForwardedHost: xfh,
    timeoutMs: durationMs(ra.timeout, Limits.routeTimeoutMs),
    idleTimeoutMs: durationMs(ra.idle_timeout),
    streamDuration: ra.max_stream_duration
      ? {
          maxMs: durationMs(ra.max_stream_duration.max_stream_duration),
          grpcHeaderMaxMs: durationMs(ra.max_stream_duration.grpc_timeout_header_max),
          grpcHeaderOffsetMs: durationMs(ra.max_stream_duration.grpc_timeout_header_offset, 0),
        }
      : undefined,
    hash: hash ?? (() => undefined),
    retryPolicy: ra.retry_policy ?? undefined,
    raw: ra,
    clusterHeaders: perCluster.size === 0 ? undefined : (cluster: string) => perCluster.get(cluster),
    mirrorPolicies: mirrors.value,
  };
  return ok(action);
}

// ---- redirect ----

export function compileRedirect(r: RedirectAction__Output, match: CompiledRouteMatch, path: string): Result<RedirectAction> {
  const status = REDIRECT_STATUS[r.response_code];
  if (status === undefined) return fail(joinPath(path, 'response_code'), `unknown response code ${r.response_code}`);
  const scheme = r.scheme_rewrite_specifier === 'scheme_redirect' ? (r.scheme_redirect ?? '').toLowerCase() : r.https_redirect ? 'https' : '';
  const port = r.port_redirect ? `:${r.port_redirect}` : '';
  const host = r.host_redirect;
  let pathRedirect: string | undefined;
  let pathRewrite: PathRewrite | undefined;
  switch (r.path_rewrite_specifier) {
    case 'path_redirect':
      pathRedirect = r.path_redirect ?? '';
      break;
    case 'prefix_rewrite':
      if (r.prefix_rewrite) pathRewrite = compilePathRewrite(match, r.prefix_rewrite, undefined);
      break;
    case 'regex_rewrite': {
      const rr = compileRegexSubstitution(r.regex_rewrite ?? null, joinPath(path, 'regex_rewrite'));
      if (!rr.ok) return rr;
      pathRewrite = compilePathRewrite(match, '', rr.value);
      break;
    }
    default:
      break;
  }
  const redirectHasQuery = pathRedirect !== undefined && pathRedirect.includes('?');
  const stripQ = r.strip_query;

  // Envoy's Http::Utility::newUri.
  function location(headers: HeaderMap): string {
    const forwardedProto = headers.get('x-forwarded-proto') ?? headers.get(':scheme') ?? 'http';
    const finalScheme = scheme || forwardedProto;
    let finalHost = host;
    if (!finalHost) finalHost = requestHostForRedirect(headers.get(':authority') ?? headers.get('host') ?? '', forwardedProto, finalScheme, port);
    const current = headers.get(':path') ?? '/';
    let finalPath: string;
    if (pathRedirect !== undefined && pathRedirect !== '') {
      if (redirectHasQuery) finalPath = pathRedirect;
      else {
        const q = current.indexOf('?');
        finalPath = q < 0 ? pathRedirect : pathRedirect + current.slice(q);
      }
    } else finalPath = pathRewrite ? pathRewrite(current) : current;
    if (!finalPath.startsWith('/')) finalPath = `/${finalPath}`;
    if (!redirectHasQuery && stripQ) {
      const q = finalPath.indexOf('?');
      if (q >= 0) finalPath = finalPath.slice(0, q);
    }
    return `${finalScheme}://${finalHost}${port}${finalPath}`;
  }
  return ok(Object.freeze({ kind: 'redirect' as const, status, location }));
}

/** Envoy's processRequestHost: drop the request's port when redirecting to a new port or when it is the old scheme's default. */
function requestHostForRedirect(host: string, requestProto: string, newScheme: string, newPort: string): string {
  if (!host) return host;
  let end: number;
  if (host[0] === '[') {
    end = host.lastIndexOf(']:');
    if (end >= 0) end += 1;
  } else end = host.lastIndexOf(':');
  if (end < 0) return host;
  const reqPort = host.slice(end);
  let remove = newPort !== '';
  if (newScheme !== requestProto) {
    remove ||= requestProto === 'https' && reqPort === ':443';
    remove ||= requestProto === 'http' && reqPort === ':80';
  }
  return remove ? host.slice(0, end) : host;
}

// ---- direct response ----

/** Reads a DataSource at config time (inline_string, inline_bytes, filename, environment_variable). */
export function compileDirectResponse(d: DirectResponseAction__Output, path: string, maxBody: number): Result<DirectResponseAction> {
  if (d.status < 200 || d.status >= 600) return fail(joinPath(path, 'status'), 'value must be inside range [200, 600)');
  let body: string | undefined;
  if (d.body) {
    const b = readDataSource(d.body, joinPath(path, 'body'));
    if (!b.ok) return b;
    const size = Buffer.byteLength(b.value);
    if (size > maxBody) return fail(joinPath(path, 'body'), `response body size is ${size} bytes; maximum is ${maxBody}`);
    body = b.value;
  }
  return ok(Object.freeze({ kind: 'direct_response' as const, status: d.status, body }));
}
