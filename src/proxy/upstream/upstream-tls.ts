// What the upstream side tells others about its TLS connections: the session each connection
// negotiated (by socket or HTTP/2 session, for StreamInfo.upstreamTls), the SNI/SAN a request's Host
// gives under auto_sni / auto_san_validation, and the failure text Envoy prints for a failed
// handshake (%UPSTREAM_TRANSPORT_FAILURE_REASON%). Pure functions and a WeakMap; never throws.

import { isIP } from 'node:net';
import { TlsHandshakeError, type TlsConnectionInfo } from '../tls/types.ts';
import type { UpstreamHttpProtocolOptionsConfig, UpstreamTransportOptions } from './types.ts';

const sessions = new WeakMap<object, TlsConnectionInfo>();

/** Remembers what the handshake of `conn` (a TLSSocket or the HTTP/2 session over it) negotiated. */
export function recordUpstreamTls(conn: object, info: TlsConnectionInfo): void {
  sessions.set(conn, info);
}

/** The TLS session of an upstream connection; undefined for plaintext ones. */
export function upstreamTlsInfo(conn: object | undefined): TlsConnectionInfo | undefined {
  return conn === undefined ? undefined : sessions.get(conn);
}

/** Host part of an authority (`host:port`, `[v6]:port`) and whether it is an IP address (Envoy's parseAuthority). */
export function parseAuthority(authority: string): { host: string; isIp: boolean } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const host = end < 0 ? authority.slice(1) : authority.slice(1, end);
    return { host, isIp: isIP(host) === 6 };
  }
  const colon = authority.lastIndexOf(':');
  // More than one colon without brackets: a bare IPv6 address, no port.
  const host = colon >= 0 && authority.indexOf(':') === colon && /^\d*$/.test(authority.slice(colon + 1)) ? authority.slice(0, colon) : authority;
  return { host, isIp: isIP(host) !== 0 };
}

/**
 * auto_sni / auto_san_validation for one request, as Envoy's router computes them: the Host
 * (`:authority`, after the route's host rewrite) or the `override_auto_sni_header` when present and
 * non-empty, without its port. No SNI for an IP address; the SAN to verify is set either way.
 */
export function autoTransportOptions(o: UpstreamHttpProtocolOptionsConfig | undefined, header: (name: string) => string | undefined): UpstreamTransportOptions | undefined {
  if (!o || (!o.autoSni && !o.autoSanValidation)) return undefined;
  let value = header(':authority') ?? header('host') ?? '';
  if (o.overrideAutoSniHeader !== '') {
    const v = header(o.overrideAutoSniHeader);
    if (v !== undefined && v !== '') value = v;
  }
  const a = parseAuthority(value);
  const sni = o.autoSni && !a.isIp && a.host !== '' ? a.host : undefined;
  const verifySan = o.autoSanValidation ? a.host : undefined;
  return sni === undefined && verifySan === undefined ? undefined : { sni, verifySan };
}

/** Key of the pool for these options (Envoy hashes transport socket options into its pool key). */
export function transportKey(t: UpstreamTransportOptions | undefined): string {
  if (!t || (t.sni === undefined && t.verifySan === undefined && t.alpn === undefined)) return '';
  return `sni=${t.sni ?? ''};san=${t.verifySan ?? ''};alpn=${t.alpn?.join(',') ?? ''}`;
}

/** Filter state key of an ALPN override for the request's upstream connection (Envoy's Network::ApplicationProtocols). */
export const APPLICATION_PROTOCOLS_KEY = 'envoy.network.application_protocols';

/** The request's transport options with the ALPN override a filter left in filter state (istio.alpn), if any. */
export function withAlpnOverride(t: UpstreamTransportOptions | undefined, filterState: ReadonlyMap<string, unknown> | undefined): UpstreamTransportOptions | undefined {
  const alpn = filterState?.get(APPLICATION_PROTOCOLS_KEY);
  if (!Array.isArray(alpn) || alpn.length === 0) return t;
  return { ...t, alpn: alpn.map(String) };
}

/**
 * The TLS error text behind a failed upstream connection (an error or its cause), if it was the
 * handshake, in Envoy's form: a certificate check that failed reads
 * `TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:<details>:TLS_error_end`
 * (BoringSSL's code for it), an OpenSSL error `TLS_error:|<OpenSSL's text>:TLS_error_end`.
 */
export function transportFailureReason(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 4; e = e.cause, i++) {
    if (!(e instanceof TlsHandshakeError)) continue;
    if (e.stat !== 'connection_error') return `TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:${e.message}:TLS_error_end`;
    return /SSL routines|alert|wrong version/i.test(e.message) ? `TLS_error:|${e.message}:TLS_error_end` : e.message;
  }
  return undefined;
}
