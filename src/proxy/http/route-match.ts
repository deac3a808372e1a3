// RouteMatch compiled once: the path specifier plus headers, query parameters, grpc and
// runtime_fraction conditions. Unsupported or invalid match criteria are Result errors.

import { fail, ok, joinPath, type Result } from '../../config/result.ts';
import type { HeaderMap } from './headers.ts';
import { compileHeaderMatchers, compileQueryParameterMatcher, compileRegexMatcher, parseQueryFirst, type QueryPredicate } from './matchers.ts';
import type { RouteMatch__Output } from '../../generated/envoy/config/route/v3/RouteMatch.ts';
import { isGrpcContentType } from './grpc-content-type.ts';

/** What one request offers the route matchers; computed once per request by the table. */
export class RequestView {
  readonly headers: HeaderMap;
  /** The full `:path` header ('' when absent). */
  readonly rawPath: string;
  /** `:path` without query and fragment (and path parameters when the table ignores them). */
  readonly path: string;
  readonly #random: () => number;
  #query: ReadonlyMap<string, string> | undefined;
  #draw: number | undefined;

  constructor(headers: HeaderMap, ignorePathParameters: boolean, random: () => number) {
    this.headers = headers;
    this.rawPath = headers.get(':path') ?? '';
    this.path = stripQuery(this.rawPath, ignorePathParameters);
    this.#random = random;
  }

  get query(): ReadonlyMap<string, string> {
    return (this.#query ??= parseQueryFirst(this.rawPath));
  }

  /** One draw per request in [0, 1e6), shared by every runtime_fraction check (as Envoy's stream random value is). */
  get draw(): number {
    return (this.#draw ??= Math.floor(this.#random() * 1_000_000));
  }
}

/** `/a/b?x#y` -> `/a/b`; with ignorePathParameters also `/a;p=1/b` -> `/a`, as Envoy truncates at the first `;`. */
export function stripQuery(rawPath: string, ignorePathParameters = false): string {
  let end = rawPath.length;
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */ || (ignorePathParameters && c === 59) /* ; */) {
      end = i;
      break;
    }
  }
  return end === rawPath.length ? rawPath : rawPath.slice(0, end);
}

export type PathKind = 'prefix' | 'path' | 'safe_regex' | 'path_separated_prefix' | 'connect_matcher';

export interface CompiledRouteMatch {
  readonly kind: PathKind;
  /** The configured prefix or path that prefix_rewrite replaces; undefined for regex (the whole path) and CONNECT. */
  readonly matched: string | undefined;
  matches(req: RequestView): boolean;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

function isGrpc(headers: HeaderMap): boolean {
  return isGrpcContentType(headers.get('content-type'));
}

type PathTest = (req: RequestView) => boolean;

function compilePath(m: RouteMatch__Output, path: string): Result<{ kind: PathKind; matched: string | undefined; test: PathTest }> {
  const caseSensitive = m.case_sensitive ? m.case_sensitive.value : true;
  switch (m.path_specifier) {
    case 'prefix': {
      const prefix = m.prefix ?? '';
      if (caseSensitive) return ok({ kind: 'prefix', matched: prefix, test: (r) => r.path.startsWith(prefix) });
      const lp = prefix.toLowerCase();
      const n = lp.length;
      return ok({ kind: 'prefix', matched: prefix, test: (r) => r.path.length >= n && r.path.slice(0, n).toLowerCase() === lp });
    }
    case 'path': {
      const want = m.path ?? '';
      if (caseSensitive) return ok({ kind: 'path', matched: want, test: (r) => r.path === want });
      const lw = want.toLowerCase();
      return ok({ kind: 'path', matched: want, test: (r) => r.path.length === lw.length && r.path.toLowerCase() === lw });
    }
    case 'safe_regex': {
      const re = compileRegexMatcher(m.safe_regex ?? null, joinPath(path, 'safe_regex'));
      if (!re.ok) return re;
      const rx = re.value;
      return ok({ kind: 'safe_regex', matched: undefined, test: (r) => rx.test(r.path) });
    }
    case 'path_separated_prefix': {
      const prefix = m.path_separated_prefix ?? '';
      if (!/^[^?#]+[^?#/]$/.test(prefix)) {
        return fail(joinPath(path, 'path_separated_prefix'), 'value does not match regex pattern "^[^?#]+[^?#/]$"');
      }
      const n = prefix.length;
      const lp = caseSensitive ? prefix : prefix.toLowerCase();
      return ok({
        kind: 'path_separated_prefix',
        matched: prefix,
        test: (r) => {
          const p = r.path;
          if (p.length < n) return false;
          const head = p.slice(0, n);
          if ((caseSensitive ? head : head.toLowerCase()) !== lp) return false;
          return p.length === n || p.charCodeAt(n) === 47; /* / */
        },
      });
    }
    case 'connect_matcher':
      return ok({ kind: 'connect_matcher', matched: undefined, test: (r) => r.headers.get(':method') === 'CONNECT' });
    case 'path_match_policy':
      return fail(joinPath(path, 'path_match_policy'), 'path_match_policy is not supported');
    default:
      return fail(joinPath(path, 'path_specifier'), 'value is required');
  }
}

export function compileRouteMatch(m: RouteMatch__Output | null, path: string): Result<CompiledRouteMatch> {
  if (!m) return fail(path, 'value is required');
  const p = compilePath(m, path);
  if (!p.ok) return p;
  if (m.tls_context && (m.tls_context.presented || m.tls_context.validated)) {
    return fail(joinPath(path, 'tls_context'), 'tls_context route matching is not supported');
  }
  if (m.dynamic_metadata.length > 0) return fail(joinPath(path, 'dynamic_metadata'), 'dynamic_metadata route matching is not supported');

  const conds: PathTest[] = [];
  if (m.runtime_fraction) {
    const dv = m.runtime_fraction.default_value;
    if (!dv) return fail(joinPath(path, 'runtime_fraction.default_value'), 'value is required');
    const denom = DENOMINATORS[dv.denominator] ?? 100;
    const num = dv.numerator;
    // Envoy: featureEnabled <=> random % denominator < numerator (>= denominator always matches).
    conds.push((r) => r.draw % denom < num);
  }
  const hm = compileHeaderMatchers(m.headers, joinPath(path, 'headers'));
  if (!hm.ok) return hm;
  if (hm.value) {
    const h = hm.value;
    conds.push((r) => h(r.headers));
  }
  if (m.query_parameters.length > 0) {
    const qps: QueryPredicate[] = [];
    for (let i = 0; i < m.query_parameters.length; i++) {
      const q = compileQueryParameterMatcher(m.query_parameters[i]!, joinPath(path, `query_parameters[${i}]`));
      if (!q.ok) return q;
      qps.push(q.value);
    }
    conds.push((r) => {
      const q = r.query;
      for (const t of qps) if (!t(q)) return false;
      return true;
    });
  }
  if (m.grpc) conds.push((r) => isGrpc(r.headers));

  const test = p.value.test;
  const matches =
    conds.length === 0
      ? test
      : (r: RequestView) => {
          // Path first: cheapest and most selective. The outcome is order-independent (one draw per request).
          if (!test(r)) return false;
          for (const c of conds) if (!c(r)) return false;
          return true;
        };
  return ok({ kind: p.value.kind, matched: p.value.matched, matches });
}
