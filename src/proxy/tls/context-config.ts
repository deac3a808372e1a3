// DownstreamTlsContext / UpstreamTlsContext (and their CommonTlsContext) parsed into frozen,
// plain configs: inline certificates resolved now, SDS and static secrets kept as names the
// worker's SecretStore answers, TLS parameters translated for node:tls. Failures are Results with
// field paths; nothing here touches a socket.

import type { DownstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
import type { UpstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
import type { CommonTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.ts';
import type { SdsSecretConfig__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/SdsSecretConfig.ts';
import { readFileSync } from 'node:fs';
import type { DataSource__Output } from '../../generated/envoy/config/core/v3/DataSource.ts';
import { readDataSource } from '../../config/data-source.ts';
import { deepFreeze, fail, joinPath, ok, type Result } from '../../config/result.ts';
import type { ParseContext } from '../../filters/registry.ts';
import { logger } from '../log.ts';
import { parseTlsCertificate, parseValidationContext } from './secret-config.ts';
import { parseTlsParams, type TlsParams } from './tls-params.ts';
import type { CertificateSecret, TlsSecret, ValidationSecret } from './types.ts';

const log = logger('config');

/** A secret by name: a bootstrap `static_resources.secrets` entry or an SDS subscription. */
export interface SecretRef {
  readonly kind: 'secret';
  readonly name: string;
  /** True for SDS (`sds_config` set): the context is not ready until it arrives. */
  readonly dynamic: boolean;
}

export type CertificateSource = { readonly kind: 'inline'; readonly secret: CertificateSecret } | SecretRef;

export type ValidationSource =
  | { readonly kind: 'inline'; readonly secret: ValidationSecret }
  | SecretRef
  /** combined_validation_context: the SDS context merged over `defaults` (see mergeValidation). */
  | { readonly kind: 'combined'; readonly defaults: ValidationSecret; readonly ref: SecretRef };

export interface CommonTlsConfig {
  readonly certificates: readonly CertificateSource[];
  readonly validation: ValidationSource | undefined;
  readonly alpn: readonly string[];
  readonly params: TlsParams;
  /** key_log.path: NSS key log lines for every connection (address ranges are not applied). */
  readonly keyLogPath: string | undefined;
}

export interface DownstreamTlsConfig extends CommonTlsConfig {
  readonly side: 'downstream';
  readonly requireClientCertificate: boolean;
  readonly requireSni: boolean;
  /** 48 bytes as hex (node's ticketKeys), derived from the first session_ticket_keys key. */
  readonly ticketKeysHex: string | undefined;
  readonly disableStatelessResumption: boolean;
  /** session_timeout, seconds. */
  readonly sessionTimeoutS: number | undefined;
}

export interface UpstreamTlsConfig extends CommonTlsConfig {
  readonly side: 'upstream';
  readonly sni: string | undefined;
  /** max_session_keys: TLS sessions kept per host (default 1; 0 = no resumption). */
  readonly maxSessionKeys: number;
}

/** Names of the SDS secrets a context waits for (its ready() is false until all are in the store). */
export function dynamicSecretNames(cfg: CommonTlsConfig): string[] {
  const out: string[] = [];
  for (const c of cfg.certificates) if (c.kind === 'secret' && c.dynamic) out.push(c.name);
  const v = cfg.validation;
  if (v?.kind === 'secret' && v.dynamic) out.push(v.name);
  if (v?.kind === 'combined' && v.ref.dynamic) out.push(v.ref.name);
  return out;
}

/** Every secret name a context reads from the store (static and SDS), for watching. */
export function secretNames(cfg: CommonTlsConfig): string[] {
  const out: string[] = [];
  for (const c of cfg.certificates) if (c.kind === 'secret') out.push(c.name);
  const v = cfg.validation;
  if (v?.kind === 'secret') out.push(v.name);
  if (v?.kind === 'combined') out.push(v.ref.name);
  return out;
}

/**
 * Envoy merges the SDS-delivered context into the default one with protobuf MergeFrom: fields
 * the dynamic context sets win, repeated fields (SAN matchers, pins) are concatenated.
 */
export function mergeValidation(defaults: ValidationSecret, dynamic: ValidationSecret): ValidationSecret {
  return {
    kind: 'validation_context',
    trustedCa: dynamic.trustedCa ?? defaults.trustedCa,
    crl: dynamic.crl ?? defaults.crl,
    sanMatchers: [...defaults.sanMatchers, ...dynamic.sanMatchers],
    spkiPins: [...defaults.spkiPins, ...dynamic.spkiPins],
    certHashPins: [...defaults.certHashPins, ...dynamic.certHashPins],
    allowExpiredCertificate: dynamic.allowExpiredCertificate || defaults.allowExpiredCertificate,
    trustChainVerification: dynamic.trustChainVerification !== 'VERIFY_TRUST_CHAIN' ? dynamic.trustChainVerification : defaults.trustChainVerification,
    spiffeTrustDomains: dynamic.spiffeTrustDomains ?? defaults.spiffeTrustDomains,
    source: dynamic.source,
  };
}

function secretRef(s: SdsSecretConfig__Output, want: TlsSecret['kind'], path: string, ctx: ParseContext): Result<SecretRef> {
  if (!s.name) return fail(joinPath(path, 'name'), 'value length must be at least 1 characters');
  if (s.sds_config) {
    ctx.tls?.sds({ name: s.name, configSource: s.sds_config, path });
    return ok({ kind: 'secret', name: s.name, dynamic: true });
  }
  const st = ctx.tls?.staticSecrets.get(s.name);
  if (!st) return fail(joinPath(path, 'name'), `unknown static secret: ${s.name}`);
  if (st.kind !== want) return fail(joinPath(path, 'name'), `static secret ${s.name} is a ${st.kind}, not a ${want}`);
  return ok({ kind: 'secret', name: s.name, dynamic: false });
}

const UNSUPPORTED_COMMON: readonly (keyof CommonTlsContext__Output)[] = [
  'tls_certificate_provider_instance',
  'tls_certificate_certificate_provider',
  'tls_certificate_certificate_provider_instance',
  'validation_context_certificate_provider',
  'validation_context_certificate_provider_instance',
  'custom_handshaker',
];

function parseCommon(c: CommonTlsContext__Output | null, side: 'server' | 'client', path: string, ctx: ParseContext): Result<CommonTlsConfig> {
  const p = joinPath(path, 'common_tls_context');
  for (const f of UNSUPPORTED_COMMON) if (c?.[f]) return fail(joinPath(p, f), `${f} is not supported by legate`);
  const certificates: CertificateSource[] = [];
  for (const [i, t] of (c?.tls_certificates ?? []).entries()) {
    const s = parseTlsCertificate(t, joinPath(p, `tls_certificates[${i}]`));
    if (!s.ok) return s;
    certificates.push({ kind: 'inline', secret: s.value });
  }
  for (const [i, s] of (c?.tls_certificate_sds_secret_configs ?? []).entries()) {
    const r = secretRef(s, 'tls_certificate', joinPath(p, `tls_certificate_sds_secret_configs[${i}]`), ctx);
    if (!r.ok) return r;
    certificates.push(r.value);
  }
  let validation: ValidationSource | undefined;
  switch (c?.validation_context_type) {
    case 'validation_context': {
      const v = parseValidationContext(c.validation_context!, joinPath(p, 'validation_context'));
      if (!v.ok) return v;
      validation = { kind: 'inline', secret: v.value };
      break;
    }
    case 'validation_context_sds_secret_config': {
      const r = secretRef(c.validation_context_sds_secret_config!, 'validation_context', joinPath(p, 'validation_context_sds_secret_config'), ctx);
      if (!r.ok) return r;
      validation = r.value;
      break;
    }
    case 'combined_validation_context': {
      const cp = joinPath(p, 'combined_validation_context');
      const cv = c.combined_validation_context!;
      if (cv.validation_context_certificate_provider || cv.validation_context_certificate_provider_instance) {
        return fail(cp, 'certificate providers are not supported by legate');
      }
      if (!cv.default_validation_context) return fail(joinPath(cp, 'default_validation_context'), 'value is required');
      if (!cv.validation_context_sds_secret_config) return fail(joinPath(cp, 'validation_context_sds_secret_config'), 'value is required');
      const d = parseValidationContext(cv.default_validation_context, joinPath(cp, 'default_validation_context'));
      if (!d.ok) return d;
      const r = secretRef(cv.validation_context_sds_secret_config, 'validation_context', joinPath(cp, 'validation_context_sds_secret_config'), ctx);
      if (!r.ok) return r;
      validation = { kind: 'combined', defaults: d.value, ref: r.value };
      break;
    }
    default:
      break;
  }
  const params = parseTlsParams(c?.tls_params ?? null, side, joinPath(p, 'tls_params'));
  if (!params.ok) return params;
  for (const [i, a] of (c?.alpn_protocols ?? []).entries()) {
    if (a.length === 0 || a.length > 255) return fail(joinPath(p, `alpn_protocols[${i}]`), 'ALPN protocol names must be 1 to 255 bytes');
  }
  let keyLogPath: string | undefined;
  if (c?.key_log) {
    keyLogPath = c.key_log.path;
    if ((c.key_log.local_address_range ?? []).length > 0 || (c.key_log.remote_address_range ?? []).length > 0) {
      log.warn(`${joinPath(p, 'key_log')}: address ranges are not applied; every connection is logged to ${keyLogPath}`);
    }
  }
  return ok({ certificates, validation, alpn: [...(c?.alpn_protocols ?? [])], params: params.value, keyLogPath });
}

export function parseDownstreamTlsContext(msg: DownstreamTlsContext__Output, ctx: ParseContext): Result<DownstreamTlsConfig> {
  const path = ctx.path;
  const common = parseCommon(msg.common_tls_context, 'server', path, ctx);
  if (!common.ok) return common;
  const cp = joinPath(path, 'common_tls_context');
  const c = msg.common_tls_context;
  if (common.value.certificates.length === 0) return fail(cp, 'No TLS certificates found for server context');
  if ((c?.tls_certificates ?? []).length > 0 && (c?.tls_certificate_sds_secret_configs ?? []).length > 0) {
    return fail(cp, 'SDS and non-SDS TLS certificates may not be mixed in server contexts');
  }
  if (msg.ocsp_staple_policy === 'STRICT_STAPLING' || msg.ocsp_staple_policy === 'MUST_STAPLE') {
    return fail(joinPath(path, 'ocsp_staple_policy'), `${msg.ocsp_staple_policy} is not supported by legate (no OCSP stapling)`);
  }
  let ticketKeysHex: string | undefined;
  if (msg.session_ticket_keys_type === 'session_ticket_keys_sds_secret_config') {
    return fail(joinPath(path, 'session_ticket_keys_sds_secret_config'), 'session ticket keys over SDS are not supported by legate');
  }
  if (msg.session_ticket_keys_type === 'session_ticket_keys') {
    const keys = msg.session_ticket_keys?.keys ?? [];
    if (keys.length === 0) return fail(joinPath(path, 'session_ticket_keys.keys'), 'value must contain at least 1 item(s)');
    for (const [i, k] of keys.entries()) {
      const kp = joinPath(path, `session_ticket_keys.keys[${i}]`);
      const raw = readBytes(k, kp);
      if (!raw.ok) return raw;
      if (raw.value.length !== 80) return fail(kp, `Incorrect TLS session ticket key length. Length ${raw.value.length}, expected length 80.`);
      // Envoy's key is name(16) | HMAC(32) | AES(32); node takes name(16) | HMAC(16) | AES(16).
      if (i === 0) ticketKeysHex = Buffer.concat([raw.value.subarray(0, 16), raw.value.subarray(16, 32), raw.value.subarray(48, 64)]).toString('hex');
    }
  }
  const timeout = msg.session_timeout ? Number(msg.session_timeout.seconds) : undefined;
  return ok(
    deepFreeze({
      ...common.value,
      side: 'downstream' as const,
      requireClientCertificate: msg.require_client_certificate?.value ?? false,
      requireSni: msg.require_sni?.value ?? false,
      ticketKeysHex,
      disableStatelessResumption: msg.session_ticket_keys_type === 'disable_stateless_session_resumption' && msg.disable_stateless_session_resumption === true,
      sessionTimeoutS: timeout,
    }),
  );
}

/** Ticket keys are binary: files are read as bytes, not through readDataSource's UTF-8 decode. */
function readBytes(ds: DataSource__Output, path: string): Result<Buffer> {
  if (ds.specifier === 'filename') {
    try {
      return ok(readFileSync(ds.filename ?? ''));
    } catch (e) {
      return fail(joinPath(path, 'filename'), `unable to read file '${ds.filename}': ${(e as Error).message}`);
    }
  }
  if (ds.specifier === 'inline_bytes') return ok(Buffer.from(ds.inline_bytes ?? []));
  const s = readDataSource(ds, path);
  return s.ok ? ok(Buffer.from(s.value, 'utf8')) : s;
}

export function parseUpstreamTlsContext(msg: UpstreamTlsContext__Output, ctx: ParseContext): Result<UpstreamTlsConfig> {
  const path = ctx.path;
  const common = parseCommon(msg.common_tls_context, 'client', path, ctx);
  if (!common.ok) return common;
  if (common.value.certificates.length > 1) {
    return fail(joinPath(path, 'common_tls_context'), 'Multiple TLS certificates are not supported for client contexts');
  }
  if (msg.enforce_rsa_key_usage?.value) {
    log.debug(`${joinPath(path, 'enforce_rsa_key_usage')}: OpenSSL enforces RSA key usage by default`);
  }
  return ok(
    deepFreeze({
      ...common.value,
      side: 'upstream' as const,
      sni: msg.sni ? msg.sni : undefined,
      maxSessionKeys: msg.max_session_keys ? msg.max_session_keys.value : 1,
    }),
  );
}
