// A JWT (RFC 7519, compact JWS) parsed and its signature checked against a key set, with node:crypto:
// RS256/384/512, PS256/384/512, ES256/384/512, EdDSA (Ed25519) and HS256/384/512. A key is a
// candidate when its kid (if the token has one) and alg (if the key has one) match and its type
// and curve suit the algorithm.

import { createHmac, constants, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { Jwk, Jwks } from './jwks.ts';
import { JwtStatus } from './status.ts';

export interface Jwt {
  readonly header: Readonly<Record<string, unknown>>;
  readonly alg: string;
  readonly kid: string | undefined;
  readonly payload: Readonly<Record<string, unknown>>;
  /** The payload as it came (base64url), for forward_payload_header. */
  readonly payloadB64: string;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string): Record<string, unknown> | undefined {
  if (!B64URL.test(part)) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
const EC_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
const ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512']);

export function parseJwt(token: string): Jwt | JwtStatus {
  const parts = token.split('.');
  if (parts.length !== 3) return JwtStatus.JwtBadFormat;
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  if (!header) return JwtStatus.JwtHeaderParseError;
  if (typeof header.alg !== 'string') return JwtStatus.JwtHeaderBadAlg;
  if (!ALGS.has(header.alg)) return JwtStatus.JwtHeaderNotImplementedAlg;
  if (header.kid !== undefined && typeof header.kid !== 'string') return JwtStatus.JwtHeaderBadKid;
  const payload = decodeJson(p);
  if (!payload) return JwtStatus.JwtPayloadParseError;
  if (!B64URL.test(s)) return JwtStatus.JwtSignatureParseError;
  return { header, alg: header.alg, kid: header.kid, payload, payloadB64: p, signingInput: Buffer.from(`${h}.${p}`, 'latin1'), signature: Buffer.from(s, 'base64url') };
}

function suits(alg: string, k: Jwk): boolean {
  if (k.alg !== undefined && k.alg !== alg) return false;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return k.kty === 'RSA';
  if (alg.startsWith('ES')) return k.kty === 'EC' && k.crv === EC_CURVE[alg];
  if (alg === 'EdDSA') return k.kty === 'OKP' && k.crv === 'Ed25519';
  return k.kty === 'oct';
}

function checkOne(jwt: Jwt, k: Jwk): boolean {
  const { alg, signingInput: data, signature: sig } = jwt;
  const hash = HASH[alg.slice(2)];
  try {
    if (alg.startsWith('HS')) {
      const mac = createHmac(hash!, k.key as Buffer).update(data).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    const key = k.key as KeyObject;
    if (alg === 'EdDSA') return verify(null, data, key, sig);
    if (alg.startsWith('PS')) return verify(hash!, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (alg.startsWith('ES')) return verify(hash!, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    return verify(hash!, data, key, sig);
  } catch {
    return false;
  }
}

/** Ok when a candidate key verifies the signature. */
export function verifySignature(jwt: Jwt, keys: Jwks): JwtStatus {
  const candidates = keys.filter((k) => (jwt.kid === undefined || k.kid === undefined || k.kid === jwt.kid) && suits(jwt.alg, k));
  const withKid = jwt.kid === undefined ? candidates : candidates.filter((k) => k.kid === jwt.kid);
  // A token naming a kid is checked with that key when the set has it, else with kid-less keys.
  const pool = withKid.length > 0 ? withKid : candidates;
  if (pool.length === 0) return JwtStatus.JwksKidAlgMismatch;
  return pool.some((k) => checkOne(jwt, k)) ? JwtStatus.Ok : JwtStatus.JwtVerificationFail;
}
