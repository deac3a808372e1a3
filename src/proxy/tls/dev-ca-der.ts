// DER building blocks for the dev CA: ASN.1 nodes (via node-forge's asn1 codec, which works on
// binary strings), X.509 names, extensions, GeneralNames (SANs) and PEM framing. A bad SAN throws
// DevCaInputError naming it; a malformed DER throws forge's Error. Nothing here touches keys.

import forge from 'node-forge';
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

const { asn1 } = forge;

/** A bad argument (SAN, SPIFFE ID, lifetime), as opposed to a bad CA or CSR: the CLI exits 2 on these. */
export class DevCaInputError extends Error {
  override readonly name = 'DevCaInputError';
}

export type Node = forge.asn1.Asn1;

const U = asn1.Class.UNIVERSAL;
const CTX = asn1.Class.CONTEXT_SPECIFIC;
const T = asn1.Type;

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const bin = (b: Buffer): string => b.toString('binary');
export const bytes = (s: string): Buffer => Buffer.from(s, 'binary');

export const seq = (items: Node[]): Node => asn1.create(U, T.SEQUENCE, true, items);
export const set = (items: Node[]): Node => asn1.create(U, T.SET, true, items);
export const oid = (o: string): Node => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
export const octets = (b: Buffer): Node => asn1.create(U, T.OCTETSTRING, false, bin(b));
export const bitString = (b: Buffer, unusedBits = 0): Node => asn1.create(U, T.BITSTRING, false, String.fromCharCode(unusedBits) + bin(b));
export const bool = (v: boolean): Node => asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00');
export const nul = (): Node => asn1.create(U, T.NULL, false, '');
export const utf8 = (s: string): Node => asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(s));
export const ctx = (tag: number, constructed: boolean, value: string | Node[]): Node => asn1.create(CTX, tag, constructed, value);
export const smallInt = (n: number): Node => asn1.create(U, T.INTEGER, false, asn1.integerToDer(n).getBytes());
/** A positive INTEGER from big-endian magnitude bytes (minimal encoding). */
export function positiveInt(b: Buffer): Node {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const m = b.subarray(i);
  return asn1.create(U, T.INTEGER, false, bin((m[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.of(0), m]) : m));
}
/** RFC 5280: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(d: Date): Node {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d)) : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export const toDer = (n: Node): Buffer => bytes(asn1.toDer(n).getBytes());
type FromDer = (b: forge.util.ByteBuffer, o: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => Node;
/** Strict DER parse; BIT STRINGs are left as bytes so signatures and keys round-trip. */
export function fromDer(b: Buffer): Node {
  return (asn1.fromDer as unknown as FromDer)(forge.util.createBuffer(bin(b)), { strict: true, parseAllBytes: true, decodeBitStrings: false });
}
export const children = (n: Node | undefined): Node[] => (n && Array.isArray(n.value) ? n.value : []);
export const valueBytes = (n: Node | undefined): Buffer => (n && typeof n.value === 'string' ? bytes(n.value) : Buffer.alloc(0));
export const oidOf = (n: Node | undefined): string | undefined => (n && n.type === T.OID && typeof n.value === 'string' ? asn1.derToOid(n.value) : undefined);
export const isCtx = (n: Node, tag: number): boolean => n.tagClass === CTX && n.type === tag;

/** Name ::= SEQUENCE OF RDN; O=legate-dev then CN, each its own RDN. */
export function name(commonName: string | undefined, organization: string | undefined = 'legate-dev'): Node {
  const rdn = (o: string, v: string): Node => set([seq([oid(o), utf8(v)])]);
  const rdns: Node[] = [];
  if (organization) rdns.push(rdn(OID.organization, organization));
  if (commonName) rdns.push(rdn(OID.commonName, commonName));
  return seq(rdns);
}

/** The CN of a Name, if any (for messages and CLI output). */
export function commonNameOf(n: Node): string | undefined {
  for (const rdn of children(n)) {
    for (const atv of children(rdn)) {
      const [o, v] = children(atv);
      if (oidOf(o) === OID.commonName && v && typeof v.value === 'string') return forge.util.decodeUtf8(v.value);
    }
  }
  return undefined;
}

export function extension(id: string, critical: boolean, value: Node): Node {
  return seq(critical ? [oid(id), bool(true), octets(toDer(value))] : [oid(id), octets(toDer(value))]);
}

/** Subject alternative names, by GeneralName kind. */
export interface Sans {
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  readonly emails: readonly string[];
}
export const sanCount = (s: Sans): number => s.uris.length + s.dnsNames.length + s.ips.length + s.emails.length;

const ia5 = (s: string, what: string): string => {
  if (s === '' || !/^[\x21-\x7e]+$/.test(s)) throw new DevCaInputError(`invalid ${what} SAN ${JSON.stringify(s)}: must be non-empty printable ASCII`);
  return s;
};

export function generalNames(s: Sans): Node {
  const out: Node[] = [];
  for (const e of s.emails) out.push(ctx(1, false, ia5(e, 'email')));
  for (const d of s.dnsNames) out.push(ctx(2, false, ia5(d, 'DNS')));
  for (const u of s.uris) {
    if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(ia5(u, 'URI'))) throw new DevCaInputError(`invalid URI SAN ${JSON.stringify(u)}: no scheme`);
    out.push(ctx(6, false, u));
  }
  for (const ip of s.ips) out.push(ctx(7, false, bin(ipBytes(ip))));
  return seq(out);
}

export function parseGeneralNames(n: Node): Sans {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const ips: string[] = [];
  const emails: string[] = [];
  for (const g of children(n)) {
    if (g.tagClass !== CTX || typeof g.value !== 'string') continue; // otherName, dirName...: not copied
    if (g.type === 1) emails.push(g.value);
    else if (g.type === 2) dnsNames.push(g.value);
    else if (g.type === 6) uris.push(g.value);
    else if (g.type === 7) ips.push(ipString(bytes(g.value)));
  }
  return { uris, dnsNames, ips, emails };
}

export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip) || ip.includes('%')) throw new DevCaInputError(`invalid IP SAN ${JSON.stringify(ip)}`);
  let s = ip;
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1] && v4[2]) {
    const b = ipBytes(v4[2]);
    s = `${v4[1]}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function ipString(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return `0x${b.toString('hex')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1); // canonical (compressed) form
}

/** RFC 5280 key identifier, method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const key = valueBytes(children(fromDer(spkiDer))[1]);
  return createHash('sha1').update(key.subarray(1)).digest();
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** DER of every PEM block whose label is one of `labels`, in order. */
export function pemBlocks(text: string, labels: readonly string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)) {
    if (m[1] !== undefined && labels.includes(m[1])) out.push(Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64'));
  }
  return out;
}
