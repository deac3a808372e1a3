// The main thread's secrets (Envoy's SecretManager): the bootstrap's static secrets plus the SDS
// ones, each SDS name subscribed once. Every SDS update is validated here (parseSecret: PEM parses,
// key matches the certificate) before it is pushed to every worker; a bad one is NACKed and the
// previous secret stays in use everywhere. Holds the current values for new workers and /certs.

import type { Secret__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { StaticConfig } from '../../config/static-config.ts';
import type { SdsReference } from '../../filters/registry.ts';
import { createRequire } from 'node:module';
import { fail, type Result } from '../../config/result.ts';
import type { StatsStore } from '../stats.ts';
import { logger } from '../log.ts';
import type { AdsSecretSource, SdsClient } from '../../xds-client/sds-client.ts';
import type { InitOutcome } from '../../xds-client/subscription.ts';
import { MemorySecretStore } from './secret-store.ts';

const lazy = createRequire(import.meta.url);
import type { TlsSecret } from './types.ts';

const log = logger('secret');

/** A dynamic secret as the main thread holds it (for /certs and /config_dump). */
export interface DynamicSecret {
  readonly secret: TlsSecret;
  readonly version: string;
  readonly lastUpdated: Date;
}

/** Validates an SDS Secret resource named `name`: Envoy's SdsApi checks, then parseSecret. */
export function validateSdsSecret(msg: Secret__Output, name: string): Result<TlsSecret> {
  if (msg.name !== name) return fail('name', `Unexpected SDS secret (expecting ${name}): ${msg.name}`);
  // Required on the first SDS update: node:tls stays out of a config without TLS.
  return (lazy('./secret-config.ts') as typeof import('./secret-config.ts')).parseSecret(msg, '');
}

export class SecretManagerMain {
  /** Static and dynamic secrets by name, as every worker's store holds them. */
  readonly store: MemorySecretStore;
  readonly #dynamic = new Map<string, DynamicSecret>();
  readonly #config: StaticConfig;
  readonly #push: (name: string, secret: TlsSecret) => void;
  #sds: SdsClient<TlsSecret> | undefined;
  readonly #newSdsClient: () => SdsClient<TlsSecret>;
  #started = false;
  /** SDS secrets named by dynamic resources (not in the bootstrap). */
  readonly #extra = new Map<string, SdsReference>();

  /** `push` sends a validated secret to every worker (none yet before they start); `ads` carries SDS over ADS. */
  constructor(config: StaticConfig, stats: StatsStore, push: (name: string, secret: TlsSecret) => void, ads?: AdsSecretSource) {
    this.#config = config;
    this.#push = push;
    this.store = new MemorySecretStore(config.secrets);
    // The SDS client (and the xDS client code) is required on the first subscription: a config
    // without SDS never loads it.
    this.#newSdsClient = () =>
      new (lazy('../../xds-client/sds-client.ts') as typeof import('../../xds-client/sds-client.ts')).SdsClient<TlsSecret>({
        clusters: config.clusters,
        node: config.bootstrap.node,
        stats,
        validate: validateSdsSecret,
        onSecret: (name, secret, version) => this.#onSecret(name, secret, version),
        ads,
      });
  }

  #client(): SdsClient<TlsSecret> {
    return (this.#sds ??= this.#newSdsClient());
  }

  /** Opens one subscription per SDS secret name (sds_config already checked by buildStaticConfig). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const ref of this.#config.sdsRefs) {
      const r = this.#client().subscribe(ref.name, ref.configSource, ref.path);
      if (!r.ok) log.error(`cannot subscribe to SDS secret '${ref.name}': ${r.errors.map((e) => `${e.path}: ${e.reason}`).join('; ')}`);
    }
  }

  /**
   * Subscribes to an SDS secret a dynamic (xDS) resource's TLS context names, once per name (its
   * sds_config already checked by the xDS manager). The secret reaches the workers when it arrives.
   */
  subscribeDynamic(ref: SdsReference): void {
    if (this.#extra.has(ref.name) || this.#config.sdsRefs.some((r) => r.name === ref.name)) return;
    this.#extra.set(ref.name, ref);
    const r = this.#client().subscribe(ref.name, ref.configSource, ref.path);
    if (!r.ok) log.error(`cannot subscribe to SDS secret '${ref.name}': ${r.errors.map((e) => `${e.path}: ${e.reason}`).join('; ')}`);
  }

  /** Resolves when every SDS secret's first fetch has ended (Envoy's init targets). */
  initialized(): Promise<ReadonlyMap<string, InitOutcome>> {
    return this.#sds?.initialized() ?? Promise.resolve(new Map());
  }

  /** The SDS secrets held now, by name (what a worker starting now must know). */
  dynamicSecrets(): Record<string, TlsSecret> {
    return Object.fromEntries([...this.#dynamic].map(([n, d]) => [n, d.secret]));
  }

  dynamic(): ReadonlyMap<string, DynamicSecret> {
    return this.#dynamic;
  }

  /** SDS names subscribed to, whether or not a value arrived. */
  sdsNames(): readonly string[] {
    return [...this.#config.sdsRefs.map((r) => r.name), ...this.#extra.keys()];
  }

  close(): void {
    this.#sds?.close();
  }

  #onSecret(name: string, secret: TlsSecret, version: string): void {
    const prev = this.#dynamic.get(name);
    this.#dynamic.set(name, { secret, version, lastUpdated: new Date() });
    // The same content again (a re-sent version, a reconnect): nothing for the workers to rebuild.
    if (prev && sameSecret(prev.secret, secret)) return;
    this.store.set(name, secret);
    this.#push(name, secret);
  }
}

function sameSecret(a: TlsSecret, b: TlsSecret): boolean {
  const norm = (s: TlsSecret): string => JSON.stringify(s, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
  return norm(a) === norm(b);
}
