// Envoy's certificate validation after a handshake: chain trust (OpenSSL's verdict from the
// SecureContext's CA store and CRLs, or the SPIFFE trust bundle chosen by the peer's trust
// domain), SAN matchers, auto_san_validation and SPKI/hash pins. Each failure names the `ssl.*`
// stat Envoy bumps for it; the caller bumps it and closes the connection.

import { createHash, type X509Certificate } from 'node:crypto';
import { compileRe2 } from '../http/matchers.ts';
import { certificatesOf, sha256Hex } from './pem.ts';
import { parseSubjectAltNames, type SubjectAltNames } from './connection-info.ts';
import type { SanMatcher, StringMatch, TlsFailureStat, ValidationSecret } from './types.ts';

export type Verdict = { readonly ok: true; readonly validated: boolean } | { readonly ok: false; readonly stat: TlsFailureStat; readonly reason: string };

/** OpenSSL verify errors allow_expired_certificate forgives (Envoy ignores both). */
const EXPIRY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** RFC 6125 DNS match as Envoy's dnsNameMatch: `*.example.com` covers exactly one left-most label. */
export function dnsNameMatch(wanted: string, san: string): boolean {
  const w = wanted.toLowerCase();
  const s = san.toLowerCase();
  if (w === s) return true;
  if (!s.startsWith('*.')) return false;
  const dot = w.indexOf('.');
  return dot > 0 && w.slice(dot) === s.slice(1);
}

const regexCache = new Map<string, RegExp | null>();
function matchString(m: StringMatch, v: string): boolean {
  const value = m.ignoreCase ? v.toLowerCase() : v;
  const want = m.ignoreCase ? m.value.toLowerCase() : m.value;
  switch (m.kind) {
    case 'exact':
      return value === want;
    case 'prefix':
      return value.startsWith(want);
    case 'suffix':
      return value.endsWith(want);
    case 'contains':
      return value.includes(want);
    case 'regex': {
      let re = regexCache.get(m.value);
      if (re === undefined) {
        const c = compileRe2(m.value, 'full');
        re = 'error' in c ? null : c;
        regexCache.set(m.value, re);
      }
      return re !== null && re.test(v);
    }
  }
}

function sansOf(sans: SubjectAltNames, type: SanMatcher['type']): readonly string[] {
  switch (type) {
    case 'DNS':
      return sans.dns;
    case 'URI':
      return sans.uri;
    case 'IP_ADDRESS':
      return sans.ip;
    case 'EMAIL':
      return sans.email;
    default:
      return [];
  }
}

/** Any matcher matching any SAN of its kind (an exact DNS matcher honours wildcard SANs, as Envoy does). */
export function matchSans(matchers: readonly SanMatcher[], sans: SubjectAltNames): boolean {
  for (const m of matchers) {
    for (const san of sansOf(sans, m.type)) {
      if (m.type === 'DNS' && m.match.kind === 'exact' && !m.match.ignoreCase ? dnsNameMatch(m.match.value, san) : matchString(m.match, san)) return true;
    }
  }
  return false;
}

/** auto_san_validation: the name must be one of the certificate's DNS (wildcards honoured), URI or IP SANs. */
export function verifySanList(name: string, sans: SubjectAltNames): boolean {
  return sans.dns.some((d) => dnsNameMatch(name, d)) || sans.uri.includes(name) || sans.ip.includes(name);
}

function spkiHash(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

function timeValid(c: X509Certificate, now: number, allowExpired: boolean): boolean {
  return allowExpired || (c.validFromDate.getTime() <= now && now <= c.validToDate.getTime());
}

/**
 * Walks `chain` (leaf first) to a certificate issued by one of `anchors`: each link must be issued
 * and signed by the next, every certificate in its validity period (unless allowExpired).
 */
export function chainTrusted(chain: readonly X509Certificate[], anchors: readonly X509Certificate[], allowExpired: boolean, now = Date.now()): boolean {
  const anchorPrints = new Set(anchors.map((a) => a.fingerprint256));
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    if (!timeValid(c, now, allowExpired)) return false;
    if (anchorPrints.has(c.fingerprint256)) return true;
    for (const a of anchors) {
      if (c.checkIssued(a) && c.verify(a.publicKey) && timeValid(a, now, allowExpired)) return true;
    }
    const next = chain[i + 1];
    if (!next || !next.ca || !c.checkIssued(next) || !c.verify(next.publicKey)) return false;
  }
  return false;
}

/** A ValidationSecret with its PEM parsed once (anchors for the JS chain walk, SPIFFE bundles). */
export class CertValidator {
  readonly secret: ValidationSecret;
  readonly #anchors: X509Certificate[];
  readonly #spiffe: Map<string, X509Certificate[]> | undefined;

  constructor(secret: ValidationSecret) {
    this.secret = secret;
    this.#anchors = certificatesOf(secret.trustedCa);
    this.#spiffe = secret.spiffeTrustDomains ? new Map([...secret.spiffeTrustDomains].map(([td, pem]) => [td, certificatesOf(pem)])) : undefined;
  }

  /** The CA bundle for the SecureContext's store: the trusted CAs, or every SPIFFE bundle. */
  caBundle(): string | undefined {
    if (this.secret.spiffeTrustDomains) return [...this.secret.spiffeTrustDomains.values()].join('\n');
    return this.secret.trustedCa;
  }

  /**
   * Checks a presented chain. `opensslError` is OpenSSL's verify result against caBundle() (and
   * the CRLs), null when it passed.
   */
  verify(chain: readonly X509Certificate[], opensslError: string | null, verifySan: string | undefined): Verdict {
    const leaf = chain[0];
    if (!leaf) return { ok: false, stat: 'fail_verify_no_cert', reason: 'peer presented no certificate' };
    const s = this.secret;
    let validated = false;
    const sans = parseSubjectAltNames(leaf.subjectAltName);
    if (s.trustChainVerification === 'VERIFY_TRUST_CHAIN') {
      if (this.#spiffe) {
        const r = this.#verifySpiffe(chain, sans, opensslError);
        if (r) return r;
        validated = true;
      } else if (s.trustedCa !== undefined) {
        if (opensslError !== null) {
          const forgiven = s.allowExpiredCertificate && EXPIRY_ERRORS.has(opensslError) && chainTrusted(chain, this.#anchors, true);
          if (!forgiven) return { ok: false, stat: 'fail_verify_error', reason: `verify cert failed: ${opensslError}` };
        }
        validated = true;
      }
    }
    if (verifySan !== undefined && !verifySanList(verifySan, sans)) {
      return { ok: false, stat: 'fail_verify_san', reason: `verify cert failed: SAN does not match ${verifySan}` };
    }
    if (s.sanMatchers.length > 0) {
      if (!matchSans(s.sanMatchers, sans)) return { ok: false, stat: 'fail_verify_san', reason: 'verify cert failed: SAN matcher' };
      validated = true;
    }
    if (s.certHashPins.length > 0 || s.spkiPins.length > 0) {
      const hashOk = s.certHashPins.length > 0 && s.certHashPins.includes(sha256Hex(leaf));
      const spkiOk = !hashOk && s.spkiPins.length > 0 && s.spkiPins.includes(spkiHash(leaf));
      if (!hashOk && !spkiOk) return { ok: false, stat: 'fail_verify_cert_hash', reason: 'verify cert failed: cert hash and spki' };
      validated = true;
    }
    return { ok: true, validated };
  }

  #verifySpiffe(chain: readonly X509Certificate[], sans: SubjectAltNames, opensslError: string | null): Verdict | undefined {
    const s = this.secret;
    const id = sans.uri.find((u) => u.startsWith('spiffe://'));
    if (!id) return { ok: false, stat: 'fail_verify_error', reason: 'verify cert failed: no SPIFFE ID in the certificate' };
    const td = id.slice('spiffe://'.length).split('/')[0] ?? '';
    const anchors = this.#spiffe!.get(td);
    if (!anchors) return { ok: false, stat: 'fail_verify_error', reason: `verify cert failed: no trust bundle for trust domain ${td}` };
    // OpenSSL checked against every bundle (and the CRLs); the chain must also lead to this domain's.
    if (opensslError !== null && !(s.allowExpiredCertificate && EXPIRY_ERRORS.has(opensslError))) {
      return { ok: false, stat: 'fail_verify_error', reason: `verify cert failed: ${opensslError}` };
    }
    if (!chainTrusted(chain, anchors, s.allowExpiredCertificate)) {
      return { ok: false, stat: 'fail_verify_error', reason: `verify cert failed: not signed by the trust bundle of ${td}` };
    }
    return undefined;
  }
}
