// The SecretsConfigDump of /config_dump (what `istioctl proxy-config secret` reads): static
// secrets, SDS secrets received (dynamic_active_secrets) and SDS secrets still awaited
// (dynamic_warming_secrets). Each Secret is rebuilt from the resolved value: PEM as inline_bytes
// (a file-backed one by its filename), private keys `[redacted]` as Envoy prints them; validation
// matchers other than the trusted CA are not shown.

import type { TlsSecret } from '../tls/types.ts';
import type { DynamicSecret } from '../tls/secret-manager-main.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const DUMP_TYPE = 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump';

function dataSource(pem: string, source: string): Record<string, string> {
  const isFile = source !== '<inline>' && source !== '<system>' && !source.startsWith('sds:');
  return isFile ? { filename: source } : { inline_bytes: Buffer.from(pem).toString('base64') };
}

function secretJson(name: string, s: TlsSecret): Record<string, unknown> {
  if (s.kind === 'tls_certificate') {
    return { '@type': SECRET_TYPE, name, tls_certificate: { certificate_chain: dataSource(s.certificateChain, s.source), private_key: { inline_string: '[redacted]' } } };
  }
  return { '@type': SECRET_TYPE, name, validation_context: s.trustedCa !== undefined ? { trusted_ca: dataSource(s.trustedCa, s.source) } : {} };
}

export interface SecretsDumpInput {
  readonly staticSecrets: ReadonlyMap<string, TlsSecret>;
  readonly dynamic: ReadonlyMap<string, DynamicSecret>;
  /** Every SDS name subscribed to. */
  readonly sdsNames: readonly string[];
  /** When static secrets were loaded. */
  readonly loadedAt: Date;
}

export function secretsConfigDump(d: SecretsDumpInput): Record<string, unknown> {
  const ts = (t: Date): string => t.toISOString();
  return {
    '@type': DUMP_TYPE,
    static_secrets: [...d.staticSecrets].map(([name, s]) => ({ name, last_updated: ts(d.loadedAt), secret: secretJson(name, s) })),
    dynamic_active_secrets: [...d.dynamic].map(([name, s]) => ({ name, version_info: s.version, last_updated: ts(s.lastUpdated), secret: secretJson(name, s.secret) })),
    dynamic_warming_secrets: d.sdsNames.filter((n) => !d.dynamic.has(n)).map((name) => ({ name, secret: { '@type': SECRET_TYPE, name } })),
  };
}
