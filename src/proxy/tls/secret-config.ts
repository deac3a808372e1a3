// Envoy's secret messages (TlsCertificate, CertificateValidationContext, Secret) resolved into the
// plain-data secrets of types.ts: data sources read, PEM and keys parsed and checked, SAN matchers
// and the SPIFFE validator compiled to structured-cloneable data. Failures are Results naming the
// field (`...tls_certificates[0].private_key`), never throws.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import * as tls from 'node:tls';
import type { TlsCertificate__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/TlsCertificate.ts';
import type { CertificateValidationContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.ts';
import type { Secret__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { SPIFFECertValidatorConfig__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/SPIFFECertValidatorConfig.ts';
import type { StringMatcher__Output } from '../../generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { DataSource__Output } from '../../generated/envoy/config/core/v3/DataSource.ts';
import { readDataSource } from '../../config/data-source.ts';
import { unpackAny } from '../../config/decode.ts';
import { fail, joinPath, ok, type Result } from '../../config/result.ts';
import { compileRe2 } from '../http/matchers.ts';
import { parsePemCertificates } from './pem.ts';
import type { CertificateSecret, SanMatcher, StringMatch, TlsSecret, ValidationSecret } from './types.ts';

export const SPIFFE_VALIDATOR = 'envoy.tls.cert_validator.spiffe';
const SPIFFE_TYPE = 'envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig';

/** Where a data source came from, for /certs: the file path or `<inline>`. */
function sourceOf(ds: DataSource__Output | null | undefined): string {
  return ds?.specifier === 'filename' ? (ds.filename ?? '<inline>') : '<inline>';
}

export function parseTlsCertificate(msg: TlsCertificate__Output, path: string, source?: string): Result<CertificateSecret> {
  if (msg.private_key_provider) return fail(joinPath(path, 'private_key_provider'), 'private key providers are not supported by legate');
  if (msg.pkcs12) return fail(joinPath(path, 'pkcs12'), 'pkcs12 is not supported by legate; use certificate_chain and private_key (PEM)');
  if (msg.ocsp_staple) return fail(joinPath(path, 'ocsp_staple'), 'OCSP stapling is not supported by legate');
  if ((msg.signed_certificate_timestamp ?? []).length > 0) {
    return fail(joinPath(path, 'signed_certificate_timestamp'), 'signed certificate timestamps are not supported by legate');
  }
  if (!msg.certificate_chain) return fail(joinPath(path, 'certificate_chain'), 'certificate_chain is required');
  if (!msg.private_key) return fail(joinPath(path, 'private_key'), 'private_key is required with certificate_chain');
  const chain = readDataSource(msg.certificate_chain, joinPath(path, 'certificate_chain'));
  if (!chain.ok) return chain;
  const key = readDataSource(msg.private_key, joinPath(path, 'private_key'));
  if (!key.ok) return key;
  let password: string | undefined;
  if (msg.password) {
    const p = readDataSource(msg.password, joinPath(path, 'password'));
    if (!p.ok) return p;
    password = p.value;
  }
  const secret: CertificateSecret = {
    kind: 'tls_certificate',
    certificateChain: chain.value,
    privateKey: key.value,
    ...(password !== undefined ? { password } : {}),
    source: source ?? sourceOf(msg.certificate_chain),
  };
  return checkCertificateSecret(secret, path);
}

/** Checks a resolved certificate secret: the chain parses, the key parses (with its password) and matches the leaf. */
export function checkCertificateSecret(s: CertificateSecret, path: string): Result<CertificateSecret> {
  const certs = parsePemCertificates(s.certificateChain);
  if ('error' in certs) return fail(joinPath(path, 'certificate_chain'), `failed to load certificate chain: ${certs.error}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(s.password !== undefined ? { key: s.privateKey, format: 'pem', passphrase: s.password } : { key: s.privateKey, format: 'pem' });
  } catch (e) {
    return fail(joinPath(path, 'private_key'), `failed to load private key: ${(e as Error).message}`);
  }
  if (!certs.certs[0]!.checkPrivateKey(key)) return fail(joinPath(path, 'private_key'), 'private key does not match the certificate');
  return ok(s);
}

/** Compiles an Envoy StringMatcher into plain data (regex kept as RE2 source, checked here). */
export function parseStringMatch(m: StringMatcher__Output | null, path: string): Result<StringMatch> {
  if (!m) return fail(path, 'matcher is required');
  const ignoreCase = m.ignore_case ?? false;
  switch (m.match_pattern) {
    case 'exact':
      return ok({ kind: 'exact', value: m.exact ?? '', ignoreCase });
    case 'prefix':
    case 'suffix':
    case 'contains': {
      const value = m[m.match_pattern] ?? '';
      if (value.length === 0) return fail(joinPath(path, m.match_pattern), 'value length must be at least 1 characters');
      return ok({ kind: m.match_pattern, value, ignoreCase });
    }
    case 'safe_regex': {
      if (ignoreCase) return fail(joinPath(path, 'ignore_case'), 'ignore_case has no effect for safe_regex.');
      const src = m.safe_regex?.regex ?? '';
      const re = compileRe2(src, 'full');
      if ('error' in re) return fail(joinPath(path, 'safe_regex.regex'), `invalid regex "${src}": ${re.error}`);
      return ok({ kind: 'regex', value: src, ignoreCase: false });
    }
    case 'custom':
      return fail(joinPath(path, 'custom'), 'custom string matchers are not supported');
    default:
      return fail(joinPath(path, 'match_pattern'), 'value is required');
  }
}

const ANY_SAN: readonly SanMatcher['type'][] = ['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'];

function parseSanMatchers(msg: CertificateValidationContext__Output, path: string): Result<SanMatcher[]> {
  const out: SanMatcher[] = [];
  for (const [i, m] of (msg.match_typed_subject_alt_names ?? []).entries()) {
    const p = joinPath(path, `match_typed_subject_alt_names[${i}]`);
    const type = m.san_type;
    if (type === 'OTHER_NAME') return fail(joinPath(p, 'san_type'), 'OTHER_NAME SAN matching is not supported by legate');
    if (type !== 'DNS' && type !== 'URI' && type !== 'EMAIL' && type !== 'IP_ADDRESS') return fail(joinPath(p, 'san_type'), 'san_type is required');
    const sm = parseStringMatch(m.matcher, joinPath(p, 'matcher'));
    if (!sm.ok) return sm;
    out.push({ type, match: sm.value });
  }
  // Deprecated form: one StringMatcher tried against every SAN kind, as Envoy does.
  for (const [i, m] of (msg.match_subject_alt_names ?? []).entries()) {
    const sm = parseStringMatch(m, joinPath(path, `match_subject_alt_names[${i}]`));
    if (!sm.ok) return sm;
    for (const type of ANY_SAN) out.push({ type, match: sm.value });
  }
  return ok(out);
}

function readCaBundle(ds: DataSource__Output, path: string, what: string): Result<string> {
  const pem = readDataSource(ds, path);
  if (!pem.ok) return pem;
  const certs = parsePemCertificates(pem.value);
  if ('error' in certs) return fail(path, `failed to load ${what}: ${certs.error}`);
  return pem;
}

function parseSpiffe(msg: CertificateValidationContext__Output, path: string): Result<Map<string, string> | undefined> {
  const cv = msg.custom_validator_config;
  if (!cv) return ok(undefined);
  const p = joinPath(path, 'custom_validator_config');
  const any = cv.typed_config;
  const typeName = any?.type_url ? any.type_url.slice(any.type_url.lastIndexOf('/') + 1) : undefined;
  if (typeName !== SPIFFE_TYPE && !(typeName === undefined && cv.name === SPIFFE_VALIDATOR)) {
    return fail(p, `unknown certificate validator "${cv.name}"${typeName ? ` (${typeName})` : ''}: legate supports only ${SPIFFE_VALIDATOR}`);
  }
  if (!any) return fail(joinPath(p, 'typed_config'), 'SPIFFECertValidatorConfig is required');
  const u = unpackAny<SPIFFECertValidatorConfig__Output>(any, joinPath(p, 'typed_config'));
  if (!u.ok) return u;
  const domains = u.value.message.trust_domains ?? [];
  if (domains.length === 0) return fail(joinPath(p, 'typed_config.trust_domains'), 'value must contain at least 1 item(s)');
  const out = new Map<string, string>();
  for (const [i, td] of domains.entries()) {
    const tp = joinPath(p, `typed_config.trust_domains[${i}]`);
    if (!td.name) return fail(joinPath(tp, 'name'), 'value length must be at least 1 characters');
    if (out.has(td.name)) return fail(joinPath(tp, 'name'), `duplicate trust domain "${td.name}"`);
    if (!td.trust_bundle) return fail(joinPath(tp, 'trust_bundle'), 'trust_bundle is required');
    const pem = readCaBundle(td.trust_bundle, joinPath(tp, 'trust_bundle'), 'trust bundle');
    if (!pem.ok) return pem;
    out.set(td.name, pem.value);
  }
  return ok(out);
}

function normalizeHash(h: string): string | undefined {
  const v = h.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

export function parseValidationContext(msg: CertificateValidationContext__Output, path: string, source?: string): Result<ValidationSecret> {
  if (msg.ca_certificate_provider_instance) {
    return fail(joinPath(path, 'ca_certificate_provider_instance'), 'certificate provider instances are not supported by legate');
  }
  if (msg.require_signed_certificate_timestamp?.value) {
    return fail(joinPath(path, 'require_signed_certificate_timestamp'), 'signed certificate timestamps are not supported by legate');
  }
  if (msg.only_verify_leaf_cert_crl) {
    return fail(joinPath(path, 'only_verify_leaf_cert_crl'), 'only_verify_leaf_cert_crl is not supported by legate (CRLs are checked for the whole chain)');
  }
  let trustedCa: string | undefined;
  if (msg.trusted_ca) {
    const ca = readCaBundle(msg.trusted_ca, joinPath(path, 'trusted_ca'), 'trusted CA certificates');
    if (!ca.ok) return ca;
    trustedCa = ca.value;
  } else if (msg.system_root_certs) {
    trustedCa = systemRoots();
  }
  let crl: string | undefined;
  if (msg.crl) {
    const c = readDataSource(msg.crl, joinPath(path, 'crl'));
    if (!c.ok) return c;
    if (!c.value.includes('-----BEGIN X509 CRL-----')) return fail(joinPath(path, 'crl'), 'failed to load CRL: not a PEM CRL');
    try {
      tls.createSecureContext({ crl: c.value });
    } catch (e) {
      return fail(joinPath(path, 'crl'), `failed to load CRL: ${(e as Error).message}`);
    }
    crl = c.value;
  }
  const certHashPins: string[] = [];
  for (const [i, h] of (msg.verify_certificate_hash ?? []).entries()) {
    const v = normalizeHash(h);
    if (!v) return fail(joinPath(path, `verify_certificate_hash[${i}]`), `invalid hex-encoded SHA-256 ${h}`);
    certHashPins.push(v);
  }
  const spkiPins: string[] = [];
  for (const [i, s] of (msg.verify_certificate_spki ?? []).entries()) {
    if (Buffer.from(s, 'base64').length !== 32) return fail(joinPath(path, `verify_certificate_spki[${i}]`), `invalid base64-encoded SHA-256 ${s}`);
    spkiPins.push(s);
  }
  const san = parseSanMatchers(msg, path);
  if (!san.ok) return san;
  const spiffe = parseSpiffe(msg, path);
  if (!spiffe.ok) return spiffe;
  return ok({
    kind: 'validation_context',
    trustedCa,
    crl,
    sanMatchers: san.value,
    spkiPins,
    certHashPins,
    allowExpiredCertificate: msg.allow_expired_certificate ?? false,
    trustChainVerification: msg.trust_chain_verification === 'ACCEPT_UNTRUSTED' ? 'ACCEPT_UNTRUSTED' : 'VERIFY_TRUST_CHAIN',
    spiffeTrustDomains: spiffe.value,
    source: source ?? (msg.trusted_ca ? sourceOf(msg.trusted_ca) : msg.system_root_certs ? '<system>' : '<inline>'),
  });
}

let systemRootsPem: string | undefined;
function systemRoots(): string {
  if (systemRootsPem === undefined) {
    // The OS store; the bundled Mozilla roots when it is empty (minimal containers).
    const sys = tls.getCACertificates('system');
    systemRootsPem = (sys.length > 0 ? sys : tls.rootCertificates).join('\n');
  }
  return systemRootsPem;
}

/** `envoy.extensions.transport_sockets.tls.v3.Secret` (SDS resource or bootstrap `static_resources.secrets[]`). */
export function parseSecret(msg: Secret__Output, path: string): Result<TlsSecret> {
  // /certs shows a file-backed secret by its path (as Envoy does), anything else as `sds:<name>`.
  const named = (ds: DataSource__Output | null | undefined): string | undefined =>
    ds?.specifier === 'filename' ? undefined : msg.name ? `sds:${msg.name}` : undefined;
  switch (msg.type) {
    case 'tls_certificate':
      return parseTlsCertificate(msg.tls_certificate!, joinPath(path, 'tls_certificate'), named(msg.tls_certificate?.certificate_chain));
    case 'validation_context':
      return parseValidationContext(msg.validation_context!, joinPath(path, 'validation_context'), named(msg.validation_context?.trusted_ca));
    case 'session_ticket_keys':
      return fail(joinPath(path, 'session_ticket_keys'), 'session ticket key secrets are not supported by legate');
    case 'generic_secret':
      return fail(joinPath(path, 'generic_secret'), 'generic secrets are not supported by legate');
    default:
      return fail(path, 'secret type is required (tls_certificate or validation_context)');
  }
}
