// Parses envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication (providers, rules,
// requirement_map, bypass_cors_preflight, strip_failure_response) and its PerRouteConfig.
// failed_status_in_metadata is accepted with a warning; filter_state_rules is refused, naming the field.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import { readDataSource } from '../../../config/data-source.ts';
import { compileStringMatcher, type StringPredicate } from '../../../proxy/http/matchers.ts';
import { compileRouteMatch, type CompiledRouteMatch } from '../../../proxy/http/route-match.ts';
import type { ParseContext } from '../../registry.ts';
import type { DataSource__Output } from '../../../generated/envoy/config/core/v3/DataSource.ts';
import type { Duration__Output } from '../../../generated/google/protobuf/Duration.ts';
import type { StringMatcher__Output } from '../../../generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { RouteMatch__Output } from '../../../generated/envoy/config/route/v3/RouteMatch.ts';
import { parseJwks } from './jwks.ts';
import type { JwksSource, ProviderConfig, TokenLocation } from './provider.ts';

export const JWT_AUTHN_NAME = 'envoy.filters.http.jwt_authn';
export const JWT_AUTHN_TYPE = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

// The decoded messages (proto-loader object form; src/generated has no types for these protos).
interface JwtProvider__Output {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly subjects: StringMatcher__Output | null;
  readonly require_expiration: boolean;
  readonly max_lifetime: Duration__Output | null;
  readonly jwks_source_specifier?: 'remote_jwks' | 'local_jwks';
  readonly remote_jwks?: { readonly http_uri: { readonly uri: string; readonly cluster: string; readonly timeout: Duration__Output | null } | null; readonly cache_duration: Duration__Output | null; readonly async_fetch: object | null } | null;
  readonly local_jwks?: DataSource__Output | null;
  readonly forward: boolean;
  readonly from_headers: ReadonlyArray<{ readonly name: string; readonly value_prefix: string }>;
  readonly from_params: readonly string[];
  readonly from_cookies: readonly string[];
  readonly forward_payload_header: string;
  readonly pad_forward_payload_header: boolean;
  readonly payload_in_metadata: string;
  readonly header_in_metadata: string;
  readonly failed_status_in_metadata: string;
  readonly clock_skew_seconds: number;
  readonly claim_to_headers: ReadonlyArray<{ readonly header_name: string; readonly claim_name: string }>;
  readonly clear_route_cache: boolean;
}
export interface JwtRequirement__Output {
  readonly requires_type?: 'provider_name' | 'provider_and_audiences' | 'requires_any' | 'requires_all' | 'allow_missing_or_failed' | 'allow_missing';
  readonly provider_name?: string;
  readonly provider_and_audiences?: { readonly provider_name: string; readonly audiences: readonly string[] } | null;
  readonly requires_any?: { readonly requirements: readonly JwtRequirement__Output[] } | null;
  readonly requires_all?: { readonly requirements: readonly JwtRequirement__Output[] } | null;
}
interface JwtAuthentication__Output {
  readonly providers: Readonly<Record<string, JwtProvider__Output>>;
  readonly rules: ReadonlyArray<{ readonly match: RouteMatch__Output | null; readonly requirement_type?: 'requires' | 'requirement_name'; readonly requires?: JwtRequirement__Output | null; readonly requirement_name?: string }>;
  readonly filter_state_rules: object | null;
  readonly bypass_cors_preflight: boolean;
  readonly requirement_map: Readonly<Record<string, JwtRequirement__Output>>;
  readonly strip_failure_response: boolean;
}
interface PerRouteConfig__Output {
  readonly requirement_specifier?: 'disabled' | 'requirement_name';
  readonly disabled?: boolean;
  readonly requirement_name?: string;
}

/** A requirement as configured, with provider names (each worker binds them to its providers). */
export type RequirementSpec =
  | { readonly kind: 'provider'; readonly provider: string; readonly audiences: readonly string[] | undefined }
  | { readonly kind: 'any' | 'all'; readonly list: readonly RequirementSpec[] }
  | { readonly kind: 'allow_missing' | 'allow_missing_or_failed' }
  /** An empty JwtRequirement: the request goes on unverified. */
  | { readonly kind: 'none' };

const NONE: RequirementSpec = Object.freeze({ kind: 'none' });

export interface JwtAuthnConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  /** rules in order: the first whose match matches gives the request's requirement. */
  readonly rules: ReadonlyArray<{ readonly match: CompiledRouteMatch; readonly requirement: RequirementSpec }>;
  readonly requirementMap: ReadonlyMap<string, RequirementSpec>;
  readonly bypassCorsPreflight: boolean;
  readonly stripFailureResponse: boolean;
}

export type JwtAuthnPerRoute = { readonly disabled: true } | { readonly requirementName: string };

/** Envoy's defaults: `Authorization: Bearer <token>`, then the `access_token` query parameter. */
const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];
/** RemoteJwks.cache_duration's default. */
const DEFAULT_JWKS_CACHE_MS = 10 * 60_000; // 10 min
/** clock_skew_seconds' default. */
const DEFAULT_CLOCK_SKEW_S = 60;

function parseProvider(name: string, p: JwtProvider__Output, path: string, ctx: ParseContext, errors: ConfigError[], warnings: string[]): ProviderConfig | undefined {
  let jwks: JwksSource | undefined;
  if (p.jwks_source_specifier === 'local_jwks' && p.local_jwks) {
    const text = readDataSource(p.local_jwks, joinPath(path, 'local_jwks'));
    if (!text.ok) errors.push(...text.errors);
    else {
      const keys = parseJwks(text.value);
      if (typeof keys === 'string') errors.push({ path: joinPath(path, 'local_jwks'), reason: `invalid JWKS: ${keys}` });
      else jwks = { kind: 'local', keys };
    }
  } else if (p.jwks_source_specifier === 'remote_jwks' && p.remote_jwks?.http_uri) {
    const u = p.remote_jwks.http_uri;
    const upath = joinPath(path, 'remote_jwks.http_uri');
    let url: URL | undefined;
    try {
      url = new URL(u.uri);
    } catch {
      errors.push({ path: joinPath(upath, 'uri'), reason: `invalid URI '${u.uri}'` });
    }
    if (!u.cluster) errors.push({ path: joinPath(upath, 'cluster'), reason: 'value length must be at least 1 characters' });
    else if (ctx.clusterNames && !ctx.clusterNames.has(u.cluster)) errors.push({ path: joinPath(upath, 'cluster'), reason: `unknown cluster '${u.cluster}'` });
    if (url) jwks = { kind: 'remote', cluster: u.cluster, url, timeoutMs: durationMs(u.timeout, 1000), cacheMs: durationMs(p.remote_jwks.cache_duration, DEFAULT_JWKS_CACHE_MS), prefetch: p.remote_jwks.async_fetch !== null };
  } else {
    errors.push({ path, reason: 'one of remote_jwks or local_jwks is required' });
  }
  let subjects: StringPredicate | undefined;
  if (p.subjects) {
    const m = compileStringMatcher(p.subjects, joinPath(path, 'subjects'));
    if (m.ok) subjects = m.value;
    else errors.push(...m.errors);
  }
  if (p.failed_status_in_metadata) warnings.push(`${joinPath(path, 'failed_status_in_metadata')}: not supported; ignored`);
  const locations: TokenLocation[] = [
    ...p.from_headers.map((h): TokenLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.value_prefix })),
    ...p.from_params.map((name): TokenLocation => ({ kind: 'param', name })),
    ...p.from_cookies.map((name): TokenLocation => ({ kind: 'cookie', name })),
  ];
  if (!jwks) return undefined;
  return {
    name,
    issuer: p.issuer || undefined,
    audiences: [...p.audiences],
    subjects,
    requireExpiration: p.require_expiration,
    maxLifetimeS: p.max_lifetime ? durationMs(p.max_lifetime, 0) / 1000 : undefined,
    clockSkewS: p.clock_skew_seconds || DEFAULT_CLOCK_SKEW_S,
    jwks,
    forward: p.forward,
    locations: locations.length > 0 ? locations : DEFAULT_LOCATIONS,
    forwardPayloadHeader: p.forward_payload_header ? p.forward_payload_header.toLowerCase() : undefined,
    padForwardPayloadHeader: p.pad_forward_payload_header,
    claimToHeaders: p.claim_to_headers.map((c) => [c.header_name.toLowerCase(), c.claim_name] as const),
    clearRouteCache: p.clear_route_cache,
    payloadInMetadata: p.payload_in_metadata || undefined,
    headerInMetadata: p.header_in_metadata || undefined,
  };
}

function parseRequirement(r: JwtRequirement__Output | null | undefined, path: string, providers: ReadonlySet<string>, errors: ConfigError[]): RequirementSpec | undefined {
  const known = (name: string, p: string): boolean => {
    if (providers.has(name)) return true;
    errors.push({ path: p, reason: `Required provider ['${name}'] is not configured.` });
    return false;
  };
  const list = (l: readonly JwtRequirement__Output[], p: string): RequirementSpec[] =>
    l.map((x, i) => parseRequirement(x, joinPath(p, `requirements[${i}]`), providers, errors)).filter((x): x is RequirementSpec => x !== undefined);
  switch (r?.requires_type) {
    case 'provider_name':
      return known(r.provider_name ?? '', joinPath(path, 'provider_name')) ? { kind: 'provider', provider: r.provider_name!, audiences: undefined } : undefined;
    case 'provider_and_audiences': {
      const pa = r.provider_and_audiences!;
      return known(pa.provider_name, joinPath(path, 'provider_and_audiences.provider_name')) ? { kind: 'provider', provider: pa.provider_name, audiences: [...pa.audiences] } : undefined;
    }
    case 'requires_any':
    case 'requires_all': {
      const l = list(r[r.requires_type]?.requirements ?? [], joinPath(path, r.requires_type));
      return { kind: r.requires_type === 'requires_any' ? 'any' : 'all', list: l };
    }
    case 'allow_missing':
    case 'allow_missing_or_failed':
      return { kind: r.requires_type };
    default:
      // An empty JwtRequirement: no verification (Envoy's "no requirement").
      return undefined;
  }
}

export function parseJwtAuthn(message: unknown, ctx: ParseContext): Result<JwtAuthnConfig> {
  const m = message as JwtAuthentication__Output;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  if (m.filter_state_rules) errors.push({ path: joinPath(ctx.path, 'filter_state_rules'), reason: 'requirements chosen by filter state are not supported' });
  const providers = new Map<string, ProviderConfig>();
  for (const [name, p] of Object.entries(m.providers ?? {})) {
    const c = parseProvider(name, p, joinPath(ctx.path, `providers["${name}"]`), ctx, errors, warnings);
    if (c) providers.set(name, c);
  }
  const names = new Set(Object.keys(m.providers ?? {}));
  const requirementMap = new Map<string, RequirementSpec>();
  for (const [name, r] of Object.entries(m.requirement_map ?? {})) {
    const spec = parseRequirement(r, joinPath(ctx.path, `requirement_map["${name}"]`), names, errors);
    requirementMap.set(name, spec ?? NONE);
  }
  const rules: Array<JwtAuthnConfig['rules'][number]> = [];
  (m.rules ?? []).forEach((rule, i) => {
    const rpath = joinPath(ctx.path, `rules[${i}]`);
    const match = compileRouteMatch(rule.match, joinPath(rpath, 'match'));
    if (!match.ok) return void errors.push(...match.errors);
    let requirement: RequirementSpec | undefined;
    if (rule.requirement_type === 'requirement_name') {
      requirement = requirementMap.get(rule.requirement_name ?? '');
      if (!requirement) errors.push({ path: joinPath(rpath, 'requirement_name'), reason: `Wrong requirement_name: ${rule.requirement_name}. It should be one of [${[...requirementMap.keys()].join(',')}]` });
    } else {
      requirement = parseRequirement(rule.requires, joinPath(rpath, 'requires'), names, errors);
    }
    // A rule without a requirement matches and lets the request through unverified.
    rules.push({ match: match.value, requirement: requirement ?? NONE });
  });
  if (errors.length > 0) return { ok: false, errors };
  const value: JwtAuthnConfig = Object.freeze({ providers, rules, requirementMap, bypassCorsPreflight: m.bypass_cors_preflight, stripFailureResponse: m.strip_failure_response });
  return warnings.length > 0 ? { ok: true, value, warnings } : ok(value);
}

export function parseJwtAuthnPerRoute(message: object, path: string): Result<JwtAuthnPerRoute> {
  const m = message as PerRouteConfig__Output;
  if (m.requirement_specifier === 'disabled' && m.disabled) return ok({ disabled: true });
  if (m.requirement_specifier === 'requirement_name' && m.requirement_name) return ok({ requirementName: m.requirement_name });
  return { ok: false, errors: [{ path, reason: 'one of disabled or requirement_name is required' }] };
}
