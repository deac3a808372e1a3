// PEM helpers shared by the TLS config parsers and the runtime: splitting bundles into
// certificates and parsing them. Pure functions; a bad block yields an error string, never a throw.

import { X509Certificate } from 'node:crypto';

const CERT_BLOCK = /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----[\s\S]*?-----END (?:X509 |TRUSTED )?CERTIFICATE-----/g;

/** The CERTIFICATE blocks of a PEM bundle, in order (anything between them is ignored, as OpenSSL does). */
export function pemCertificateBlocks(pem: string): string[] {
  return [...pem.matchAll(CERT_BLOCK)].map((m) => m[0]);
}

/** Parses every certificate of a PEM bundle; `error` names the first that does not parse. */
export function parsePemCertificates(pem: string): { certs: X509Certificate[] } | { error: string } {
  const blocks = pemCertificateBlocks(pem);
  if (blocks.length === 0) return { error: 'not a PEM certificate' };
  const certs: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(b));
    } catch (e) {
      return { error: `certificate ${i} does not parse: ${(e as Error).message}` };
    }
  }
  return { certs };
}

/** Like parsePemCertificates, for callers holding an already validated bundle (bad blocks are skipped). */
export function certificatesOf(pem: string | undefined): X509Certificate[] {
  if (!pem) return [];
  const out: X509Certificate[] = [];
  for (const b of pemCertificateBlocks(pem)) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // validated at config time; a bad block here cannot happen
    }
  }
  return out;
}

/** Hex SHA-256 of a certificate's DER, lower case without colons (Envoy's verify_certificate_hash form). */
export function sha256Hex(cert: X509Certificate): string {
  return cert.fingerprint256.replaceAll(':', '').toLowerCase();
}
