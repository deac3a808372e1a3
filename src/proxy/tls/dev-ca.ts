// Development mesh CA: root CAs, leaf certificates (SPIFFE URI, DNS, IP, email SANs), PKCS#10 CSRs
// and CSR signing, for RSA 2048 and ECDSA P-256 keys. Keys come from node:crypto; certificates and
// CSRs are DER built with node-forge's asn1 codec and signed with node:crypto (forge cannot sign
// with or embed EC keys). Everything is synchronous and throws: DevCaInputError for a bad argument
// (SAN, SPIFFE ID, lifetime), Error for a bad CA (key not matching, not a CA) or CSR (bad signature).

import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';
import {
  DevCaInputError, OID, bitString, bool, children, commonNameOf, ctx, extension, fromDer, generalNames, isCtx, keyIdentifier, name, nul, octets, oid, oidOf,
  parseGeneralNames, pem, pemBlocks, positiveInt, sanCount, seq, set, smallInt, time, toDer, valueBytes, type Node, type Sans,
} from './dev-ca-der.ts';

export { DevCaInputError };
export type KeyType = 'rsa' | 'ecdsa'; // RSA 2048 / ECDSA P-256
export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}
export interface Validity {
  /** Lifetime in days, counted from notBefore if given, else from now. */
  days?: number;
  notBefore?: Date;
  notAfter?: Date;
}
export interface RootCaOptions extends Validity {
  commonName?: string;
  keyType?: KeyType;
}
export interface IssueOptions extends Validity {
  commonName?: string;
  spiffeId?: string;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  emails?: string[];
  keyType?: KeyType;
  /** An intermediate CA instead of a leaf. */
  isCa?: boolean;
}
export interface CsrOptions {
  commonName?: string;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
}
export interface SignCsrOptions {
  days?: number;
  /** Replace the URI SANs the CSR asks for. */
  uris?: string[];
  /** Replace the DNS SANs the CSR asks for. */
  dnsNames?: string[];
}

const CA_DAYS = 3650; // 10 years
const LEAF_DAYS = 90;
const SKEW_MS = 5 * 60 * 1000; // notBefore backdated 5 min for clock skew
const DAY_MS = 24 * 60 * 60 * 1000;

export function generateKey(keyType: KeyType = 'rsa'): string {
  const pair = keyType === 'ecdsa' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  if (!namespace || !serviceAccount) throw new DevCaInputError(`invalid SPIFFE ID ${id}: namespace and service account are required`);
  return checkSpiffeId(id);
}

/** The ID itself if it is a valid SPIFFE ID (spiffe://<trust-domain>/<path>), else throws DevCaInputError. */
export function checkSpiffeId(id: string): string {
  if (!SPIFFE_ID.test(id) || /\/\.\.?(\/|$)/.test(id.slice('spiffe://'.length))) {
    throw new DevCaInputError(`invalid SPIFFE ID ${JSON.stringify(id)}: want spiffe://<trust-domain>/<path> (lowercase trust domain; path segments of [A-Za-z0-9._-])`);
  }
  return id;
}

export function createRootCa(o: RootCaOptions = {}): Issued {
  const keyPem = generateKey(o.keyType);
  const key = createPrivateKey(keyPem);
  const spki = spkiOf(key);
  const subject = name(o.commonName ?? 'legate-dev CA');
  const ski = keyIdentifier(spki);
  const certPem = buildCertificate({ issuer: subject, subject, spki, signer: key, validity: validity(o, CA_DAYS), isCa: true, sans: undefined, ski, aki: ski });
  return { certPem, keyPem };
}

export function issueCertificate(ca: Issued, o: IssueOptions): Issued {
  const issuer = loadCa(ca);
  const sans: Sans = {
    uris: [...(o.spiffeId === undefined ? [] : [checkSpiffeId(o.spiffeId)]), ...(o.uris ?? [])],
    dnsNames: o.dnsNames ?? [],
    ips: o.ips ?? [],
    emails: o.emails ?? [],
  };
  const cn = o.commonName ?? sans.dnsNames[0] ?? shortCn(sans.uris[0]) ?? (o.isCa ? 'legate-dev intermediate CA' : 'legate-dev leaf');
  const keyPem = generateKey(o.keyType);
  const spki = spkiOf(createPrivateKey(keyPem));
  const certPem = buildCertificate({
    issuer: issuer.subject, subject: name(cn), spki, signer: issuer.key, validity: validity(o, o.isCa ? CA_DAYS : LEAF_DAYS), isCa: o.isCa === true, sans, ski: keyIdentifier(spki), aki: issuer.keyId,
  });
  return { certPem, keyPem };
}

/** X.520 caps a CN at 64 characters; a long SPIFFE ID stays in the SAN only. */
const shortCn = (uri: string | undefined): string | undefined => (uri && uri.length <= 64 ? uri : undefined);

export function createCsr(keyPem: string, o: CsrOptions): string {
  const key = createPrivateKey(keyPem);
  const sans: Sans = { uris: o.uris ?? [], dnsNames: o.dnsNames ?? [], ips: o.ips ?? [], emails: [] };
  const attrs = sanCount(sans) === 0 ? [] : [seq([oid(OID.extensionRequest), set([seq([extension(OID.subjectAltName, false, generalNames(sans))])])])];
  const info = seq([smallInt(0), name(o.commonName), fromDer(spkiOf(key)), ctx(0, true, attrs)]);
  return pem('CERTIFICATE REQUEST', signed(key, info));
}

export function signCsr(ca: Issued, csrPem: string, o: SignCsrOptions = {}): string {
  const csr = parseCsr(csrPem);
  const issuer = loadCa(ca);
  const sans: Sans = { ...csr.sans, uris: o.uris ?? csr.sans.uris, dnsNames: o.dnsNames ?? csr.sans.dnsNames };
  if (sanCount(sans) === 0 && children(csr.subject).length === 0) throw new Error('CSR has neither a subject nor subject alternative names');
  return buildCertificate({
    issuer: issuer.subject, subject: csr.subject, spki: csr.spki, signer: issuer.key, validity: validity(o, LEAF_DAYS), isCa: false, sans, ski: keyIdentifier(csr.spki), aki: issuer.keyId,
  });
}

/** What a CSR asks for, after its self-signature verified. */
export interface ParsedCsr {
  readonly subject: Node;
  readonly commonName: string | undefined;
  readonly spki: Buffer;
  readonly sans: Sans;
}

export function parseCsr(csrPem: string): ParsedCsr {
  const der = pemBlocks(csrPem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'])[0];
  if (!der) throw new Error('no PEM CERTIFICATE REQUEST block found');
  let root: Node;
  try {
    root = fromDer(der);
  } catch (e) {
    throw new Error(`CSR is not valid DER: ${e instanceof Error ? e.message : String(e)}`);
  }
  const [info, alg, sig] = children(root);
  const [, subject, spkiNode, attrs] = children(info);
  if (!info || !subject || !spkiNode || !sig) throw new Error('CSR is not a PKCS#10 CertificationRequest');
  const spki = toDer(spkiNode);
  const hash = SIG_HASH[oidOf(children(alg)[0]) ?? ''];
  if (hash === undefined || !verify(hash, toDer(info), createPublicKey({ key: spki, format: 'der', type: 'spki' }), valueBytes(sig).subarray(1))) {
    throw new Error('CSR signature does not verify');
  }
  let sans: Sans = { uris: [], dnsNames: [], ips: [], emails: [] };
  for (const attr of attrs && isCtx(attrs, 0) ? children(attrs) : []) {
    const [type, values] = children(attr);
    if (oidOf(type) !== OID.extensionRequest) continue;
    for (const ext of children(children(values)[0])) {
      const parts = children(ext);
      if (oidOf(parts[0]) === OID.subjectAltName) sans = parseGeneralNames(fromDer(valueBytes(parts[parts.length - 1])));
    }
  }
  return { subject, commonName: commonNameOf(subject), spki, sans };
}

const SIG_HASH: Record<string, string | null> = {
  [OID.sha256WithRsa]: 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  [OID.ecdsaWithSha256]: 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
};

interface LoadedCa {
  readonly key: KeyObject;
  readonly subject: Node;
  readonly keyId: Buffer;
}

function loadCa(ca: Issued): LoadedCa {
  const der = pemBlocks(ca.certPem, ['CERTIFICATE'])[0];
  if (!der) throw new Error('CA certificate: no PEM CERTIFICATE block found');
  const x509 = new X509Certificate(der);
  const key = createPrivateKey(ca.keyPem);
  if (!x509.checkPrivateKey(key)) throw new Error(`CA key does not match the CA certificate (${x509.subject})`);
  if (!x509.ca) throw new Error(`CA certificate ${x509.subject} is not a CA (basicConstraints CA:FALSE or absent)`);
  const tbs = children(children(fromDer(der))[0]);
  const off = tbs[0] && isCtx(tbs[0], 0) ? 1 : 0; // explicit [0] version
  const subject = tbs[off + 4];
  if (!subject) throw new Error('CA certificate has no subject');
  // Chain building matches AKI against the issuer's SKI, so reuse the CA's own when it has one.
  let keyId: Buffer | undefined;
  for (const t of tbs.slice(off + 6)) {
    if (!isCtx(t, 3)) continue;
    for (const ext of children(children(t)[0])) {
      const parts = children(ext);
      if (oidOf(parts[0]) === OID.subjectKeyIdentifier) keyId = valueBytes(fromDer(valueBytes(parts[parts.length - 1])));
    }
  }
  return { key, subject, keyId: keyId ?? keyIdentifier(spkiOf(x509.publicKey)) };
}

const spkiOf = (key: KeyObject): Buffer => (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });

function signatureAlgorithm(key: KeyObject): Node {
  if (key.asymmetricKeyType === 'rsa') return seq([oid(OID.sha256WithRsa), nul()]);
  if (key.asymmetricKeyType === 'ec') return seq([oid(OID.ecdsaWithSha256)]);
  throw new Error(`unsupported signing key type ${key.asymmetricKeyType ?? 'unknown'} (want RSA or ECDSA)`);
}

/** to-be-signed || AlgorithmIdentifier || BIT STRING signature: the shape of certificates and CSRs. */
function signed(key: KeyObject, tbs: Node): Buffer {
  return toDer(seq([tbs, signatureAlgorithm(key), bitString(sign('sha256', toDer(tbs), key))]));
}

function validity(o: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const days = o.days ?? defaultDays;
  if (!Number.isFinite(days) || days <= 0) throw new DevCaInputError(`invalid lifetime ${days} days: must be a positive number`);
  const now = Date.now();
  const notBefore = o.notBefore ?? new Date(now - SKEW_MS);
  const notAfter = o.notAfter ?? new Date((o.notBefore?.getTime() ?? now) + days * DAY_MS);
  if (!(notAfter.getTime() > notBefore.getTime())) throw new DevCaInputError(`notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`);
  return { notBefore, notAfter };
}

interface CertInput {
  readonly issuer: Node;
  readonly subject: Node;
  readonly spki: Buffer;
  readonly signer: KeyObject;
  readonly validity: { notBefore: Date; notAfter: Date };
  readonly isCa: boolean;
  readonly sans: Sans | undefined;
  readonly ski: Buffer;
  readonly aki: Buffer;
}

function buildCertificate(c: CertInput): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) || 0x01; // positive, and all 16 bytes significant
  const spkiNode = fromDer(c.spki);
  const isRsaKey = oidOf(children(children(spkiNode)[0])[0]) === OID.rsaEncryption;
  // KeyUsage bits: digitalSignature(0) keyEncipherment(2) keyCertSign(5) cRLSign(6); EC keys cannot encipher (RFC 5480).
  const keyUsage = c.isCa ? bitString(Buffer.of(0x06), 1) : isRsaKey ? bitString(Buffer.of(0xa0), 5) : bitString(Buffer.of(0x80), 7);
  const exts: Node[] = [
    extension(OID.basicConstraints, true, seq(c.isCa ? [bool(true)] : [])),
    extension(OID.keyUsage, true, keyUsage),
    ...(c.isCa ? [] : [extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth), oid(OID.clientAuth)]))]),
    ...(c.sans && sanCount(c.sans) > 0 ? [extension(OID.subjectAltName, children(c.subject).length === 0, generalNames(c.sans))] : []),
    extension(OID.subjectKeyIdentifier, false, octets(c.ski)),
    extension(OID.authorityKeyIdentifier, false, seq([ctx(0, false, c.aki.toString('binary'))])),
  ];
  const tbs = seq([
    ctx(0, true, [smallInt(2)]), // v3
    positiveInt(serial),
    signatureAlgorithm(c.signer),
    c.issuer,
    seq([time(c.validity.notBefore), time(c.validity.notAfter)]),
    c.subject,
    spkiNode,
    ctx(3, true, [seq(exts)]),
  ]);
  return pem('CERTIFICATE', signed(c.signer, tbs));
}
