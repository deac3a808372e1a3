// An incremental (delta) discovery stream (Envoy's NewGrpcMuxImpl): one bidirectional gRPC stream
// carrying one or more resource types. Per type it tracks the names of interest and the version of
// every accepted resource; the first request of each stream subscribes to the names (empty =
// wildcard) with initial_resource_versions, later ones carry only the changes. An accepted
// response is ACKed with its nonce, a rejected one NACKed with error_detail {code 3, message} and
// nothing of it applied. A stream that ends is reopened after a jittered exponential back-off.

import type { ConfigError } from '../config/result.ts';
import { logger } from '../proxy/log.ts';
import { DELTA_REQUEST, DELTA_RESPONSE, GRPC_INVALID_ARGUMENT, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse__Output } from './codec.ts';
import { DiscoveryConnection, typeCommon } from './discovery-connection.ts';
import { ok } from '../config/result.ts';
import { decodeResource, nackMessage, sortDecoded, type DecodedResource, type InitialFetch, type Subscription } from './subscription.ts';
import { label, type SubscriptionStats } from './subscription-stats.ts';
import type { StreamOptions, TypeSubscriptionOptions } from './sotw-subscription.ts';

const log = logger('config');

interface TypeState {
  readonly opts: TypeSubscriptionOptions<unknown>;
  readonly stats: SubscriptionStats | undefined;
  /** Names of interest; undefined = wildcard. */
  names: Set<string> | undefined;
  /** Accepted resources' versions (initial_resource_versions on a new stream). */
  readonly versions: Map<string, string>;
  systemVersion: string;
  readonly init: InitialFetch;
}

export class DeltaStream {
  readonly #types = new Map<string, TypeState>();
  readonly #conn: DiscoveryConnection<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>;

  constructor(o: StreamOptions) {
    this.#conn = new DiscoveryConnection(
      o,
      { req: DELTA_REQUEST, res: DELTA_RESPONSE },
      {
        onOpen: () => {
          for (const [typeUrl, st] of this.#types) this.#sendInitial(typeUrl, st);
        },
        onResponse: (m) => this.#onResponse(m),
        onFailure: () => {
          for (const st of this.#types.values()) st.stats?.outcome('failure');
        },
      },
      false,
    );
  }

  subscribe<T>(typeUrl: string, opts: TypeSubscriptionOptions<T>): Subscription & { setNames(names: readonly string[] | undefined): void } {
    if (this.#types.has(typeUrl)) throw new Error(`DeltaStream: ${typeUrl} already subscribed`);
    const o = opts as TypeSubscriptionOptions<unknown>;
    const st: TypeState = { opts: o, ...typeCommon(this.#conn.o, typeUrl, o), names: opts.names ? new Set(opts.names) : undefined, versions: new Map(), systemVersion: '' };
    this.#types.set(typeUrl, st);
    if (this.#conn.isOpen) this.#sendInitial(typeUrl, st);
    else this.#conn.open();
    const self = this;
    return {
      initialized: st.init.promise,
      get version() {
        return st.systemVersion;
      },
      setNames(names) {
        const next = names ? new Set(names) : undefined;
        const prev = st.names;
        st.names = next;
        if (!self.#conn.isOpen) return;
        const subscribe = next ? [...next].filter((n) => !prev?.has(n)) : ['*'];
        const unsubscribe = prev ? [...prev].filter((n) => !next?.has(n)) : [];
        for (const n of unsubscribe) st.versions.delete(n);
        self.#conn.write({ type_url: typeUrl, resource_names_subscribe: subscribe, resource_names_unsubscribe: unsubscribe });
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

  #sendInitial(typeUrl: string, st: TypeState): void {
    this.#conn.write({
      type_url: typeUrl,
      resource_names_subscribe: st.names ? [...st.names] : [],
      initial_resource_versions: Object.fromEntries(st.versions),
    });
  }

  #onResponse(m: DeltaDiscoveryResponse__Output): void {
    const st = this.#types.get(m.type_url);
    if (!st) {
      log.warn(`ignoring a delta response for unwatched type URL ${m.type_url} from ${this.#conn.o.target.description}`);
      return;
    }
    const started = performance.now();
    const errors: ConfigError[] = [];
    const added: DecodedResource<unknown>[] = [];
    const invalid: DecodedResource<unknown>[] = [];
    m.resources.forEach((res, i) => {
      const path = `resources[${i}]`;
      if (!res.resource) return void errors.push({ path: `${path}.resource`, reason: `resource '${res.name}' has no body` });
      // The delta Resource's own name and version win over what the body says.
      const r = decodeResource(st.opts.decoder, res.resource, path);
      sortDecoded(r.ok ? ok({ ...r.value, name: res.name || r.value.name, version: res.version }) : r, added, invalid, errors);
    });
    if (invalid.length > 0) st.opts.onInvalid?.(invalid);
    const wanted = st.names;
    const mine = wanted ? added.filter((d) => wanted.has(d.name)) : added;
    const removed = m.removed_resources.filter((n) => !wanted || wanted.has(n));
    if (errors.length === 0 && (mine.length > 0 || removed.length > 0 || !wanted)) {
      errors.push(...st.opts.onUpdate({ resources: mine, removed, version: m.system_version_info }));
    }
    if (errors.length > 0) {
      const message = nackMessage(errors);
      log.warn(`${label(st.opts.statPrefix ?? m.type_url)}: rejecting delta update (nonce ${m.nonce}): ${message}`);
      st.stats?.outcome('rejected');
      this.#conn.write({ type_url: m.type_url, response_nonce: m.nonce, error_detail: { code: GRPC_INVALID_ARGUMENT, message, details: [] } });
      return st.init.done('rejected');
    }
    for (const d of mine) st.versions.set(d.name, d.version ?? '');
    for (const n of removed) st.versions.delete(n);
    st.systemVersion = m.system_version_info;
    this.#conn.write({ type_url: m.type_url, response_nonce: m.nonce });
    // A named subscription's response with none of its names changes nothing (a wildcard one still counts).
    if (wanted && mine.length === 0 && removed.length === 0) return;
    st.stats?.outcome('success', m.system_version_info, performance.now() - started);
    st.init.done('success');
  }
}
