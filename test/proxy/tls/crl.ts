// Test helper: a PEM X.509 v2 CRL signed by a dev-CA root (RSA, sha256WithRSAEncryption), made
// with a few lines of DER since neither node:crypto nor the dev CA writes CRLs.

import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import type { Issued } from '../../helpers/certs.ts';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(body.length), body]);
const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const int = (hex: string): Buffer => {
  let b = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
};
const utcTime = (d: Date): Buffer => tlv(0x17, Buffer.from(d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z'), 'ascii'));
const SHA256_RSA = seq(tlv(0x06, Buffer.from('2a864886f70d01010b', 'hex')), Buffer.from([0x05, 0x00]));

/** Reads one DER element at `off`: its full encoding and where its contents start. */
function element(der: Buffer, off: number): { start: number; end: number; body: number } {
  let l = der[off + 1]!;
  let body = off + 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    l = 0;
    for (let i = 0; i < n; i++) l = (l << 8) | der[off + 2 + i]!;
    body += n;
  }
  return { start: off, end: body + l, body };
}

/** The subject Name of a certificate, as DER (a CRL's issuer must be byte-identical). */
function subjectDer(certPem: string): Buffer {
  const der = new X509Certificate(certPem).raw;
  const tbs = element(der, element(der, 0).body);
  let off = tbs.body;
  if (der[off] === 0xa0) off = element(der, off).end; // [0] version
  for (let i = 0; i < 4; i++) off = element(der, off).end; // serial, signature, issuer, validity
  const subject = element(der, off);
  return der.subarray(subject.start, subject.end);
}

/** A CRL from `ca` revoking the certificates with these (hex) serial numbers. */
export function makeCrl(ca: Issued, revokedSerials: readonly string[]): string {
  const now = Date.now();
  const revoked = revokedSerials.map((s) => seq(int(s), utcTime(new Date(now - 60_000))));
  const tbs = seq(int('01'), SHA256_RSA, subjectDer(ca.certPem), utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + 86_400_000)), ...(revoked.length ? [seq(...revoked)] : []));
  const sig = sign('sha256', tbs, createPrivateKey(ca.keyPem));
  const crl = seq(tbs, SHA256_RSA, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  return `-----BEGIN X509 CRL-----\n${crl.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END X509 CRL-----\n`;
}
