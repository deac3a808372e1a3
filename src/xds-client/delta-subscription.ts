// An incremental (delta) discovery stream (Envoy's NewGrpcMuxImpl): one bidirectional gRPC stream
// carrying one or more resource types. Per type it tracks the names of interest and the version of
// every accepted resource; the first request of each stream subscribes to the names (empty =
// wildcard) with initial_resource_versions, later ones carry only the changes. An accepted
// response is ACKed with its nonce, a rejected one NACKed with error_detail {code 3, message} and
// nothing of it applied. A stream that ends is reopened after a jittered exponential back-off.

import type * as grpc from '@grpc/grpc-js';
import type { StatsStore } from '../proxy/stats.ts';
import type { ConfigError } from '../config/result.ts';
import { logger } from '../proxy/log.ts';
import { DELTA_REQUEST, DELTA_RESPONSE, GRPC_INVALID_ARGUMENT, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse__Output } from './codec.ts';
import type { DiscoveryStream } from './grpc-transport.ts';
import { JitteredBackoff } from './backoff.ts';
import { InitialFetch, decodeResource, nackMessage, type DecodedResource, type Subscription } from './subscription.ts';
import { SubscriptionStats, label } from './subscription-stats.ts';
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
  readonly #o: StreamOptions;
  readonly #types = new Map<string, TypeState>();
  readonly #backoff: JitteredBackoff;
  #stream: DiscoveryStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output> | undefined;
  #sentNode = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: StreamOptions) {
    this.#o = o;
    this.#backoff = o.backoff ?? new JitteredBackoff();
  }

  subscribe<T>(typeUrl: string, opts: TypeSubscriptionOptions<T>): Subscription & { setNames(names: readonly string[] | undefined): void } {
    if (this.#types.has(typeUrl)) throw new Error(`DeltaStream: ${typeUrl} already subscribed`);
    const st: TypeState = {
      opts: opts as TypeSubscriptionOptions<unknown>,
      stats: opts.statPrefix === undefined ? undefined : new SubscriptionStats(this.#o.stats, opts.statPrefix),
      names: opts.names ? new Set(opts.names) : undefined,
      versions: new Map(),
      systemVersion: '',
      init: new InitialFetch(opts.initialFetchTimeoutMs, () => {
        log.warn(`${label(opts.statPrefix ?? typeUrl)}: initial fetch timed out after ${opts.initialFetchTimeoutMs} ms (${this.#o.target.description})`);
        st.stats?.outcome('init_fetch_timeout');
      }),
    };
    this.#types.set(typeUrl, st);
    st.stats?.started();
    if (this.#stream) this.#sendInitial(typeUrl, st);
    else this.#open();
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
        if (!self.#stream) return;
        const subscribe = next ? [...next].filter((n) => !prev?.has(n)) : ['*'];
        const unsubscribe = prev ? [...prev].filter((n) => !next?.has(n)) : [];
        for (const n of unsubscribe) st.versions.delete(n);
        self.#write({ type_url: typeUrl, resource_names_subscribe: subscribe, resource_names_unsubscribe: unsubscribe });
      },
      close() {
        st.init.cancel();
        self.#types.delete(typeUrl);
        if (self.#types.size === 0) self.close();
      },
    };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    for (const st of this.#types.values()) st.init.cancel();
    const s = this.#stream;
    this.#stream = undefined;
    s?.cancel();
    this.#o.stats.gauge('control_plane.connected_state', 'max').set(0);
  }

  #open(): void {
    if (this.#closed || this.#stream) return;
    const s = this.#o.pool.open(this.#o.target, this.#o.method, DELTA_REQUEST, DELTA_RESPONSE);
    this.#stream = s;
    this.#sentNode = false;
    s.on('data', (m: DeltaDiscoveryResponse__Output) => this.#onResponse(s, m));
    let ended = false;
    const onEnd = (e: grpc.StatusObject | Error): void => {
      if (ended) return;
      ended = true;
      this.#onStreamEnd(s, e);
    };
    s.on('error', onEnd);
    s.on('status', onEnd);
    for (const [typeUrl, st] of this.#types) this.#sendInitial(typeUrl, st);
  }

  #onStreamEnd(s: DiscoveryStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>, e: grpc.StatusObject | Error): void {
    if (this.#stream !== s) return;
    this.#stream = undefined;
    this.#o.stats.gauge('control_plane.connected_state', 'max').set(0);
    if (this.#closed) return;
    for (const st of this.#types.values()) st.stats?.outcome('failure');
    const wait = this.#backoff.next();
    log.warn(`${this.#o.method.path} stream to ${this.#o.target.description} closed: ${'code' in e ? `${e.code} ${e.details}` : e.message}; retrying in ${wait} ms`);
    this.#retryTimer = setTimeout(() => this.#open(), wait);
    this.#retryTimer.unref();
  }

  #write(req: DeltaDiscoveryRequest): void {
    const s = this.#stream;
    if (!s) return;
    const withNode = !this.#sentNode || !this.#o.setNodeOnFirstMessageOnly;
    this.#sentNode = true;
    s.write(withNode && this.#o.node ? { ...req, node: this.#o.node } : req);
  }

  #sendInitial(typeUrl: string, st: TypeState): void {
    this.#write({
      type_url: typeUrl,
      resource_names_subscribe: st.names ? [...st.names] : [],
      initial_resource_versions: Object.fromEntries(st.versions),
    });
  }

  #onResponse(s: DiscoveryStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>, m: DeltaDiscoveryResponse__Output): void {
    if (this.#stream !== s) return;
    this.#backoff.reset();
    this.#o.stats.gauge('control_plane.connected_state', 'max').set(1);
    const st = this.#types.get(m.type_url);
    if (!st) {
      log.warn(`ignoring a delta response for unwatched type URL ${m.type_url} from ${this.#o.target.description}`);
      return;
    }
    const started = performance.now();
    const errors: ConfigError[] = [];
    const added: DecodedResource<unknown>[] = [];
    const invalid: DecodedResource<unknown>[] = [];
    m.resources.forEach((res, i) => {
      const path = `resources[${i}]`;
      if (!res.resource) return void errors.push({ path: `${path}.resource`, reason: `resource '${res.name}' has no body` });
      const r = decodeResource(st.opts.decoder, res.resource, path);
      if (!r.ok) return void errors.push(...r.errors);
      const d = { name: res.name || r.value.name, resource: r.value.resource, version: res.version };
      if (r.value.invalid) {
        errors.push(...r.value.invalid);
        invalid.push({ ...d, invalid: r.value.invalid });
      } else added.push(d);
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
      this.#write({ type_url: m.type_url, response_nonce: m.nonce, error_detail: { code: GRPC_INVALID_ARGUMENT, message, details: [] } });
      return st.init.done('rejected');
    }
    for (const d of mine) st.versions.set(d.name, d.version ?? '');
    for (const n of removed) st.versions.delete(n);
    st.systemVersion = m.system_version_info;
    this.#write({ type_url: m.type_url, response_nonce: m.nonce });
    // A named subscription's response with none of its names changes nothing (a wildcard one still counts).
    if (wanted && mine.length === 0 && removed.length === 0) return;
    st.stats?.outcome('success', m.system_version_info, performance.now() - started);
    st.init.done('success');
  }
}
