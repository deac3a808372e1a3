// Envoy's TlsParameters (protocol versions, BoringSSL cipher lists with `[A|B]` equal-preference
// groups, ECDH curves, signature algorithms) translated to node:tls SecureContext options, with
// Envoy's defaults. Each name is checked against the linked OpenSSL; an unknown one is an error
// naming the field.

import * as tls from 'node:tls';
import type { TlsParameters__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/TlsParameters.ts';
import { fail, joinPath, ok, type Result } from '../../config/result.ts';

export interface TlsParams {
  readonly minVersion: tls.SecureVersion;
  readonly maxVersion: tls.SecureVersion;
  /** node `ciphers`: the TLS 1.3 suites (always on, as in BoringSSL) then the TLS <=1.2 list. */
  readonly ciphers: string;
  readonly ecdhCurve: string;
  readonly sigalgs: string | undefined;
}

/** BoringSSL's TLS 1.3 suites, in its order; not configurable there, so always enabled here. */
const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/** Envoy's default cipher list (server and client, non-FIPS), groups flattened (OpenSSL has none). */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
];
export const DEFAULT_CURVES = ['X25519', 'P-256'];

const VERSIONS: Record<string, tls.SecureVersion | undefined> = {
  TLSv1_0: 'TLSv1',
  TLSv1_1: 'TLSv1.1',
  TLSv1_2: 'TLSv1.2',
  TLSv1_3: 'TLSv1.3',
};
const ORDER: readonly tls.SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

const known = new Set(tls.getCiphers());

/** True when OpenSSL accepts `opts` in a SecureContext (used to check one name at a time). */
function accepted(opts: tls.SecureContextOptions): boolean {
  try {
    tls.createSecureContext(opts);
    return true;
  } catch {
    return false;
  }
}

function parseCiphers(list: readonly string[], path: string): Result<string[]> {
  const out: string[] = [];
  for (const [i, entry] of list.entries()) {
    // `[A|B]` is a BoringSSL equal-preference group: OpenSSL has no such thing, so keep the order.
    const names = entry.replace(/^\[/, '').replace(/\]$/, '').split('|');
    for (const raw of names) {
      const name = raw.trim();
      if (name === '') return fail(joinPath(path, `[${i}]`), `Failed to initialize cipher suites ${entry}`);
      if (name.startsWith('TLS_')) continue; // TLS 1.3 suites: no effect, as in Envoy
      if (known.has(name.toLowerCase()) || accepted({ ciphers: name, minVersion: 'TLSv1', maxVersion: 'TLSv1.2' })) out.push(name);
      else return fail(joinPath(path, `[${i}]`), `Failed to initialize cipher suites ${entry}`);
    }
  }
  return ok(out);
}

export function parseTlsParams(p: TlsParameters__Output | null, side: 'server' | 'client', path: string): Result<TlsParams> {
  const minName = p?.tls_minimum_protocol_version ?? 'TLS_AUTO';
  const maxName = p?.tls_maximum_protocol_version ?? 'TLS_AUTO';
  // Envoy's defaults: minimum TLSv1_2; maximum TLSv1_3 for servers and TLSv1_2 for clients.
  const minVersion = VERSIONS[minName] ?? 'TLSv1.2';
  const maxVersion = VERSIONS[maxName] ?? (side === 'server' ? 'TLSv1.3' : 'TLSv1.2');
  if (ORDER.indexOf(minVersion) > ORDER.indexOf(maxVersion)) {
    return fail(joinPath(path, 'tls_minimum_protocol_version'), `minimum protocol version ${minName} is above the maximum ${maxName === 'TLS_AUTO' ? maxVersion : maxName}`);
  }
  const cipherList = (p?.cipher_suites ?? []).length > 0 ? parseCiphers(p!.cipher_suites, joinPath(path, 'cipher_suites')) : ok(DEFAULT_CIPHERS);
  if (!cipherList.ok) return cipherList;
  if (cipherList.value.length === 0 && ORDER.indexOf(minVersion) < ORDER.indexOf('TLSv1.3')) {
    return fail(joinPath(path, 'cipher_suites'), `Failed to initialize cipher suites ${p!.cipher_suites.join(':')}: no TLS 1.2 cipher left`);
  }
  const custom = (p?.ecdh_curves ?? []).length > 0;
  const curves = custom ? p!.ecdh_curves : DEFAULT_CURVES;
  for (const [i, c] of (custom ? curves : []).entries()) {
    if (!accepted({ ecdhCurve: c })) return fail(joinPath(path, `ecdh_curves[${i}]`), `Failed to initialize ECDH curves ${curves.join(':')}`);
  }
  const sig = p?.signature_algorithms ?? [];
  for (const [i, s] of sig.entries()) {
    if (!accepted({ sigalgs: s })) return fail(joinPath(path, `signature_algorithms[${i}]`), `Failed to initialize TLS signature algorithms ${sig.join(':')}`);
  }
  const ciphers = [TLS13_SUITES, ...cipherList.value].join(':');
  return ok({ minVersion, maxVersion, ciphers, ecdhCurve: curves.join(':'), sigalgs: sig.length > 0 ? sig.join(':') : undefined });
}
