// JSON Web Key Sets (RFC 7517) as the JWT library reads them: RSA, EC (P-256/384/521), OKP
// (Ed25519) and oct (HMAC) keys, each with its kid and alg when given; a PEM public key is a set of
// one. Keys that cannot be used are skipped; a set with none left is JwksNoValidKeys.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { JwtStatus } from './status.ts';

export interface Jwk {
  readonly kid: string | undefined;
  readonly alg: string | undefined;
  /** 'RSA' | 'EC' | 'OKP' | 'oct'. */
  readonly kty: string;
  /** EC and OKP: the curve (`P-256`, `Ed25519`...). */
  readonly crv: string | undefined;
  /** The public key; for oct keys, the shared secret instead. */
  readonly key: KeyObject | Buffer;
}

export type Jwks = readonly Jwk[];

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function parseKey(k: Record<string, unknown>): Jwk | undefined {
  const kty = str(k.kty);
  const base = { kid: str(k.kid), alg: str(k.alg), kty: kty ?? '', crv: str(k.crv) };
  try {
    if (kty === 'oct') {
      const secret = str(k.k);
      return secret === undefined ? undefined : { ...base, key: Buffer.from(secret, 'base64url') };
    }
    if (kty === 'RSA' || kty === 'EC' || kty === 'OKP') return { ...base, key: createPublicKey({ key: k as import('node:crypto').JsonWebKey, format: 'jwk' }) };
  } catch {
    return undefined;
  }
  return undefined;
}

/** A JWKS document (JSON, or a PEM public key), or why it cannot be used. */
export function parseJwks(text: string): Jwks | JwtStatus {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    try {
      const key = createPublicKey(trimmed);
      const kty = key.asymmetricKeyType === 'rsa' ? 'RSA' : key.asymmetricKeyType === 'ec' ? 'EC' : key.asymmetricKeyType === 'ed25519' ? 'OKP' : '';
      const crv = key.asymmetricKeyType === 'ec' ? str(key.export({ format: 'jwk' }).crv) : kty === 'OKP' ? 'Ed25519' : undefined;
      return [{ kid: undefined, alg: undefined, kty, crv, key }];
    } catch {
      return JwtStatus.JwksNoValidKeys;
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    return JwtStatus.JwksParseError;
  }
  if (typeof doc !== 'object' || doc === null || !('keys' in doc)) return JwtStatus.JwksNoKeys;
  const keys = (doc as { keys: unknown }).keys;
  if (!Array.isArray(keys)) return JwtStatus.JwksBadKeys;
  const out = keys.flatMap((k) => (typeof k === 'object' && k !== null ? [parseKey(k as Record<string, unknown>)].filter((x): x is Jwk => x !== undefined) : []));
  return out.length > 0 ? out : JwtStatus.JwksNoValidKeys;
}
