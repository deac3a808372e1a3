// JwtRequirement trees evaluated for one request (Envoy's verifiers): a provider (its token must
// be present and valid), provider_and_audiences, requires_any (the first success wins; when all
// fail, the last failure other than a missing token or an unknown issuer, else "missing"),
// requires_all (the first failure), allow_missing (every provider's token, when there is one,
// must be valid) and allow_missing_or_failed (never fails). Verified tokens' header edits are
// collected and applied only when the whole requirement passes.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { findToken, type FoundToken, type Provider } from './provider.ts';
import type { Jwt } from './jwt.ts';
import { JwtStatus } from './status.ts';

export type Requirement =
  | { readonly kind: 'provider'; readonly provider: Provider; readonly audiences: readonly string[] | undefined }
  | { readonly kind: 'any' | 'all'; readonly list: readonly Requirement[] }
  | { readonly kind: 'allow_missing' | 'allow_missing_or_failed'; readonly providers: readonly Provider[] }
  | { readonly kind: 'none' };

/** A token that passed, with its provider, to apply once the requirement holds. */
export interface Passed {
  readonly provider: Provider;
  readonly found: FoundToken;
  readonly jwt: Jwt;
}

export interface Outcome {
  readonly status: JwtStatus;
  readonly passed: readonly Passed[];
}

const missingLike = (s: JwtStatus): boolean => s === JwtStatus.JwtMissed || s === JwtStatus.JwtUnknownIssuer;

async function one(provider: Provider, headers: HeaderMap, audiences?: readonly string[]): Promise<Outcome> {
  const found = findToken(headers, provider.config.locations);
  if (!found) return { status: JwtStatus.JwtMissed, passed: [] };
  const v = await provider.verify(found.token, audiences);
  return v.status === JwtStatus.Ok ? { status: JwtStatus.Ok, passed: [{ provider, found, jwt: v.jwt }] } : { status: v.status, passed: [] };
}

export async function evaluate(r: Requirement, headers: HeaderMap): Promise<Outcome> {
  switch (r.kind) {
    case 'none':
      return { status: JwtStatus.Ok, passed: [] };
    case 'provider':
      return one(r.provider, headers, r.audiences);
    case 'any': {
      let final: JwtStatus = JwtStatus.JwtMissed;
      for (const child of r.list) {
        const o = await evaluate(child, headers);
        if (o.status === JwtStatus.Ok) return o;
        if (!missingLike(o.status)) final = o.status;
      }
      return { status: final, passed: [] };
    }
    case 'all': {
      const passed: Passed[] = [];
      for (const child of r.list) {
        const o = await evaluate(child, headers);
        if (o.status !== JwtStatus.Ok) return { status: o.status, passed: [] };
        passed.push(...o.passed);
      }
      return { status: JwtStatus.Ok, passed };
    }
    case 'allow_missing':
    case 'allow_missing_or_failed': {
      const passed: Passed[] = [];
      let failure: JwtStatus | undefined;
      for (const p of r.providers) {
        const o = await one(p, headers);
        if (o.status === JwtStatus.Ok) passed.push(...o.passed);
        else if (o.status !== JwtStatus.JwtMissed) failure ??= o.status;
      }
      // A token some provider verified satisfies allow_missing even if another provider's check of it failed.
      const status = r.kind === 'allow_missing' && failure !== undefined && passed.length === 0 ? failure : JwtStatus.Ok;
      return { status, passed: status === JwtStatus.Ok ? passed : [] };
    }
  }
}
