// Envoy's TLS command operators (`%DOWNSTREAM_PEER_URI_SAN%`, `%UPSTREAM_TLS_VERSION%`...) as
// extractors over StreamInfo.downstreamTls / upstreamTls. Anything the connection does not have
// (plaintext, no client certificate) extracts nothing, which the formatter prints as `-`.
// Compiling fails only for a malformed argument; nothing here throws at log time.

import { X509Certificate, createHash } from 'node:crypto';
import type { StreamInfo } from './stream-info.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';
import { compileTimeFormat } from './formatter-time.ts';
import { urlEncodePem } from './xfcc.ts';
import type { Extractor } from './formatter-operators.ts';

type Side = (i: StreamInfo) => TlsConnectionInfo | undefined;
type Read = (t: TlsConnectionInfo) => string | undefined;

const SIDES: Record<string, Side> = {
  DOWNSTREAM: (i) => i.downstreamTls,
  UPSTREAM: (i) => i.upstreamTls,
};

function text(s: string | undefined): string | undefined {
  return s === '' ? undefined : s;
}

/** SANs of one kind, comma-joined as Envoy does. */
function list(xs: readonly string[]): string | undefined {
  return xs.length === 0 ? undefined : xs.join(',');
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function chain(t: TlsConnectionInfo): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of t.peerChainPem.match(PEM_BLOCK) ?? []) {
    try {
      out.push(new X509Certificate(m));
    } catch {
      // a certificate node cannot read is left out
    }
  }
  return out;
}

function sha1Hex(c: X509Certificate): string {
  return createHash('sha1').update(c.raw).digest('hex');
}

function sha256Hex(c: X509Certificate): string {
  return createHash('sha256').update(c.raw).digest('hex');
}

function leaf(t: TlsConnectionInfo): X509Certificate | undefined {
  if (!t.peerCertificatePem) return undefined;
  try {
    return new X509Certificate(t.peerCertificatePem);
  } catch {
    return undefined;
  }
}

/** `<SIDE>_<what>` operators without an argument. */
const READERS: Record<string, Read> = {
  PEER_URI_SAN: (t) => list(t.peerUriSans),
  PEER_DNS_SAN: (t) => list(t.peerDnsSans),
  PEER_IP_SAN: (t) => list(t.peerIpSans),
  PEER_EMAIL_SAN: (t) => list(t.peerEmailSans),
  LOCAL_URI_SAN: (t) => list(t.localUriSans),
  LOCAL_DNS_SAN: (t) => list(t.localDnsSans),
  PEER_SUBJECT: (t) => text(t.peerSubject),
  LOCAL_SUBJECT: (t) => text(t.localSubject),
  PEER_ISSUER: (t) => text(t.peerIssuer),
  TLS_VERSION: (t) => text(t.version),
  TLS_CIPHER: (t) => text(t.cipher),
  PEER_FINGERPRINT_256: (t) => text(t.peerFingerprintSha256),
  PEER_FINGERPRINT_1: (t) => {
    const c = leaf(t);
    return c ? sha1Hex(c) : undefined;
  },
  PEER_SERIAL: (t) => text(t.peerSerial),
  PEER_CERT: (t) => (t.peerCertificatePem ? urlEncodePem(t.peerCertificatePem) : undefined),
};

/** Envoy has the chain operators for the downstream side only. */
const DOWNSTREAM_ONLY: Record<string, Read> = {
  PEER_CHAIN_FINGERPRINTS_256: (t) => list(chain(t).map(sha256Hex)),
  PEER_CHAIN_FINGERPRINTS_1: (t) => list(chain(t).map(sha1Hex)),
  PEER_CHAIN_SERIALS: (t) => list(chain(t).map((c) => c.serialNumber.toLowerCase())),
};

/** Validity bounds, with an optional strftime-style format as START_TIME takes. */
const DATES: Record<string, (t: TlsConnectionInfo) => Date | undefined> = {
  PEER_CERT_V_START: (t) => t.peerValidFrom,
  PEER_CERT_V_END: (t) => t.peerValidTo,
};

/** Whether `name` is a TLS operator legate extracts. */
export function isTlsOperator(name: string): boolean {
  const u = name.indexOf('_');
  if (u < 0 || !(name.slice(0, u) in SIDES)) return false;
  const what = name.slice(u + 1);
  return what in READERS || what in DATES || (name.startsWith('DOWNSTREAM_') && what in DOWNSTREAM_ONLY);
}

/** Compiles a TLS operator, or undefined when `name` is not one (see isTlsOperator). */
export function compileTlsOperator(name: string, arg: string | undefined): Extractor | undefined {
  const u = name.indexOf('_');
  const side = u < 0 ? undefined : SIDES[name.slice(0, u)];
  if (!side) return undefined;
  const what = name.slice(u + 1);
  const read = READERS[what] ?? (name.startsWith('DOWNSTREAM_') ? DOWNSTREAM_ONLY[what] : undefined);
  if (read) {
    return (i) => {
      const t = side(i);
      return t ? read(t) : undefined;
    };
  }
  const date = DATES[what];
  if (!date) return undefined;
  const fmt = compileTimeFormat(arg);
  return (i) => {
    const t = side(i);
    const d = t ? date(t) : undefined;
    return d ? fmt(d.getTime()) : undefined;
  };
}
