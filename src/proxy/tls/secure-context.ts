// The node:tls SecureContext(s) of one TLS config on one worker, rebuilt whenever a secret it
// reads changes (SDS push, static value): new handshakes use the new certificate, established
// connections keep the context they were made with. A rebuild that OpenSSL rejects is logged and
// the previous context stays in use.

import { constants, createHash, X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { logger } from '../log.ts';
import { CertValidator, dnsNameMatch } from './cert-validator.ts';
import { mergeValidation, secretNames, type CommonTlsConfig, type DownstreamTlsConfig, type UpstreamTlsConfig } from './context-config.ts';
import type { CertificateSecret, SecretStore, ValidationSecret } from './types.ts';

const log = logger('connection');

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

/** One build of a config: the contexts and the validator handshakes use until the next rebuild. */
export interface BuiltContext {
  readonly secureContext: tls.SecureContext;
  /** Server with several certificates of one key type: picks them by SNI (Envoy's selection). */
  readonly sniCallback: SniCallback | undefined;
  readonly validator: CertValidator | undefined;
  readonly certificates: readonly CertificateSecret[];
  readonly validation: ValidationSecret | undefined;
  /** Increases with each rebuild (client session caches are dropped when it changes). */
  readonly generation: number;
}

interface LoadedCert {
  readonly secret: CertificateSecret;
  readonly keyType: string;
  readonly names: readonly string[];
}

function loadCert(secret: CertificateSecret): LoadedCert {
  const leaf = new X509Certificate(secret.certificateChain);
  const dns = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  return { secret, keyType: leaf.publicKey.asymmetricKeyType ?? 'unknown', names: dns.length > 0 ? dns : cn ? [cn] : [] };
}

/** First certificate of each key type (OpenSSL keeps one per type and picks by the peer's sigalgs). */
function onePerKeyType(certs: readonly LoadedCert[]): LoadedCert[] {
  const seen = new Set<string>();
  return certs.filter((c) => (seen.has(c.keyType) ? false : (seen.add(c.keyType), true)));
}

export class TlsContextProvider {
  readonly #cfg: DownstreamTlsConfig | UpstreamTlsConfig;
  readonly #secrets: SecretStore;
  readonly #unwatch: (() => void)[] = [];
  #built: BuiltContext | undefined;
  #dirty = true;
  #generation = 0;

  constructor(cfg: DownstreamTlsConfig | UpstreamTlsConfig, secrets: SecretStore) {
    this.#cfg = cfg;
    this.#secrets = secrets;
    for (const name of new Set(secretNames(cfg))) {
      this.#unwatch.push(secrets.watch(name, () => void (this.#dirty = true)));
    }
  }

  get config(): CommonTlsConfig {
    return this.#cfg;
  }

  /** Every secret the config names is in the store with the right kind. */
  ready(): boolean {
    // Secrets are only ever replaced, never removed: a clean build stays ready.
    return (!this.#dirty && this.#built !== undefined) || this.#resolve() !== undefined;
  }

  /** The current build (rebuilt first if a secret changed); undefined while not ready. */
  current(): BuiltContext | undefined {
    if (!this.#dirty && this.#built) return this.#built;
    const r = this.#resolve();
    if (!r) return this.#built;
    try {
      this.#built = this.#build(r.certs, r.validation);
      this.#dirty = false;
    } catch (e) {
      log.error(`TLS context rebuild failed, keeping the previous one: ${(e as Error).message}`);
      this.#dirty = false;
    }
    return this.#built;
  }

  close(): void {
    for (const u of this.#unwatch.splice(0)) u();
  }

  #resolve(): { certs: CertificateSecret[]; validation: ValidationSecret | undefined } | undefined {
    const certs: CertificateSecret[] = [];
    for (const c of this.#cfg.certificates) {
      if (c.kind === 'inline') certs.push(c.secret);
      else {
        const s = this.#secrets.get(c.name);
        if (s?.kind !== 'tls_certificate') return undefined;
        certs.push(s);
      }
    }
    const v = this.#cfg.validation;
    let validation: ValidationSecret | undefined;
    if (v?.kind === 'inline') validation = v.secret;
    else if (v) {
      const s = this.#secrets.get(v.kind === 'combined' ? v.ref.name : v.name);
      if (s?.kind !== 'validation_context') return undefined;
      validation = v.kind === 'combined' ? mergeValidation(v.defaults, s) : s;
    }
    return { certs, validation };
  }

  #build(certSecrets: CertificateSecret[], validation: ValidationSecret | undefined): BuiltContext {
    const cfg = this.#cfg;
    const server = cfg.side === 'downstream';
    const validator = validation ? new CertValidator(validation) : undefined;
    const certs = certSecrets.map(loadCert);
    const ca = validator?.caBundle();
    // Sessions (IDs and tickets) carry this: one made under other certificates or trust does not resume.
    const sidCtx = createHash('sha256')
      .update(certSecrets.map((c) => c.certificateChain).join('|'))
      .update(JSON.stringify(validation ?? null, (_k, x: unknown) => (x instanceof Map ? [...x] : x)))
      .digest('hex')
      .slice(0, 32);
    const base: tls.SecureContextOptions = {
      minVersion: cfg.params.minVersion,
      maxVersion: cfg.params.maxVersion,
      ciphers: cfg.params.ciphers,
      ecdhCurve: cfg.params.ecdhCurve,
      ...(cfg.params.sigalgs ? { sigalgs: cfg.params.sigalgs } : {}),
      ...(ca ? { ca } : {}),
      ...(validation?.crl ? { crl: validation.crl } : {}),
      sessionIdContext: sidCtx,
    };
    if (cfg.side === 'downstream') {
      base.honorCipherOrder = true;
      if (cfg.ticketKeysHex) base.ticketKeys = Buffer.from(cfg.ticketKeysHex, 'hex');
      if (cfg.sessionTimeoutS !== undefined) base.sessionTimeout = cfg.sessionTimeoutS;
      if (cfg.disableStatelessResumption) base.secureOptions = constants.SSL_OP_NO_TICKET;
    }
    const make = (chosen: readonly LoadedCert[]): tls.SecureContext =>
      tls.createSecureContext({
        ...base,
        ...(chosen.length > 0
          ? {
              cert: chosen.map((c) => c.secret.certificateChain),
              key: chosen.map((c) => (c.secret.password !== undefined ? { pem: c.secret.privateKey, passphrase: c.secret.password } : { pem: c.secret.privateKey })),
            }
          : {}),
      });
    const defaults = onePerKeyType(certs);
    const secureContext = make(defaults);
    let sniCallback: SniCallback | undefined;
    if (server && defaults.length < certs.length) {
      const cache = new Map<string, tls.SecureContext>();
      sniCallback = (servername, cb) => {
        const name = servername.toLowerCase();
        let chosen = certs.filter((c) => c.names.some((n) => n.toLowerCase() === name));
        if (chosen.length === 0) chosen = certs.filter((c) => c.names.some((n) => n.startsWith('*.') && dnsNameMatch(name, n)));
        if (chosen.length === 0) return cb(null, secureContext);
        const pick = onePerKeyType(chosen);
        const key = pick.map((c) => certs.indexOf(c)).join(',');
        let ctx = cache.get(key);
        if (!ctx) cache.set(key, (ctx = make(pick)));
        cb(null, ctx);
      };
    }
    return { secureContext, sniCallback, validator, certificates: certSecrets, validation, generation: ++this.#generation };
  }
}
