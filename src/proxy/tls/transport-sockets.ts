// The `transport_socket` of a filter chain or a cluster: raw_buffer (plaintext) or
// `envoy.transport_sockets.tls` parsed into a TLS config, and the factories that turn a config
// into a worker's server or client transport socket. Any other transport socket is a config
// error naming its path. Also the /certs view of a config.

import { X509Certificate } from 'node:crypto';
import type { TransportSocket__Output } from '../../generated/envoy/config/core/v3/TransportSocket.ts';
import type { DownstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
import type { UpstreamTlsContext__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
import { decodeJson, extensionTypeUrl, unpackAny } from '../../config/decode.ts';
import { fail, joinPath, ok, type Result } from '../../config/result.ts';
import type { ParseContext } from '../../filters/registry.ts';
import { TlsClientTransportSocket, type ClientTransportOptions } from './client-transport.ts';
import { parseSubjectAltNames } from './connection-info.ts';
import { mergeValidation, parseDownstreamTlsContext, parseUpstreamTlsContext, type DownstreamTlsConfig, type UpstreamTlsConfig } from './context-config.ts';
import { certificatesOf } from './pem.ts';
import { TlsServerTransportSocket } from './server-transport.ts';
import type { CertificateSecret, ClientTransportSocket, SecretStore, ServerTransportSocket, TransportSocketContext, ValidationSecret } from './types.ts';

export type { DownstreamTlsConfig, UpstreamTlsConfig } from './context-config.ts';

export const TLS_NAME = 'envoy.transport_sockets.tls';
export const RAW_BUFFER_NAME = 'envoy.transport_sockets.raw_buffer';
export const DOWNSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const RAW_BUFFER_TYPE = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

function typeNameOf(ts: TransportSocket__Output): string | undefined {
  const any = ts.typed_config;
  if (!any?.type_url) return undefined;
  const url = extensionTypeUrl(any);
  return url.slice(url.lastIndexOf('/') + 1);
}

/** True for plaintext: no transport socket, or raw_buffer by type or (config-less) by name. */
export function isRawBuffer(ts: TransportSocket__Output | null | undefined): boolean {
  if (!ts) return true;
  const t = typeNameOf(ts);
  return t === RAW_BUFFER_TYPE || (t === undefined && (ts.name === RAW_BUFFER_NAME || ts.name === 'raw_buffer'));
}

function tlsMessage<T>(ts: TransportSocket__Output, want: string, other: string, ctx: ParseContext): Result<{ msg: T; path: string } | undefined> {
  if (isRawBuffer(ts)) return ok(undefined);
  const t = typeNameOf(ts);
  if (t === undefined) {
    if (ts.name !== TLS_NAME && ts.name !== 'tls') return fail(ctx.path, `unknown transport socket "${ts.name}": legate supports ${RAW_BUFFER_NAME} and ${TLS_NAME}`);
    const d = decodeJson<T>(want, {}, { path: ctx.path });
    return d.ok ? ok({ msg: d.value, path: ctx.path }) : d;
  }
  if (t === other) return fail(joinPath(ctx.path, 'typed_config'), `${t} cannot be used here: expected ${want}`);
  if (t !== want) return fail(ctx.path, `unknown transport socket "${ts.name}" (${t}): legate supports ${RAW_BUFFER_NAME} and ${TLS_NAME}`);
  const path = joinPath(ctx.path, 'typed_config');
  const u = unpackAny<T>(ts.typed_config!, path);
  return u.ok ? ok({ msg: u.value.message, path }) : u;
}

/** A filter chain's transport_socket: undefined = plaintext. `ctx.path` is the transport_socket's path. */
export function parseDownstreamTransportSocket(ts: TransportSocket__Output | null | undefined, ctx: ParseContext): Result<DownstreamTlsConfig | undefined> {
  if (!ts) return ok(undefined);
  const m = tlsMessage<DownstreamTlsContext__Output>(ts, DOWNSTREAM_TLS_TYPE, UPSTREAM_TLS_TYPE, ctx);
  if (!m.ok || !m.value) return m as Result<undefined>;
  return parseDownstreamTlsContext(m.value.msg, { ...ctx, path: m.value.path });
}

/** A cluster's (or transport_socket_matches entry's) transport_socket: undefined = plaintext. */
export function parseUpstreamTransportSocket(ts: TransportSocket__Output | null | undefined, ctx: ParseContext): Result<UpstreamTlsConfig | undefined> {
  if (!ts) return ok(undefined);
  const m = tlsMessage<UpstreamTlsContext__Output>(ts, UPSTREAM_TLS_TYPE, DOWNSTREAM_TLS_TYPE, ctx);
  if (!m.ok || !m.value) return m as Result<undefined>;
  return parseUpstreamTlsContext(m.value.msg, { ...ctx, path: m.value.path });
}

/** The server side for one filter chain on a worker (close() it when the chain goes away). */
export function createServerTransportSocket(cfg: DownstreamTlsConfig, ctx: TransportSocketContext): ServerTransportSocket & { close(): void } {
  return new TlsServerTransportSocket(cfg, ctx);
}

/** The client side for one cluster on a worker; `opts` carries the cluster's auto_sni / auto_san_validation. */
export function createClientTransportSocket(cfg: UpstreamTlsConfig, ctx: TransportSocketContext, opts?: ClientTransportOptions): ClientTransportSocket & { close(): void } {
  return new TlsClientTransportSocket(cfg, ctx, opts);
}

// ---- /certs (envoy.admin.v3.Certificates, proto3 JSON) ----

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
