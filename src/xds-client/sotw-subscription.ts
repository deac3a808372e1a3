// A state-of-the-world discovery stream (Envoy's GrpcMuxImpl): one bidirectional gRPC stream
// carrying one or more resource types (one for a plain xDS service such as SDS, several for ADS).
// Per type it keeps the last accepted version and nonce, ACKs an accepted response (version_info
// + response_nonce) and NACKs a rejected one (the previous good version_info, the nonce, and
// error_detail {code 3, message}). The node goes on the first request of each stream (and on every
// request unless set_node_on_first_message_only). A stream that ends is reopened after a jittered
// exponential back-off; the resources already accepted stay in use meanwhile.

import type { Node__Output } from '../generated/envoy/config/core/v3/Node.ts';
import type { StatsStore } from '../proxy/stats.ts';
import { logger } from '../proxy/log.ts';
import { DISCOVERY_REQUEST, DISCOVERY_RESPONSE, GRPC_INVALID_ARGUMENT, type DiscoveryMethod, type DiscoveryRequest, type DiscoveryResponse__Output } from './codec.ts';
import type { GrpcChannelPool, GrpcTarget } from './grpc-transport.ts';
import type { JitteredBackoff } from './backoff.ts';
import { DiscoveryConnection, typeCommon } from './discovery-connection.ts';
import { decodeResource, nackMessage, sortDecoded, type InvalidHandler, type DecodedResource, type ResourceDecoder, type Subscription, type UpdateHandler } from './subscription.ts';
import { label, type SubscriptionStats } from './subscription-stats.ts';
import type { InitialFetch } from './subscription.ts';
import type { ConfigError } from '../config/result.ts';

const log = logger('config');

export interface StreamOptions {
  readonly pool: GrpcChannelPool;
  readonly target: GrpcTarget;
  readonly method: DiscoveryMethod;
  /** Bootstrap node (sent as identity); null sends none. */
  readonly node: Node__Output | null;
  readonly setNodeOnFirstMessageOnly: boolean;
  /** Main-thread stats: `control_plane.connected_state` and each subscription's stats. */
  readonly stats: StatsStore;
  readonly backoff?: JitteredBackoff;
}

export interface TypeSubscriptionOptions<T> {
  readonly decoder: ResourceDecoder<T>;
  /** Resource names to ask for; undefined = wildcard (every resource of the type). */
  readonly names: readonly string[] | undefined;
  readonly onUpdate: UpdateHandler<T>;
  /** Told about resources of a rejected response that decoded but failed validation. */
  readonly onInvalid?: InvalidHandler<T>;
  /** Stat prefix with trailing dot (`sds.default.`); undefined = the subscriber counts its own stats. */
  readonly statPrefix: string | undefined;
  /** 0 = wait forever. */
  readonly initialFetchTimeoutMs: number;
}

interface TypeState {
  readonly opts: TypeSubscriptionOptions<unknown>;
  readonly stats: SubscriptionStats | undefined;
  names: readonly string[] | undefined;
  version: string;
  nonce: string;
  readonly init: InitialFetch;
}

export class SotwStream {
  readonly #types = new Map<string, TypeState>();
  readonly #conn: DiscoveryConnection<DiscoveryRequest, DiscoveryResponse__Output>;

  constructor(o: StreamOptions) {
    this.#conn = new DiscoveryConnection(
      o,
      { req: DISCOVERY_REQUEST, res: DISCOVERY_RESPONSE },
      {
        // A new stream starts with no nonce (Envoy clears them); the accepted versions are kept.
        onOpen: () => {
          for (const [typeUrl, st] of this.#types) {
            st.nonce = '';
            this.#send(typeUrl, st);
          }
        },
        onResponse: (m) => this.#onResponse(m),
        onFailure: () => {
          for (const st of this.#types.values()) st.stats?.outcome('failure');
        },
      },
      true,
    );
  }

  /** Adds a resource type to this stream and (re)sends its request; the stream opens on first use. */
  subscribe<T>(typeUrl: string, opts: TypeSubscriptionOptions<T>): Subscription & { setNames(names: readonly string[] | undefined): void } {
    if (this.#types.has(typeUrl)) throw new Error(`SotwStream: ${typeUrl} already subscribed`);
    const o = opts as TypeSubscriptionOptions<unknown>;
    const st: TypeState = { opts: o, ...typeCommon(this.#conn.o, typeUrl, o), names: opts.names, version: '', nonce: '' };
    this.#types.set(typeUrl, st);
    if (this.#conn.isOpen) this.#send(typeUrl, st);
    else this.#conn.open();
    const self = this;
    return {
      initialized: st.init.promise,
      get version() {
        return st.version;
      },
      setNames(names) {
        st.names = names;
        self.#send(typeUrl, st);
      },
      close() {
        st.init.cancel();
        self.#types.delete(typeUrl);
        if (self.#types.size === 0) self.close();
      },
    };
  }

  close(): void {
    for (const st of this.#types.values()) st.init.cancel();
    this.#conn.close();
  }

  #send(typeUrl: string, st: Pick<TypeState, 'names' | 'version' | 'nonce'>, errorDetail?: string): void {
    this.#conn.write({
      version_info: st.version,
      resource_names: st.names ? [...st.names] : [],
      type_url: typeUrl,
      response_nonce: st.nonce,
      ...(errorDetail !== undefined ? { error_detail: { code: GRPC_INVALID_ARGUMENT, message: errorDetail, details: [] } } : {}),
    });
  }

  #onResponse(m: DiscoveryResponse__Output): void {
    const st = this.#types.get(m.type_url);
    if (!st) {
      log.warn(`ignoring a response for unwatched type URL ${m.type_url} from ${this.#conn.o.target.description}`);
      return;
    }
    st.nonce = m.nonce;
    const started = performance.now();
    const errors: ConfigError[] = [];
    const decoded: DecodedResource<unknown>[] = [];
    const invalid: DecodedResource<unknown>[] = [];
    m.resources.forEach((any, i) => sortDecoded(decodeResource(st.opts.decoder, any, `resources[${i}]`), decoded, invalid, errors));
    if (invalid.length > 0) st.opts.onInvalid?.(invalid);
    // SotW: the subscriber sees the resources it asked for (a resource for a name nobody asked
    // for is ignored, as Envoy's mux does); a named subscription with none of them is not updated.
    const wanted = st.names ? new Set(st.names) : undefined;
    const mine = wanted ? decoded.filter((d) => wanted.has(d.name)) : decoded;
    if (errors.length === 0 && (mine.length > 0 || !wanted)) errors.push(...st.opts.onUpdate({ resources: mine, removed: [], version: m.version_info }));
    else if (errors.length === 0) {
      log.debug(`${label(st.opts.statPrefix ?? m.type_url)}: response ${m.version_info} has none of ${[...(wanted ?? [])].join(', ')}; nothing to update`);
      st.version = m.version_info;
      return this.#send(m.type_url, st);
    }
    if (errors.length > 0) {
      const message = nackMessage(errors);
      log.warn(`${label(st.opts.statPrefix ?? m.type_url)}: rejecting version ${m.version_info} (nonce ${m.nonce}): ${message}`);
      st.stats?.outcome('rejected');
      this.#send(m.type_url, st, message);
      st.init.done('rejected');
      return;
    }
    st.version = m.version_info;
    st.stats?.outcome('success', m.version_info, performance.now() - started);
    log.debug(`${label(st.opts.statPrefix ?? m.type_url)}: accepted version ${m.version_info}`);
    this.#send(m.type_url, st);
    st.init.done('success');
  }
}
