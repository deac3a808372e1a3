// The suite's certificates, minted at start with legate's dev CA into the suite's temp dir: one
// ECDSA P-256 root (Istio's default key type), a server leaf (DNS localhost, IP 127.0.0.1, SPIFFE
// URI …/sa/server) used by the upstream's HTTPS ports and every proxy's TLS listener, and a client
// leaf (SPIFFE URI …/sa/client) presented by proxies to the mTLS upstream and by autocannon to mTLS
// listeners. Files are PEM; `*.pem` holds certificate + key (HAProxy's `crt`).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCa, issueCertificate, spiffeId } from '../../src/proxy/tls/dev-ca.ts';

export const SERVER_NAME = 'localhost';
export const SERVER_ID = spiffeId('cluster.local', 'bench', 'server');

export interface PemFiles {
  readonly cert: string;
  readonly key: string;
  /** Certificate followed by key. */
  readonly combined: string;
}

export interface BenchPki {
  readonly caFile: string;
  readonly server: PemFiles;
  readonly client: PemFiles;
}

export function mintPki(dir: string): BenchPki {
  const ca = createRootCa({ commonName: 'legate bench CA', keyType: 'ecdsa' });
  const server = issueCertificate(ca, { commonName: SERVER_NAME, dnsNames: [SERVER_NAME], ips: ['127.0.0.1'], spiffeId: SERVER_ID, keyType: 'ecdsa' });
  const client = issueCertificate(ca, { commonName: 'bench-client', spiffeId: spiffeId('cluster.local', 'bench', 'client'), keyType: 'ecdsa' });
  const put = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    return f;
  };
  const files = (name: string, i: { certPem: string; keyPem: string }): PemFiles => ({
    cert: put(`${name}.crt`, i.certPem),
    key: put(`${name}.key`, i.keyPem),
    combined: put(`${name}.pem`, `${i.certPem.trimEnd()}\n${i.keyPem}`),
  });
  return { caFile: put('ca.crt', ca.certPem), server: files('server', server), client: files('client', client) };
}
