// Test PKI: a mesh CA and the certificates TLS/mTLS/SPIFFE/RBAC tests need, made once per process
// (RSA keygen is the slow part) with the dev CA, and a writer that puts them on disk as PEM files.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCa, issueCertificate, spiffeId, type Issued } from '../../src/proxy/tls/dev-ca.ts';

export type { Issued } from '../../src/proxy/tls/dev-ca.ts';

export const SERVER_ID = spiffeId('cluster.local', 'default', 'server');
export const CLIENT_ID = spiffeId('cluster.local', 'default', 'client');
export const INTRUDER_ID = spiffeId('cluster.local', 'default', 'intruder');

export interface TestPki {
  /** The trusted mesh root (RSA). */
  readonly ca: Issued;
  /** A second, untrusted root (ECDSA), distinct subject. */
  readonly otherCa: Issued;
  /** DNS localhost, *.example.com; URI spiffe://cluster.local/ns/default/sa/server (RSA). */
  readonly server: Issued;
  /** URI spiffe://cluster.local/ns/default/sa/client (RSA). */
  readonly client: Issued;
  /** The client identity, signed by `ca`, expired since yesterday. */
  readonly expiredClient: Issued;
  /** The client identity signed by `otherCa`. */
  readonly untrustedClient: Issued;
  /** URI spiffe://cluster.local/ns/default/sa/intruder, signed by `ca`. */
  readonly wrongIdClient: Issued;
  /** As `server` with an ECDSA P-256 key. */
  readonly ecdsaServer: Issued;
  /** As `client` with an ECDSA P-256 key. */
  readonly ecdsaClient: Issued;
  /** DNS other.example.com only (SNI tests). */
  readonly server2: Issued;
  /** URI spiffe://cluster.local/ns/default/sa/server only, no DNS SAN (as a mesh workload's). */
  readonly serverSpiffe: Issued;
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached) return cached;
  const day = 24 * 60 * 60 * 1000;
  const ca = createRootCa({ commonName: 'legate test CA', keyType: 'rsa' });
  const otherCa = createRootCa({ commonName: 'legate other test CA', keyType: 'ecdsa' });
  const serverSans = { spiffeId: SERVER_ID, dnsNames: ['localhost', '*.example.com'] };
  cached = Object.freeze({
    ca,
    otherCa,
    server: issueCertificate(ca, { commonName: 'localhost', ...serverSans }),
    client: issueCertificate(ca, { commonName: 'client', spiffeId: CLIENT_ID }),
    expiredClient: issueCertificate(ca, { commonName: 'client', spiffeId: CLIENT_ID, notBefore: new Date(Date.now() - 2 * day), notAfter: new Date(Date.now() - day) }),
    untrustedClient: issueCertificate(otherCa, { commonName: 'client', spiffeId: CLIENT_ID, keyType: 'ecdsa' }),
    wrongIdClient: issueCertificate(ca, { commonName: 'intruder', spiffeId: INTRUDER_ID, keyType: 'ecdsa' }),
    ecdsaServer: issueCertificate(ca, { commonName: 'localhost', ...serverSans, keyType: 'ecdsa' }),
    ecdsaClient: issueCertificate(ca, { commonName: 'client', spiffeId: CLIENT_ID, keyType: 'ecdsa' }),
    server2: issueCertificate(ca, { commonName: 'other.example.com', dnsNames: ['other.example.com'], keyType: 'ecdsa' }),
    serverSpiffe: issueCertificate(ca, { commonName: 'server', spiffeId: SERVER_ID, keyType: 'ecdsa' }),
  });
  return cached;
}

export interface PkiFiles {
  readonly cert: string;
  readonly key: string;
}

/** Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (mode 0600) for each entry; returns their paths by name. */
export function writePki<K extends string>(dir: string, issued: Record<K, Issued>): Record<K, PkiFiles> {
  mkdirSync(dir, { recursive: true });
  const out = {} as Record<K, PkiFiles>;
  for (const name of Object.keys(issued) as K[]) {
    const cert = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    writeFileSync(cert, issued[name].certPem);
    writeFileSync(key, issued[name].keyPem, { mode: 0o600 });
    chmodSync(key, 0o600);
    out[name] = { cert, key };
  }
  return out;
}
