// `/certs` (envoy.admin.v3.Certificates as proto3 JSON): one entry per TLS context -- every
// listener filter chain's DownstreamTlsContext and every cluster's UpstreamTlsContexts -- with its
// CA and its certificates as they are now (SDS secrets from the main thread's copy; a secret
// not yet received shows as an empty list). Pure formatting: never throws on a missing secret.

import type { DownstreamTlsConfig, UpstreamTlsConfig } from '../tls/transport-sockets.ts';
import { createRequire } from 'node:module';
import type { CertificateJson } from '../tls/certs-view.ts';
import type { SecretStore } from '../tls/types.ts';

/** The TLS config code, required only when there is a TLS context to describe (tls/transport-sockets.ts says why). */
const lazy = createRequire(import.meta.url);
const certsView = (): typeof import('../tls/certs-view.ts') => lazy('../tls/certs-view.ts') as typeof import('../tls/certs-view.ts');

export interface CertificatesJson {
  readonly certificates: readonly CertificateJson[];
}

export function certificatesJson(contexts: Iterable<DownstreamTlsConfig | UpstreamTlsConfig>, secrets: SecretStore, now = Date.now()): CertificatesJson {
  const certificates: CertificateJson[] = [];
  for (const cfg of contexts) certificates.push(certsView().describeCertificates(cfg, secrets, now));
  return { certificates };
}
