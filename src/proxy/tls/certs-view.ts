// The /certs view (envoy.admin.v3.Certificates, proto3 JSON) of a TLS config as a worker holds it.

import { X509Certificate } from 'node:crypto';
import { parseSubjectAltNames } from './connection-info.ts';
import { mergeValidation, type DownstreamTlsConfig, type UpstreamTlsConfig } from './context-config.ts';
import { certificatesOf } from './pem.ts';
import type { CertificateSecret, SecretStore, ValidationSecret } from './types.ts';

export interface SubjectAlternateNameJson {
  readonly dns?: string;
  readonly uri?: string;
  readonly ip_address?: string;
}

export interface CertificateDetailsJson {
  readonly path: string;
  readonly serial_number: string;
  readonly subject_alt_names: readonly SubjectAlternateNameJson[];
  /** uint64 in proto3 JSON: a string. 0 once expired. */
  readonly days_until_expiration: string;
  readonly valid_from: string;
  readonly expiration_time: string;
}

/** One `envoy.admin.v3.Certificate`: the context's CA and its certificates' leaves. */
export interface CertificateJson {
  readonly ca_cert: readonly CertificateDetailsJson[];
  readonly cert_chain: readonly CertificateDetailsJson[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function certificateDetails(cert: X509Certificate, path: string, now = Date.now()): CertificateDetailsJson {
  const sans = parseSubjectAltNames(cert.subjectAltName);
  return {
    path,
    serial_number: cert.serialNumber.toLowerCase(),
    subject_alt_names: [...sans.dns.map((dns) => ({ dns })), ...sans.uri.map((uri) => ({ uri })), ...sans.ip.map((ip_address) => ({ ip_address }))],
    days_until_expiration: String(Math.max(0, Math.floor((cert.validToDate.getTime() - now) / DAY_MS))),
    valid_from: rfc3339(cert.validFromDate),
    expiration_time: rfc3339(cert.validToDate),
  };
}

/**
 * The /certs entry for a TLS config as it stands on this worker (SDS secrets from `secrets`;
 * ones not yet delivered are left out). Envoy shows the first trusted CA and each leaf.
 */
export function describeCertificates(cfg: DownstreamTlsConfig | UpstreamTlsConfig, secrets: SecretStore, now = Date.now()): CertificateJson {
  const chain: CertificateDetailsJson[] = [];
  for (const c of cfg.certificates) {
    const s: CertificateSecret | undefined = c.kind === 'inline' ? c.secret : (secrets.get(c.name) as CertificateSecret | undefined);
    if (s?.kind !== 'tls_certificate') continue;
    const leaf = certificatesOf(s.certificateChain)[0];
    if (leaf) chain.push(certificateDetails(leaf, s.source, now));
  }
  let v: ValidationSecret | undefined;
  const vs = cfg.validation;
  if (vs?.kind === 'inline') v = vs.secret;
  else if (vs) {
    const s = secrets.get(vs.kind === 'combined' ? vs.ref.name : vs.name);
    if (s?.kind === 'validation_context') v = vs.kind === 'combined' ? mergeValidation(vs.defaults, s) : s;
  }
  const ca: CertificateDetailsJson[] = [];
  const caPem = v?.trustedCa ?? (v?.spiffeTrustDomains ? [...v.spiffeTrustDomains.values()].join('\n') : undefined);
  const first = certificatesOf(caPem)[0];
  if (first && v) ca.push(certificateDetails(first, v.source, now));
  return { ca_cert: ca, cert_chain: chain };
}
