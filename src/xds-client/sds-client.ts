// The SDS client (main thread): one subscription per secret name, as Envoy's SdsApi -- a
// SecretDiscoveryService stream (StreamSecrets, or DeltaSecrets for DELTA_GRPC) over the
// ConfigSource's gRPC service, or a file (`path_config_source`, reloaded on change). Each update
// is validated by the caller's `validate`; a bad one is NACKed (or counted as rejected for a file)
// and the previous secret stays. Stats under `sds.<name>.`. SDS over ADS (`ads: {}`) rides the
// ADS stream through an AdsSecretSource. Config problems (an unknown cluster, REST, ADS without
// ads_config) are reported by checkSdsConfigSource before anything starts.

import type { ConfigSource__Output } from '../generated/envoy/config/core/v3/ConfigSource.ts';
import type { Node__Output } from '../generated/envoy/config/core/v3/Node.ts';
import type { Secret__Output } from '../generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { ClusterConfig } from '../proxy/upstream/types.ts';
import type { StatsStore } from '../proxy/stats.ts';
import { logger } from '../proxy/log.ts';
import { ok, type ConfigError, type Result } from '../config/result.ts';
import { METHODS, TYPE_URL } from './codec.ts';
import { GrpcChannelPool, resolveGrpcTarget } from './grpc-transport.ts';
import { checkSdsConfigSource } from '../config/sds-config-source.ts';
import { SotwStream } from './sotw-subscription.ts';
import { DeltaStream } from './delta-subscription.ts';
import { FileSubscription } from './file-subscription.ts';
import { initialFetchTimeoutMs, type DecodedResource, type InitOutcome, type ResourceDecoder, type Subscription, type UpdateHandler } from './subscription.ts';

const log = logger('secret');

export const SECRET_DECODER: ResourceDecoder<Secret__Output> = { typeUrl: TYPE_URL.secret, nameOf: (s) => s.name };

// Config-time checks live in config/ so worker threads can check config without loading grpc-js.
export { checkSdsConfigSource, type SdsSource } from '../config/sds-config-source.ts';

/** One SDS name on the ADS stream: validates a received Secret; the apply step runs only if the whole response is good. */
export interface AdsSecretHandler {
  check(res: DecodedResource<Secret__Output>): { readonly ok: true; apply(version: string): void } | { readonly ok: false; readonly errors: readonly ConfigError[] };
}

/** Secrets on the ADS stream: one SDS subscription per name, sharing the stream's Secret type. */
export interface AdsSecretSource {
  subscribe(name: string, handler: AdsSecretHandler, statPrefix: string, initialFetchTimeoutMs: number): Subscription;
}

export interface SdsClientOptions<S> {
  /** The bootstrap's static clusters (where `envoy_grpc.cluster_name` points). */
  readonly clusters: readonly ClusterConfig[];
  readonly node: Node__Output | null;
  /** Main-thread stats (`sds.<name>.*`, `control_plane.connected_state`). */
  readonly stats: StatsStore;
  /** Validates a received Secret (its name already checked); errors become the NACK. */
  readonly validate: (secret: Secret__Output, name: string) => Result<S>;
  /** A validated secret to use from now on. */
  readonly onSecret: (name: string, secret: S, version: string) => void;
  /** The ADS stream's secrets, when the bootstrap has ads_config. */
  readonly ads?: AdsSecretSource | undefined;
}

export class SdsClient<S> {
  readonly #o: SdsClientOptions<S>;
  readonly #pool = new GrpcChannelPool();
  readonly #subs = new Map<string, Subscription>();

  constructor(o: SdsClientOptions<S>) {
    this.#o = o;
  }

  /** Subscribes to `name` (once: later calls for the same name share the subscription). */
  subscribe(name: string, config: ConfigSource__Output, path: string): Result<Subscription> {
    const existing = this.#subs.get(name);
    if (existing) return ok(existing);
    const src = checkSdsConfigSource(config, this.#o.clusters, path, this.#o.ads !== undefined);
    if (!src.ok) return src;
    const statPrefix = `sds.${name}.`;
    const check = (res: DecodedResource<Secret__Output>): Result<S> => {
      const r = this.#o.validate(res.resource, name);
      return r.ok ? r : { ok: false, errors: r.errors.map((e): ConfigError => ({ path: e.path ? `secret '${name}': ${e.path}` : `secret '${name}'`, reason: e.reason })) };
    };
    const apply = (secret: S, version: string): void => {
      log.info(`secret '${name}' updated (version ${version || '<empty>'})`);
      this.#o.onSecret(name, secret, version);
    };
    const onUpdate: UpdateHandler<Secret__Output> = ({ resources, version }) => {
      if (resources.length === 0) return [{ path: '', reason: `Missing SDS resources for ${name} in onConfigUpdate()` }];
      if (resources.length !== 1) return [{ path: '', reason: `Unexpected SDS secrets length: ${resources.length}` }];
      const res = resources[0]!;
      const r = check(res);
      if (!r.ok) return r.errors;
      // Delta: the resource's own version (as Envoy's SdsApi reports it).
      apply(r.value, res.version || version);
      return [];
    };
    let sub: Subscription;
    if (src.value.kind === 'ads') {
      const handler: AdsSecretHandler = {
        check: (res) => {
          const r = check(res);
          return r.ok ? { ok: true, apply: (version) => apply(r.value, version) } : r;
        },
      };
      sub = this.#o.ads!.subscribe(name, handler, statPrefix, initialFetchTimeoutMs(config.initial_fetch_timeout));
    } else if (src.value.kind === 'file') {
      sub = new FileSubscription({ path: src.value.path, watchedDirectory: src.value.watchedDirectory, decoder: SECRET_DECODER, names: [name], onUpdate, stats: this.#o.stats, statPrefix });
    } else {
      const t = resolveGrpcTarget(config, this.#o.clusters, path);
      if (!t.ok) return t;
      const api = config.api_config_source!;
      const streamOpts = {
        pool: this.#pool,
        target: t.value.target,
        node: this.#o.node,
        setNodeOnFirstMessageOnly: api.set_node_on_first_message_only,
        stats: this.#o.stats,
      };
      const subOpts = { decoder: SECRET_DECODER, names: [name], onUpdate, statPrefix, initialFetchTimeoutMs: initialFetchTimeoutMs(config.initial_fetch_timeout) };
      // One stream per secret, as Envoy opens for a non-ADS SDS subscription.
      sub =
        t.value.apiType === 'DELTA_GRPC'
          ? new DeltaStream({ ...streamOpts, method: METHODS.deltaSecrets }).subscribe(TYPE_URL.secret, subOpts)
          : new SotwStream({ ...streamOpts, method: METHODS.streamSecrets }).subscribe(TYPE_URL.secret, subOpts);
    }
    this.#subs.set(name, sub);
    return ok(sub);
  }

  /** Resolves once every subscription's first fetch has ended (accepted, rejected or timed out). */
  async initialized(): Promise<ReadonlyMap<string, InitOutcome>> {
    const entries = [...this.#subs];
    const outcomes = await Promise.all(entries.map(([, s]) => s.initialized));
    return new Map(entries.map(([n], i) => [n, outcomes[i]!]));
  }

  /** The last accepted version of each secret ('' before any). */
  versions(): ReadonlyMap<string, string> {
    return new Map([...this.#subs].map(([n, s]) => [n, s.version]));
  }

  close(): void {
    for (const s of this.#subs.values()) s.close();
    this.#subs.clear();
    this.#pool.close();
  }
}
