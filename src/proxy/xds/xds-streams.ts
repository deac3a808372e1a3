// The xDS manager's subscriptions: one per (resource type, source), on the right transport -- the
// one ADS stream (SotW StreamAggregatedResources or delta DeltaAggregatedResources) carrying every
// type whose source is `ads`, a per-type stream (StreamClusters, DeltaRoutes, ...) shared by the
// sources naming the same server, or a file. Each subscription's resource names can change
// (RDS/EDS follow the config); files deliver every resource they hold.

import type { Node__Output } from '../../generated/envoy/config/core/v3/Node.ts';
import type { StatsStore } from '../stats.ts';
import { METHODS, TYPE_URL, type DiscoveryMethod } from '../../xds-client/codec.ts';
import { GrpcChannelPool, type GrpcApiType, type GrpcTarget } from '../../xds-client/grpc-transport.ts';
import { SotwStream } from '../../xds-client/sotw-subscription.ts';
import { DeltaStream } from '../../xds-client/delta-subscription.ts';
import { FileSubscription } from '../../xds-client/file-subscription.ts';
import type { InitOutcome, InvalidHandler, ResourceDecoder, UpdateHandler } from '../../xds-client/subscription.ts';
import type { AdsPlan, SourceSpec } from './sources.ts';

export type XdsType = 'cluster' | 'endpoint' | 'listener' | 'route' | 'secret';

const METHOD: Record<XdsType, { sotw: DiscoveryMethod; delta: DiscoveryMethod }> = {
  cluster: { sotw: METHODS.streamClusters, delta: METHODS.deltaClusters },
  endpoint: { sotw: METHODS.streamEndpoints, delta: METHODS.deltaEndpoints },
  listener: { sotw: METHODS.streamListeners, delta: METHODS.deltaListeners },
  route: { sotw: METHODS.streamRoutes, delta: METHODS.deltaRoutes },
  secret: { sotw: METHODS.streamSecrets, delta: METHODS.deltaSecrets },
};

/** A subscription as the manager holds it. */
export interface XdsSubscription {
  readonly initialized: Promise<InitOutcome>;
  /** Last accepted version_info (delta: system_version_info). */
  readonly version: string;
  /** True when removals come as a full state (SotW, files), false for delta. */
  readonly stateOfTheWorld: boolean;
  setNames(names: readonly string[] | undefined): void;
  close(): void;
}

export interface SubscribeOptions<T> {
  readonly type: XdsType;
  readonly spec: SourceSpec;
  readonly decoder: ResourceDecoder<T>;
  /** undefined = wildcard. */
  readonly names: readonly string[] | undefined;
  readonly onUpdate: UpdateHandler<T>;
  readonly onInvalid?: InvalidHandler<T>;
  /** Subscription stats prefix (`cluster_manager.cds.`); undefined = the caller counts. */
  readonly statPrefix: string | undefined;
}

type Stream = SotwStream | DeltaStream;

export class XdsStreams {
  readonly #pool = new GrpcChannelPool();
  readonly #node: Node__Output | null;
  readonly #stats: StatsStore;
  readonly #ads: AdsPlan | undefined;
  readonly #streams = new Map<string, Stream>();
  readonly #subs: XdsSubscription[] = [];

  constructor(o: { readonly node: Node__Output | null; readonly stats: StatsStore; readonly ads: AdsPlan | undefined }) {
    this.#node = o.node;
    this.#stats = o.stats;
    this.#ads = o.ads;
  }

  subscribe<T>(o: SubscribeOptions<T>): XdsSubscription {
    const src = o.spec.source;
    if (src.kind === 'file') {
      const f = new FileSubscription<T>({ path: src.path, watchedDirectory: src.watchedDirectory, decoder: o.decoder, names: undefined, onUpdate: o.onUpdate, ...(o.onInvalid ? { onInvalid: o.onInvalid } : {}), stats: this.#stats, statPrefix: o.statPrefix ?? `xds.${o.type}.` });
      const sub: XdsSubscription = {
        initialized: f.initialized,
        get version() {
          return f.version;
        },
        stateOfTheWorld: true,
        setNames: () => undefined,
        close: () => f.close(),
      };
      this.#subs.push(sub);
      return sub;
    }
    let stream: Stream;
    if (src.kind === 'ads') {
      if (!this.#ads) throw new Error('XdsStreams: an ads source without ads_config');
      stream = this.#stream('ads', this.#ads.target, this.#ads.apiType, this.#ads.apiType === 'DELTA_GRPC' ? METHODS.deltaAggregated : METHODS.streamAggregated, this.#ads.setNodeOnFirstMessageOnly);
    } else {
      const m = METHOD[o.type];
      const method = src.apiType === 'DELTA_GRPC' ? m.delta : m.sotw;
      stream = this.#stream(`${o.spec.key}:${method.path}`, src.target, src.apiType, method, src.setNodeOnFirstMessageOnly);
    }
    const h = stream.subscribe(TYPE_URL[o.type], { decoder: o.decoder, names: o.names, onUpdate: o.onUpdate, ...(o.onInvalid ? { onInvalid: o.onInvalid } : {}), statPrefix: o.statPrefix, initialFetchTimeoutMs: o.spec.initialFetchTimeoutMs });
    const sub: XdsSubscription = {
      initialized: h.initialized,
      get version() {
        return h.version;
      },
      stateOfTheWorld: stream instanceof SotwStream,
      setNames: (n) => h.setNames(n),
      close: () => h.close(),
    };
    this.#subs.push(sub);
    return sub;
  }

  #stream(key: string, target: GrpcTarget, apiType: GrpcApiType, method: DiscoveryMethod, setNodeOnFirstMessageOnly: boolean): Stream {
    let s = this.#streams.get(key);
    if (!s) {
      const o = { pool: this.#pool, target, method, node: this.#node, setNodeOnFirstMessageOnly, stats: this.#stats };
      s = apiType === 'DELTA_GRPC' ? new DeltaStream(o) : new SotwStream(o);
      this.#streams.set(key, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.#subs.splice(0)) s.close();
    for (const s of this.#streams.values()) s.close();
    this.#streams.clear();
    this.#pool.close();
  }
}
