// What the xDS manager's two sides (clusters.ts: CDS/EDS, listeners.ts: LDS/RDS) share: the
// entries they keep, the update they build for the workers, and the manager services they call
// (XdsContext: pushing an update, gauges, SDS references, the cross-side questions).

import { createHash } from 'node:crypto';
import type { Cluster__Output } from '../../generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { StaticConfig } from '../../config/static-config.ts';
import { decodeJson, encodeBinary } from '../../config/decode.ts';
import type { ConfigError } from '../../config/result.ts';
import type { SdsReference, TlsParseHooks } from '../../filters/registry.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import type { ListenerConfig } from '../listener/listener-config.ts';
import type { StatsStore } from '../stats.ts';
import type { XdsWorkerUpdate } from '../worker/messages.ts';
import type { DecodedResource } from '../../xds-client/subscription.ts';
import type { DynamicResourcesPlan, SourceSpec } from './sources.ts';
import type { ListenerRefs } from './references.ts';
import type { XdsStreams, XdsSubscription } from './xds-streams.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';

export type Update<T> = { readonly resources: readonly DecodedResource<T>[]; readonly removed: readonly string[]; readonly version: string };

export interface ClusterEntry {
  readonly name: string;
  readonly proto: Cluster__Output;
  readonly config: ClusterConfig;
  readonly version: string;
  readonly lastUpdated: Date;
  readonly hash: string;
  /** EDS clusters: the ClusterLoadAssignment name and where it comes from. */
  readonly eds: { readonly name: string; readonly spec: SourceSpec } | undefined;
}

export interface ListenerEntry {
  readonly name: string;
  readonly proto: Listener__Output;
  readonly config: ListenerConfig;
  readonly version: string;
  readonly lastUpdated: Date;
  readonly hash: string;
  readonly refs: ListenerRefs;
  /** Route configuration names it needs, with their sources. */
  readonly rds: ReadonlyMap<string, SourceSpec>;
}

export interface ResourceEntry<T> {
  readonly proto: T;
  readonly version: string;
  readonly lastUpdated: Date;
  readonly hash: string;
}

export interface ListenerErrorState {
  readonly failed: Listener__Output;
  readonly details: string;
  readonly at: Date;
}

/** What /config_dump reads. */
export interface XdsDumpState {
  readonly cdsVersion: string;
  readonly ldsVersion: string;
  readonly activeClusters: ReadonlyMap<string, ClusterEntry>;
  readonly warmingClusters: ReadonlyMap<string, ClusterEntry>;
  readonly activeListeners: ReadonlyMap<string, ListenerEntry>;
  readonly warmingListeners: ReadonlyMap<string, ListenerEntry>;
  readonly drainingListeners: ReadonlyMap<string, ListenerEntry>;
  readonly listenerErrors: ReadonlyMap<string, ListenerErrorState>;
  readonly routes: ReadonlyMap<string, ResourceEntry<RouteConfiguration__Output>>;
  readonly endpoints: ReadonlyMap<string, ResourceEntry<ClusterLoadAssignment__Output>>;
}

export interface XdsManagerOptions {
  readonly config: StaticConfig;
  readonly plan: DynamicResourcesPlan;
  /** Main-thread stats. */
  readonly stats: StatsStore;
  /** Sends an update to every worker (in order); resolves when they all replied. */
  readonly push: (update: XdsWorkerUpdate) => Promise<void>;
  /** Drain time of removed/replaced listeners (total_listeners_draining), ms. */
  readonly drainTimeMs: number;
  /** Number of workers (listener_manager.listener_create_success counts one per worker). */
  readonly workers: number;
  /** An SDS secret an accepted dynamic resource's TLS context refers to (its sds_config checked): subscribe to it. */
  readonly onSdsRef?: (ref: SdsReference) => void;
}

/** One update for the workers, built by the handlers and pushed in order by the manager. */
export interface MutableUpdate {
  routes: RouteConfiguration__Output[];
  clusters: Array<{ cluster: Cluster__Output; endpoints?: ClusterLoadAssignment__Output }>;
  endpoints: Array<{ clusterName: string; assignment: ClusterLoadAssignment__Output }>;
  listeners: Listener__Output[];
  removeListeners: string[];
  removeClusters: string[];
  removeRoutes: string[];
}

export function newUpdate(): MutableUpdate {
  return { routes: [], clusters: [], endpoints: [], listeners: [], removeListeners: [], removeClusters: [], removeRoutes: [] };
}

/** TLS hooks for parsing one update: records SDS references, checks their sds_config, subscribes once accepted. */
export interface SdsCollector {
  readonly hooks: TlsParseHooks;
  check(): ConfigError[];
  subscribe(): void;
}

/** The manager's services the CDS/EDS and LDS/RDS sides call. */
export interface XdsContext {
  readonly o: XdsManagerOptions;
  readonly streams: XdsStreams;
  /** Queues `update` for the workers (after every update queued before it); wakes start()'s waits. */
  enqueue(update: MutableUpdate): void;
  /** Sets the cluster_manager.* and listener_manager.* gauges from both sides. */
  gauges(): void;
  sdsCollector(): SdsCollector;
  /** Clusters an active listener or its route configurations refer to (LDS/RDS side). */
  referencedClusters(): Set<string>;
  /** Removes clusters CDS dropped that nothing refers to any more (CDS/EDS side). */
  collectClusterRemovals(update: MutableUpdate): void;
}

export const hashOf = (typeName: string, proto: unknown): string => createHash('sha1').update(encodeBinary(typeName, proto)).digest('base64');

export function emptyAssignment(name: string): ClusterLoadAssignment__Output {
  const r = decodeJson<ClusterLoadAssignment__Output>('envoy.config.endpoint.v3.ClusterLoadAssignment', { cluster_name: name });
  if (!r.ok) throw new Error(`empty ClusterLoadAssignment: ${r.errors[0]?.reason}`);
  return r.value;
}

/** A version string as a gauge value: its number when numeric, else a stable 48-bit hash. */
export function versionNumber(v: string): number {
  return /^\d{1,15}$/.test(v) ? Number(v) : createHash('sha256').update(v).digest().readUIntBE(0, 6);
}

export type NamedSubscriptions = Map<string, { sub: XdsSubscription; names: string }>;

/** Brings per-source subscriptions (EDS or RDS names) to `want`: new ones created, changed ones re-named, unwanted ones emptied. */
export function syncNamed(subs: NamedSubscriptions, want: Map<string, { spec: SourceSpec; names: Set<string> }>, create: (spec: SourceSpec, names: string[]) => XdsSubscription): void {
  for (const [key, w] of want) {
    const names = [...w.names].sort();
    const joined = names.join('\0');
    const cur = subs.get(key);
    if (!cur) {
      if (names.length > 0) subs.set(key, { sub: create(w.spec, names), names: joined });
    } else if (cur.names !== joined) {
      cur.names = joined;
      cur.sub.setNames(names);
    }
  }
  for (const [key, cur] of subs) {
    if (!want.has(key) && cur.names !== '') {
      cur.names = '';
      cur.sub.setNames([]);
    }
  }
}

/** One initial_fetch_timeout timer per warming resource, by name (unref'd: they never keep the process up). */
export class WarmingTimers {
  readonly #timers = new Map<string, LongTimer>();

  /** Runs `fire` after `ms` unless cancelled first; replaces the name's earlier timer. */
  start(name: string, ms: number, fire: () => void): void {
    this.cancel(name);
    const t = setLongTimeout(() => {
      this.#timers.delete(name);
      fire();
    }, ms);
    t.unref();
    this.#timers.set(name, t);
  }

  cancel(name: string): void {
    this.#timers.get(name)?.clear();
    this.#timers.delete(name);
  }

  close(): void {
    for (const t of this.#timers.values()) t?.clear();
    this.#timers.clear();
  }
}
