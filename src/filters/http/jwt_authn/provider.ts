// One JwtProvider at run time: where its tokens are, how a token is checked (issuer, times with
// clock skew, audiences, subject, signature against the provider's keys), and what a verified
// token adds to the request. Remote key sets are fetched through their cluster and cached for
// cache_duration; one fetch at a time per provider and worker.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { cookieValue } from '../../../proxy/http/route-hash.ts';
import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import type { StringPredicate } from '../../../proxy/http/matchers.ts';
import { startHttpCall } from '../../../proxy/wasm/http-call.ts';
import { parseJwks, type Jwks } from './jwks.ts';
import { parseJwt, verifySignature, type Jwt } from './jwt.ts';
import { JwtStatus } from './status.ts';

export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export type JwksSource =
  | { readonly kind: 'local'; readonly keys: Jwks }
  | { readonly kind: 'remote'; readonly cluster: string; readonly url: URL; readonly timeoutMs: number; readonly cacheMs: number; readonly prefetch: boolean };

export interface ProviderConfig {
  readonly name: string;
  readonly issuer: string | undefined;
  readonly audiences: readonly string[];
  readonly subjects: StringPredicate | undefined;
  readonly requireExpiration: boolean;
  readonly maxLifetimeS: number | undefined;
  readonly clockSkewS: number;
  readonly jwks: JwksSource;
  readonly forward: boolean;
  readonly locations: readonly TokenLocation[];
  readonly forwardPayloadHeader: string | undefined;
  readonly padForwardPayloadHeader: boolean;
  readonly claimToHeaders: ReadonlyArray<readonly [header: string, claim: string]>;
  readonly clearRouteCache: boolean;
  /** payload_in_metadata / header_in_metadata: the key the verified payload / header goes under. */
  readonly payloadInMetadata: string | undefined;
  readonly headerInMetadata: string | undefined;
}

/** A token found in a request, and where (to take it out after verification unless `forward`). */
export interface FoundToken {
  readonly token: string;
  readonly location: TokenLocation;
}

export function findToken(headers: HeaderMap, locations: readonly TokenLocation[]): FoundToken | undefined {
  for (const location of locations) {
    let token: string | undefined;
    if (location.kind === 'header') {
      const v = headers.get(location.name);
      if (v !== undefined && v.startsWith(location.prefix)) token = v.slice(location.prefix.length).trim();
    } else if (location.kind === 'param') {
      const path = headers.get(':path') ?? '';
      const q = path.indexOf('?');
      if (q >= 0) token = new URLSearchParams(path.slice(q + 1)).get(location.name) ?? undefined;
    } else {
      token = cookieValue(headers, location.name);
    }
    if (token) return { token, location };
  }
  return undefined;
}

/** jwt_verify_lib's audience comparison: without `http://`/`https://` and a trailing `/`. */
function normalizeAudience(a: string): string {
  const s = a.replace(/^https?:\/\//, '');
  return s.endsWith('/') ? s.slice(0, -1) : s;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export type Verified = { readonly status: typeof JwtStatus.Ok; readonly jwt: Jwt } | { readonly status: Exclude<JwtStatus, typeof JwtStatus.Ok> };

export class Provider {
  readonly config: ProviderConfig;
  readonly #cm: ClusterManager;
  readonly #count: (name: 'jwks_fetch_success' | 'jwks_fetch_failed') => void;
  #cached: { keys: Jwks; until: number } | undefined;
  #inflight: Promise<Jwks | JwtStatus> | undefined;

  constructor(config: ProviderConfig, cm: ClusterManager, count: (name: 'jwks_fetch_success' | 'jwks_fetch_failed') => void) {
    this.config = config;
    this.#cm = cm;
    this.#count = count;
  }

  /** The provider's keys: local ones, or the remote set (fetched when missing or expired). */
  keys(): Jwks | Promise<Jwks | JwtStatus> {
    const src = this.config.jwks;
    if (src.kind === 'local') return src.keys;
    const c = this.#cached;
    if (c && c.until > Date.now()) return c.keys;
    return (this.#inflight ??= this.#fetch(src).finally(() => (this.#inflight = undefined)));
  }

  async #fetch(src: Extract<JwksSource, { kind: 'remote' }>): Promise<Jwks | JwtStatus> {
    const call = startHttpCall(this.#cm, {
      cluster: src.cluster,
      headers: [[':method', 'GET'], [':path', `${src.url.pathname}${src.url.search}`], [':authority', src.url.host], [':scheme', src.url.protocol.slice(0, -1)]],
      body: Buffer.alloc(0),
      trailers: [],
      timeoutMs: src.timeoutMs,
    });
    const r = call.response ? await call.response : undefined;
    const status = r?.headers.find(([k]) => k === ':status')?.[1];
    const keys = r && status === '200' ? parseJwks(r.body.toString('utf8')) : JwtStatus.JwksFetchFail;
    if (typeof keys === 'string') {
      this.#count('jwks_fetch_failed');
      return JwtStatus.JwksFetchFail;
    }
    this.#count('jwks_fetch_success');
    this.#cached = { keys, until: Date.now() + src.cacheMs };
    return keys;
  }

  /** Checks `token` as Envoy's authenticator does; `audiences` overrides the provider's (provider_and_audiences). */
  async verify(token: string, audiences?: readonly string[]): Promise<Verified> {
    const jwt = parseJwt(token);
    if (typeof jwt === 'string') return { status: jwt as Exclude<JwtStatus, 'OK'> };
    const c = this.config;
    const p = jwt.payload;
    if (c.issuer !== undefined && p.iss !== c.issuer) return { status: JwtStatus.JwtUnknownIssuer };
    const now = Date.now() / 1000;
    const exp = num(p.exp);
    const nbf = num(p.nbf);
    if (exp === undefined ? c.requireExpiration : now > exp + c.clockSkewS) return { status: JwtStatus.JwtExpired };
    if (nbf !== undefined && now + c.clockSkewS < nbf) return { status: JwtStatus.JwtNotYetValid };
    if (c.maxLifetimeS !== undefined && (exp === undefined || exp - (num(p.iat) ?? nbf ?? now) > c.maxLifetimeS)) return { status: JwtStatus.JwtExpired };
    const allowed = audiences ?? c.audiences;
    if (allowed.length > 0) {
      const aud = typeof p.aud === 'string' ? [p.aud] : Array.isArray(p.aud) ? p.aud.filter((a): a is string => typeof a === 'string') : [];
      const want = new Set(allowed.map(normalizeAudience));
      if (!aud.some((a) => want.has(normalizeAudience(a)))) return { status: JwtStatus.JwtAudienceNotAllowed };
    }
    if (c.subjects && !c.subjects(typeof p.sub === 'string' ? p.sub : '')) return { status: JwtStatus.JwtVerificationFail };
    const keys = await this.keys();
    if (typeof keys === 'string') return { status: keys as Exclude<JwtStatus, 'OK'> };
    const s = verifySignature(jwt, keys);
    return s === JwtStatus.Ok ? { status: s, jwt } : { status: s };
  }

  /** What a verified token adds to the request: the token taken out (unless forward), the payload header, claims. */
  apply(headers: HeaderMap, found: FoundToken, jwt: Jwt): boolean {
    const c = this.config;
    if (!c.forward && found.location.kind === 'header') headers.remove(found.location.name);
    let added = false;
    if (c.forwardPayloadHeader) {
      const p = jwt.payloadB64;
      const b64 = c.padForwardPayloadHeader ? p.padEnd(p.length + ((4 - (p.length % 4)) % 4), '=') : p;
      headers.set(c.forwardPayloadHeader, b64);
      added = true;
    }
    for (const [header, claim] of c.claimToHeaders) {
      const v = claim.split('.').reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined), jwt.payload);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
        headers.set(header, String(v));
        added = true;
      }
    }
    return added;
  }
}
