// What a finished handshake tells about both ends (TlsConnectionInfo), read from a TLSSocket: the
// peer's SANs by kind, subject/issuer in Envoy's RFC 2253 order, serial, fingerprint, chain PEM.
// Reading never fails: a missing certificate yields empty fields.

import { X509Certificate } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { sha256Hex } from './pem.ts';
import type { TlsConnectionInfo } from './types.ts';

export interface SubjectAltNames {
  readonly dns: string[];
  readonly uri: string[];
  readonly ip: string[];
  readonly email: string[];
}

/** IPv6 in its shortest form (`::1`), as Envoy prints an IP SAN. */
function canonicalIp(ip: string): string {
  if (!isIPv6(ip)) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

/**
 * Splits X509Certificate.subjectAltName (`DNS:a, URI:b, IP Address:c, email:d`) by kind. Node
 * writes a value holding a comma, quote or control character as a JSON string, so those are
 * decoded rather than split on.
 */
export function parseSubjectAltNames(s: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], uri: [], ip: [], email: [] };
  if (!s) return out;
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const kind = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        value = s.slice(colon + 2, j);
      }
      next = s.indexOf(', ', j + 1);
    } else {
      next = s.indexOf(', ', colon + 1);
      value = s.slice(colon + 1, next < 0 ? s.length : next);
    }
    if (kind === 'DNS') out.dns.push(value);
    else if (kind === 'URI') out.uri.push(value);
    else if (kind === 'IP Address') out.ip.push(canonicalIp(value));
    else if (kind === 'email') out.email.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** X509Certificate.subject/issuer (one RDN per line, most significant first, already escaped) -> RFC 2253 (`CN=...,O=...`). */
export function rfc2253(name: string | undefined): string {
  if (!name) return '';
  return name.split('\n').filter(Boolean).reverse().join(',');
}

/**
 * The peer chain, leaf first, from getPeerCertificate(true) (which follows issuerCertificate
 * links). Call it before getPeerX509Certificate(): on a client socket node returns an empty
 * object from getPeerCertificate once that was called; the leaf alone is the fallback.
 */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: PeerCertificate | undefined = socket.getPeerCertificate(true) as PeerCertificate | undefined;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    const next = (c as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
    c = next && next !== c ? next : undefined;
  }
  if (out.length === 0) {
    const leaf = socket.getPeerX509Certificate();
    if (leaf) out.push(leaf);
  }
  return out;
}

const EMPTY: readonly string[] = Object.freeze([]);

/**
 * The chain as the peer sent it, as far as node lets us see it: getPeerCertificate(true)
 * completes the chain with issuers from our own trust store, so a trailing self-signed root is
 * dropped (peers do not send their root; RFC 8446 4.4.2 lets them omit it). Envoy's XFCC `Chain`
 * and %DOWNSTREAM_PEER_CHAIN% print the presented chain.
 */
export function presentedChain(chain: readonly X509Certificate[]): readonly X509Certificate[] {
  const last = chain[chain.length - 1];
  if (chain.length > 1 && last && last.subject === last.issuer && last.checkIssued(last)) return chain.slice(0, -1);
  return chain;
}

export interface HandshakeFacts {
  readonly peerCertificatePresented: boolean;
  readonly peerCertificateValidated: boolean;
  /** The chain the peer presented, leaf first (as far as it is known). */
  readonly chain: readonly X509Certificate[];
}

export function connectionInfo(socket: TLSSocket, facts: HandshakeFacts): TlsConnectionInfo {
  const cipher = socket.getCipher();
  const leaf = facts.chain[0];
  const peerSans = leaf ? parseSubjectAltNames(leaf.subjectAltName) : undefined;
  const local = socket.getX509Certificate();
  const localSans = local ? parseSubjectAltNames(local.subjectAltName) : undefined;
  const servername = (socket as TLSSocket & { servername?: string | false | null }).servername;
  return {
    version: socket.getProtocol() ?? '',
    cipher: cipher?.name ?? '',
    alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : undefined,
    sni: typeof servername === 'string' && servername !== '' ? servername : undefined,
    sessionReused: socket.isSessionReused(),
    peerCertificatePresented: facts.peerCertificatePresented,
    peerCertificateValidated: facts.peerCertificateValidated,
    peerUriSans: peerSans?.uri ?? EMPTY,
    peerDnsSans: peerSans?.dns ?? EMPTY,
    peerIpSans: peerSans?.ip ?? EMPTY,
    peerEmailSans: peerSans?.email ?? EMPTY,
    peerSubject: rfc2253(leaf?.subject),
    peerIssuer: rfc2253(leaf?.issuer),
    peerSerial: leaf ? leaf.serialNumber.toLowerCase() : '',
    peerFingerprintSha256: leaf ? sha256Hex(leaf) : '',
    peerCertificatePem: leaf ? leaf.toString() : '',
    peerChainPem: presentedChain(facts.chain).map((c) => c.toString()).join(''),
    peerValidFrom: leaf ? leaf.validFromDate : undefined,
    peerValidTo: leaf ? leaf.validToDate : undefined,
    localUriSans: localSans?.uri ?? EMPTY,
    localDnsSans: localSans?.dns ?? EMPTY,
    localSubject: rfc2253(local?.subject),
  };
}
