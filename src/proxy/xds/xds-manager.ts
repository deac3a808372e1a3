// The main thread's xDS manager (Envoy's ClusterManager CDS/EDS side plus ListenerManager LDS/RDS
// side): subscribes to CDS and LDS (wildcard) and to the EDS and RDS names the current config
// refers to; validates every resource of an update with the static-config parsers (one bad
// resource rejects the update for that type: NACK, last good config kept); warms new clusters
// until their first ClusterLoadAssignment and new listeners until every route configuration they
// name has arrived (or initial_fetch_timeout); pushes the result to the workers as
// XdsWorkerUpdates in order; keeps a cluster removed by CDS while an active listener still refers
// to it; and counts Envoy's cluster_manager.* / listener_manager.* / rds / eds stats. `start()`
// resolves when the initial fetch has ended (CDS and its EDS, then LDS and its RDS), as Envoy's
// init manager.

import net from 'node:net';
import { createHash } from 'node:crypto';
import type { Cluster__Output } from '../../generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { StaticConfig } from '../../config/static-config.ts';
import { decodeJson, encodeBinary } from '../../config/decode.ts';
import { joinPath, type ConfigError } from '../../config/result.ts';
import type { ParseContext, SdsReference, TlsParseHooks } from '../../filters/registry.ts';
import { parseCluster, parseClusterLoadAssignment } from '../upstream/config.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import { parseListener, type ListenerConfig } from '../listener/listener-config.ts';
import { compileRouteTable } from '../http/route-table.ts';
import type { XdsWorkerUpdate } from '../worker/messages.ts';
import type { StatsStore } from '../stats.ts';
import { logger } from '../log.ts';
import { TYPE_URL } from '../../xds-client/codec.ts';
import { nackMessage, type DecodedResource, type ResourceDecoder } from '../../xds-client/subscription.ts';
import { SubscriptionStats } from '../../xds-client/subscription-stats.ts';
import { checkSdsConfigSource } from '../../xds-client/sds-client.ts';
import { parseConfigSource, type DynamicResourcesPlan, type SourceSpec } from './sources.ts';
import { listenerRefs, routeClusters, type ListenerRefs } from './references.ts';
import { XdsStreams, type XdsSubscription } from './xds-streams.ts';
import { AdsSecrets } from './ads-secrets.ts';

const log = logger('upstream');
const llog = logger('config');

const CLUSTER_DECODER: ResourceDecoder<Cluster__Output> = { typeUrl: TYPE_URL.cluster, nameOf: (c) => c.name, kind: 'cluster' };
const ENDPOINT_DECODER: ResourceDecoder<ClusterLoadAssignment__Output> = { typeUrl: TYPE_URL.endpoint, nameOf: (la) => la.cluster_name, kind: 'cluster_load_assignment' };
const LISTENER_DECODER: ResourceDecoder<Listener__Output> = { typeUrl: TYPE_URL.listener, nameOf: (l) => l.name, kind: 'listener' };
const ROUTE_DECODER: ResourceDecoder<RouteConfiguration__Output> = { typeUrl: TYPE_URL.route, nameOf: (r) => r.name, kind: 'route_configuration' };

type Update<T> = { readonly resources: readonly DecodedResource<T>[]; readonly removed: readonly string[]; readonly version: string };

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

const hashOf = (typeName: string, proto: unknown): string => createHash('sha1').update(encodeBinary(typeName, proto)).digest('base64');

export class XdsManager {
  readonly #o: XdsManagerOptions;
  readonly #streams: XdsStreams;
  readonly #staticClusters: ReadonlySet<string>;
  readonly #staticListeners: ReadonlySet<string>;
  readonly #activeClusters = new Map<string, ClusterEntry>();
  readonly #warmingClusters = new Map<string, ClusterEntry>();
  readonly #clusterTimers = new Map<string, NodeJS.Timeout>();
  /** Active clusters CDS removed while an active listener still refers to them. */
  readonly #pendingRemoval = new Set<string>();
  readonly #endpoints = new Map<string, ResourceEntry<ClusterLoadAssignment__Output>>();
  readonly #activeListeners = new Map<string, ListenerEntry>();
  readonly #warmingListeners = new Map<string, ListenerEntry>();
  readonly #drainingListeners = new Map<string, ListenerEntry>();
  readonly #listenerTimers = new Map<string, NodeJS.Timeout>();
  readonly #listenerErrors = new Map<string, ListenerErrorState>();
  readonly #routes = new Map<string, ResourceEntry<RouteConfiguration__Output>>();
  readonly #routeClusterCache = new WeakMap<RouteConfiguration__Output, Set<string>>();
  readonly #rdsStats = new Map<string, SubscriptionStats>();
  readonly #edsSubs = new Map<string, { sub: XdsSubscription; names: string }>();
  readonly #rdsSubs = new Map<string, { sub: XdsSubscription; names: string }>();
  /** Port reserved for each port-0 dynamic listener, kept across replacements. */
  readonly #ports = new Map<string, number>();
  /** Static listeners' references: their RDS names (with sources) and clusters. */
  readonly #staticRds: Array<{ readonly routeConfigName: string; readonly statPrefix: string; readonly spec: SourceSpec }> = [];
  readonly #staticClusterRefs = new Set<string>();
  /** SDS over ADS (when the bootstrap has ads_config): the secret manager's SDS client uses it. */
  readonly adsSecrets: AdsSecrets | undefined;
  #cds: XdsSubscription | undefined;
  #lds: XdsSubscription | undefined;
  #queue: Promise<void> = Promise.resolve();
  #waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
  #closed = false;

  constructor(o: XdsManagerOptions) {
    this.#o = o;
    this.#streams = new XdsStreams({ node: o.config.bootstrap.node, stats: o.stats, ads: o.plan.ads });
    this.adsSecrets = o.plan.ads ? new AdsSecrets(this.#streams, o.stats) : undefined;
    this.#staticClusters = new Set(o.config.clusters.map((c) => c.name));
    this.#staticListeners = new Set(o.config.listeners.map((l) => l.name));
    for (const l of o.config.listeners) {
      const refs = listenerRefs(l.raw, '');
      for (const c of refs.clusters) this.#staticClusterRefs.add(c);
      for (const use of refs.rds) {
        const spec = use.configSource ? parseConfigSource(use.configSource, o.config.clusters, o.plan.ads !== undefined, use.path) : undefined;
        if (spec?.ok) this.#staticRds.push({ routeConfigName: use.routeConfigName, statPrefix: use.statPrefix, spec: spec.value });
      }
    }
    const s = o.stats;
    s.gauge('control_plane.pending_requests', 'max').set(0);
    s.counter('control_plane.rate_limit_enforced');
    for (const c of ['cluster_added', 'cluster_modified', 'cluster_removed']) s.counter(`cluster_manager.${c}`);
    for (const c of ['listener_added', 'listener_modified', 'listener_removed', 'listener_create_success', 'listener_create_failure']) s.counter(`listener_manager.${c}`);
    this.#gauges();
  }

  /**
   * Subscribes (CDS first, LDS once the clusters' initial fetch ended) and resolves when the
   * initial fetch has ended: CDS and the warming of its clusters, then LDS and the warming of
   * its listeners, and every resulting update reached the workers.
   */
  async start(): Promise<void> {
    const { cds, lds } = this.#o.plan;
    if (cds) {
      this.#cds = this.#streams.subscribe({
        type: 'cluster',
        spec: cds,
        decoder: CLUSTER_DECODER,
        names: undefined,
        statPrefix: 'cluster_manager.cds.',
        onUpdate: (u) => this.#onCds(u, this.#cds?.stateOfTheWorld ?? true),
      });
      const outcome = await this.#cds.initialized;
      llog.info(`cds: initial fetch ended (${outcome}); ${this.#warmingClusters.size} cluster(s) warming`);
      await this.#until(() => this.#warmingClusters.size === 0);
    }
    if (this.#closed) return;
    if (lds) {
      this.#lds = this.#streams.subscribe({
        type: 'listener',
        spec: lds,
        decoder: LISTENER_DECODER,
        names: undefined,
        statPrefix: 'listener_manager.lds.',
        onUpdate: (u) => this.#onLds(u, this.#lds?.stateOfTheWorld ?? true),
        onInvalid: (bad) => {
          const at = new Date();
          for (const d of bad) this.#listenerErrors.set(d.name, { failed: d.resource, details: nackMessage(d.invalid ?? []), at });
        },
      });
      const outcome = await this.#lds.initialized;
      llog.info(`lds: initial fetch ended (${outcome}); ${this.#warmingListeners.size} listener(s) warming`);
      await this.#until(() => this.#warmingListeners.size === 0);
    }
    if (this.#staticRds.length > 0 && !this.#closed) {
      // Static listeners' RDS: subscribed once the dynamic listeners are in; initialized when all arrived or timed out.
      const update = newUpdate();
      this.#syncRds(update);
      this.#enqueue(update);
      const specs = this.#staticRds.map((r) => r.spec);
      const ms = specs.some((x) => x.initialFetchTimeoutMs === 0) ? 0 : Math.max(...specs.map((x) => x.initialFetchTimeoutMs));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#until(() => this.#staticRds.every((r) => this.#routes.has(r.routeConfigName))),
        ...(ms > 0 ? [new Promise<void>((r) => (timer = setTimeout(r, ms)))] : []),
      ]);
      clearTimeout(timer);
    }
    await this.#queue;
  }

  /** Resolves once every update queued so far reached the workers. */
  flushed(): Promise<void> {
    return this.#queue;
  }

  dumpState(): XdsDumpState {
    return {
      cdsVersion: this.#cds?.version ?? '',
      ldsVersion: this.#lds?.version ?? '',
      activeClusters: this.#activeClusters,
      warmingClusters: this.#warmingClusters,
      activeListeners: this.#activeListeners,
      warmingListeners: this.#warmingListeners,
      drainingListeners: this.#drainingListeners,
      listenerErrors: this.#listenerErrors,
      routes: this.#routes,
      endpoints: this.#endpoints,
    };
  }

  /** Everything active now as one worker update (a worker restarted by the watchdog starts from it). */
  fullUpdate(): XdsWorkerUpdate {
    return {
      routes: [...this.#routes.values()].map((r) => r.proto),
      clusters: [...this.#activeClusters.values()].map((c) => {
        const endpoints = c.eds ? this.#endpoints.get(c.eds.name)?.proto : undefined;
        return endpoints ? { cluster: c.proto, endpoints } : { cluster: c.proto };
      }),
      listeners: [...this.#activeListeners.values()].map((l) => l.proto),
      ports: Object.fromEntries(this.#ports),
    };
  }

  /** Dynamic listeners active now (for /listeners and /certs). */
  activeListenerConfigs(): ListenerConfig[] {
    return [...this.#activeListeners.values()].map((l) => l.config);
  }

  activeClusterConfigs(): ClusterConfig[] {
    return [...this.#activeClusters.values()].map((c) => c.config);
  }

  close(): void {
    this.#closed = true;
    for (const t of [...this.#clusterTimers.values(), ...this.#listenerTimers.values()]) clearTimeout(t);
    this.#streams.close();
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** TLS hooks for parsing one update: records SDS references, checks their sds_config, subscribes once accepted. */
  #sdsCollector(): { hooks: TlsParseHooks; check(): ConfigError[]; subscribe(): void } {
    const refs: SdsReference[] = [];
    return {
      hooks: { staticSecrets: this.#o.config.secrets, sds: (ref) => void refs.push(ref) },
      check: () =>
        refs.flatMap((ref) => {
          const r = checkSdsConfigSource(ref.configSource, this.#o.config.clusters, joinPath(ref.path, 'sds_config'), this.#o.plan.ads !== undefined);
          return r.ok ? [] : [...r.errors];
        }),
      subscribe: () => {
        for (const ref of refs) this.#o.onSdsRef?.(ref);
      },
    };
  }

  // ---- CDS ---------------------------------------------------------------------------------

  #onCds(u: Update<Cluster__Output>, sotw: boolean): ConfigError[] {
    const errors: ConfigError[] = [];
    const parsed: Array<{ r: DecodedResource<Cluster__Output>; config: ClusterConfig; eds: ClusterEntry['eds'] }> = [];
    const seen = new Set<string>();
    const sds = this.#sdsCollector();
    for (const r of u.resources) {
      const path = `cluster '${r.name}'`;
      if (this.#staticClusters.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `'${r.name}' is a static cluster and cannot be added or updated via CDS` });
        continue;
      }
      if (seen.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `duplicate cluster ${r.name} found` });
        continue;
      }
      seen.add(r.name);
      const ctx: ParseContext = { path, clusterNames: undefined, tls: sds.hooks };
      const c = parseCluster(r.resource, path, ctx);
      if (!c.ok) {
        errors.push(...c.errors);
        continue;
      }
      let eds: ClusterEntry['eds'];
      if (c.value.type === 'EDS') {
        const cs = r.resource.eds_cluster_config?.eds_config;
        const spath = joinPath(path, 'eds_cluster_config.eds_config');
        const spec = cs ? parseConfigSource(cs, this.#o.config.clusters, this.#o.plan.ads !== undefined, spath) : undefined;
        if (!spec) errors.push({ path: spath, reason: 'value is required' });
        else if (!spec.ok) errors.push(...spec.errors);
        else eds = { name: r.resource.eds_cluster_config?.service_name || r.name, spec: spec.value };
      }
      parsed.push({ r, config: c.value, eds });
    }
    errors.push(...sds.check());
    if (errors.length > 0) return errors;
    sds.subscribe();

    const update = newUpdate();
    const now = new Date();
    for (const { r, config, eds } of parsed) {
      this.#pendingRemoval.delete(r.name);
      const hash = hashOf('envoy.config.cluster.v3.Cluster', r.resource);
      const current = this.#warmingClusters.get(r.name) ?? this.#activeClusters.get(r.name);
      if (current?.hash === hash) continue;
      const entry: ClusterEntry = { name: r.name, proto: r.resource, config, version: u.version, lastUpdated: now, hash, eds };
      this.#o.stats.counter(this.#activeClusters.has(r.name) || this.#warmingClusters.has(r.name) ? 'cluster_manager.cluster_modified' : 'cluster_manager.cluster_added').inc();
      const known = eds ? this.#endpoints.get(eds.name) : undefined;
      if (!eds || known) {
        this.#cancelClusterWarming(r.name);
        this.#activateCluster(entry, known?.proto, update);
      } else {
        this.#warmCluster(entry);
      }
    }
    const removed = sotw ? [...this.#activeClusters.keys(), ...this.#warmingClusters.keys()].filter((n) => !seen.has(n)) : u.removed;
    for (const n of removed) {
      if (this.#warmingClusters.has(n)) {
        this.#cancelClusterWarming(n);
        this.#warmingClusters.delete(n);
        if (!this.#activeClusters.has(n)) this.#o.stats.counter('cluster_manager.cluster_removed').inc();
      }
      if (this.#activeClusters.has(n)) this.#pendingRemoval.add(n);
    }
    this.#collectClusterRemovals(update);
    this.#syncEds();
    llog.info(`cds: version ${u.version || '<empty>'}: ${update.clusters.length} cluster(s) added or updated, ${this.#warmingClusters.size} warming, ${update.removeClusters.length} removed`);
    this.#enqueue(update);
    return [];
  }

  #warmCluster(entry: ClusterEntry): void {
    this.#cancelClusterWarming(entry.name);
    this.#warmingClusters.set(entry.name, entry);
    const ms = entry.eds!.spec.initialFetchTimeoutMs;
    if (ms > 0) {
      const t = setTimeout(() => {
        this.#clusterTimers.delete(entry.name);
        if (this.#warmingClusters.get(entry.name) !== entry) return;
        log.warn(`cluster '${entry.name}': no ClusterLoadAssignment '${entry.eds!.name}' within ${ms} ms (initial_fetch_timeout); activating it without endpoints`);
        this.#o.stats.counter(`${entry.config.statPrefix}init_fetch_timeout`).inc();
        const update = newUpdate();
        this.#activateCluster(entry, emptyAssignment(entry.eds!.name), update);
        this.#enqueue(update);
      }, ms);
      t.unref();
      this.#clusterTimers.set(entry.name, t);
    }
    this.#gauges();
  }

  #cancelClusterWarming(name: string): void {
    clearTimeout(this.#clusterTimers.get(name));
    this.#clusterTimers.delete(name);
  }

  #activateCluster(entry: ClusterEntry, endpoints: ClusterLoadAssignment__Output | undefined, update: MutableUpdate): void {
    this.#cancelClusterWarming(entry.name);
    this.#warmingClusters.delete(entry.name);
    this.#activeClusters.set(entry.name, entry);
    update.clusters.push(endpoints ? { cluster: entry.proto, endpoints } : { cluster: entry.proto });
    log.debug(`cluster '${entry.name}' ${entry.eds ? 'warmed and ' : ''}activated (version ${entry.version || '<empty>'})`);
    this.#gauges();
  }

  /** Removes clusters CDS no longer has once no active listener refers to them. */
  #collectClusterRemovals(update: MutableUpdate): void {
    if (this.#pendingRemoval.size === 0) return;
    const used = this.#referencedClusters();
    for (const n of [...this.#pendingRemoval]) {
      if (used.has(n)) {
        log.debug(`cluster '${n}' removed by CDS but still referenced by an active listener: kept`);
        continue;
      }
      this.#pendingRemoval.delete(n);
      this.#activeClusters.delete(n);
      update.removeClusters.push(n);
      this.#o.stats.counter('cluster_manager.cluster_removed').inc();
      log.debug(`cluster '${n}' removed`);
    }
    this.#gauges();
  }

  #referencedClusters(): Set<string> {
    const out = new Set<string>(this.#staticClusterRefs);
    const names = [...this.#staticRds.map((r) => r.routeConfigName), ...[...this.#activeListeners.values()].flatMap((l) => [...l.rds.keys()])];
    for (const l of this.#activeListeners.values()) for (const c of l.refs.clusters) out.add(c);
    for (const name of names) {
      const rc = this.#routes.get(name)?.proto;
      if (!rc) continue;
      let cs = this.#routeClusterCache.get(rc);
      if (!cs) this.#routeClusterCache.set(rc, (cs = routeClusters(rc)));
      for (const c of cs) out.add(c);
    }
    return out;
  }

  // ---- EDS ---------------------------------------------------------------------------------

  /** Subscribes to the EDS names of the current clusters (per source); forgets endpoints nobody uses. */
  #syncEds(): void {
    const want = new Map<string, { spec: SourceSpec; names: Set<string> }>();
    for (const c of [...this.#activeClusters.values(), ...this.#warmingClusters.values()]) {
      if (!c.eds) continue;
      let w = want.get(c.eds.spec.key);
      if (!w) want.set(c.eds.spec.key, (w = { spec: c.eds.spec, names: new Set() }));
      w.names.add(c.eds.name);
    }
    const all = new Set([...want.values()].flatMap((w) => [...w.names]));
    for (const n of [...this.#endpoints.keys()]) if (!all.has(n)) this.#endpoints.delete(n);
    this.#syncNamed(this.#edsSubs, want, (spec, names) =>
      this.#streams.subscribe({
        type: 'endpoint',
        spec,
        decoder: ENDPOINT_DECODER,
        names,
        statPrefix: undefined,
        onUpdate: (u) => this.#onEds(u),
        onInvalid: (bad) => {
          for (const d of bad) for (const c of this.#edsUsers(d.name)) this.#o.stats.counter(`${c.config.statPrefix}update_rejected`).inc();
        },
      }),
    );
  }

  #syncNamed(subs: Map<string, { sub: XdsSubscription; names: string }>, want: Map<string, { spec: SourceSpec; names: Set<string> }>, create: (spec: SourceSpec, names: string[]) => XdsSubscription): void {
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

  #edsUsers(name: string): ClusterEntry[] {
    return [...this.#activeClusters.values(), ...this.#warmingClusters.values()].filter((c) => c.eds?.name === name);
  }

  #onEds(u: Update<ClusterLoadAssignment__Output>): ConfigError[] {
    const errors: ConfigError[] = [];
    const users = (name: string): ClusterEntry[] => this.#edsUsers(name);
    for (const r of u.resources) {
      const path = `cluster_load_assignment '${r.name}'`;
      const p = parseClusterLoadAssignment(r.resource, 'EDS', path);
      if (!p.ok) errors.push(...p.errors);
    }
    if (errors.length > 0) {
      for (const r of u.resources) for (const c of users(r.name)) this.#o.stats.counter(`${c.config.statPrefix}update_rejected`).inc();
      return errors;
    }
    const update = newUpdate();
    const now = new Date();
    for (const r of u.resources) {
      const cs = users(r.name);
      if (cs.length === 0) continue; // a file with more than we need, or a late response
      const hash = hashOf('envoy.config.endpoint.v3.ClusterLoadAssignment', r.resource);
      const prev = this.#endpoints.get(r.name);
      this.#endpoints.set(r.name, { proto: r.resource, version: r.version ?? u.version, lastUpdated: now, hash });
      for (const c of cs) {
        this.#o.stats.gauge(`${c.config.statPrefix}version`, 'max').set(versionNumber(r.version ?? u.version));
        if (this.#warmingClusters.get(c.name) === c) this.#activateCluster(c, r.resource, update);
        else if (prev?.hash !== hash) update.endpoints.push({ clusterName: c.name, assignment: r.resource });
      }
    }
    for (const n of u.removed) {
      if (!this.#endpoints.delete(n)) continue;
      for (const c of users(n)) if (this.#activeClusters.get(c.name) === c) update.endpoints.push({ clusterName: c.name, assignment: emptyAssignment(n) });
    }
    this.#enqueue(update);
    return [];
  }

  // ---- LDS ---------------------------------------------------------------------------------

  #onLds(u: Update<Listener__Output>, sotw: boolean): ConfigError[] {
    const errors: ConfigError[] = [];
    const parsed: Array<{ r: DecodedResource<Listener__Output>; config: ListenerConfig; refs: ListenerRefs; rds: Map<string, SourceSpec> }> = [];
    const seen = new Set<string>();
    const now = new Date();
    const sds = this.#sdsCollector();
    for (const r of u.resources) {
      const path = `listener '${r.name}'`;
      const before = errors.length;
      if (this.#staticListeners.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `'${r.name}' is a static listener and cannot be added or updated via LDS` });
      } else if (seen.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `duplicate listener ${r.name} found` });
      } else {
        seen.add(r.name);
        const ctx: ParseContext = { path, clusterNames: undefined, tls: sds.hooks, rds: (ref) => ({ name: ref.routeConfigName, table: undefined }) };
        const c = parseListener(r.resource, path, ctx);
        if (!c.ok) errors.push(...c.errors);
        else {
          const refs = listenerRefs(r.resource, path);
          const rds = new Map<string, SourceSpec>();
          for (const use of refs.rds) {
            const spath = joinPath(use.path, 'config_source');
            if (!use.configSource) {
              errors.push({ path: spath, reason: 'value is required' });
              continue;
            }
            const spec = parseConfigSource(use.configSource, this.#o.config.clusters, this.#o.plan.ads !== undefined, spath);
            if (spec.ok) rds.set(use.routeConfigName, spec.value);
            else errors.push(...spec.errors);
          }
          if (errors.length === before) parsed.push({ r, config: c.value, refs, rds });
        }
      }
      if (errors.length > before) this.#listenerErrors.set(r.name, { failed: r.resource, details: nackMessage(errors.slice(before)), at: now });
    }
    errors.push(...sds.check());
    if (errors.length > 0) return errors;
    sds.subscribe();

    const update = newUpdate();
    for (const { r, config, refs, rds } of parsed) {
      this.#listenerErrors.delete(r.name);
      const hash = hashOf('envoy.config.listener.v3.Listener', r.resource);
      const current = this.#warmingListeners.get(r.name) ?? this.#activeListeners.get(r.name);
      if (current?.hash === hash) continue;
      const entry: ListenerEntry = { name: r.name, proto: r.resource, config, version: u.version, lastUpdated: now, hash, refs, rds };
      const existed = this.#activeListeners.has(r.name) || this.#warmingListeners.has(r.name);
      this.#o.stats.counter(existed ? 'listener_manager.listener_modified' : 'listener_manager.listener_added').inc();
      for (const use of refs.rds) this.#rdsStatsFor(use.statPrefix, use.routeConfigName);
      if ([...rds.keys()].every((n) => this.#routes.has(n))) this.#activateListener(entry, update);
      else this.#warmListener(entry);
    }
    const removed = sotw ? [...this.#activeListeners.keys(), ...this.#warmingListeners.keys()].filter((n) => !seen.has(n)) : u.removed;
    for (const n of removed) {
      const warming = this.#warmingListeners.get(n);
      const active = this.#activeListeners.get(n);
      if (!warming && !active) continue;
      this.#cancelListenerWarming(n);
      this.#warmingListeners.delete(n);
      if (active) {
        this.#activeListeners.delete(n);
        update.removeListeners.push(n);
        this.#drain(active);
      }
      this.#listenerErrors.delete(n);
      this.#o.stats.counter('listener_manager.listener_removed').inc();
      llog.info(`listener '${n}' removed`);
    }
    this.#syncRds(update);
    this.#collectClusterRemovals(update);
    this.#enqueue(update);
    this.#gauges();
    return [];
  }

  #warmListener(entry: ListenerEntry): void {
    this.#cancelListenerWarming(entry.name);
    this.#warmingListeners.set(entry.name, entry);
    const specs = [...entry.rds.values()];
    const ms = specs.some((s) => s.initialFetchTimeoutMs === 0) ? 0 : Math.max(...specs.map((s) => s.initialFetchTimeoutMs));
    if (ms > 0) {
      const t = setTimeout(() => {
        this.#listenerTimers.delete(entry.name);
        if (this.#warmingListeners.get(entry.name) !== entry) return;
        const missing = [...entry.rds.keys()].filter((n) => !this.#routes.has(n));
        llog.warn(`listener '${entry.name}': route configuration(s) ${missing.join(', ')} not received within ${ms} ms (initial_fetch_timeout); activating it`);
        for (const use of entry.refs.rds) if (missing.includes(use.routeConfigName)) this.#rdsStatsFor(use.statPrefix, use.routeConfigName).outcome('init_fetch_timeout');
        const update = newUpdate();
        this.#activateListener(entry, update);
        this.#enqueue(update);
      }, ms);
      t.unref();
      this.#listenerTimers.set(entry.name, t);
    }
    this.#gauges();
  }

  #cancelListenerWarming(name: string): void {
    clearTimeout(this.#listenerTimers.get(name));
    this.#listenerTimers.delete(name);
  }

  #activateListener(entry: ListenerEntry, update: MutableUpdate): void {
    this.#cancelListenerWarming(entry.name);
    this.#warmingListeners.delete(entry.name);
    const prev = this.#activeListeners.get(entry.name);
    if (prev) this.#drain(prev);
    this.#activeListeners.set(entry.name, entry);
    update.listeners.push(entry.proto);
    llog.info(`listener '${entry.name}' ${prev ? 'updated' : 'added'} (version ${entry.version || '<empty>'})`);
    this.#gauges();
  }

  #drain(l: ListenerEntry): void {
    this.#drainingListeners.set(l.name, l);
    this.#gauges();
    const t = setTimeout(() => {
      if (this.#drainingListeners.get(l.name) === l) this.#drainingListeners.delete(l.name);
      this.#gauges();
    }, this.#o.drainTimeMs);
    t.unref();
  }

  // ---- RDS ---------------------------------------------------------------------------------

  #rdsStatsFor(statPrefix: string, name: string): SubscriptionStats {
    const prefix = `http.${statPrefix}.rds.${name}.`;
    let s = this.#rdsStats.get(prefix);
    if (!s) {
      this.#rdsStats.set(prefix, (s = new SubscriptionStats(this.#o.stats, prefix)));
      s.started();
    }
    return s;
  }

  /** The RDS names active and warming listeners need, per source; forgets route configs nobody names. */
  #syncRds(update: MutableUpdate): void {
    const want = new Map<string, { spec: SourceSpec; names: Set<string> }>();
    const uses: Array<[string, SourceSpec]> = this.#staticRds.map((r) => [r.routeConfigName, r.spec]);
    for (const l of [...this.#activeListeners.values(), ...this.#warmingListeners.values()]) uses.push(...l.rds);
    for (const [name, spec] of uses) {
      let w = want.get(spec.key);
      if (!w) want.set(spec.key, (w = { spec, names: new Set() }));
      w.names.add(name);
    }
    const all = new Set([...want.values()].flatMap((w) => [...w.names]));
    for (const n of [...this.#routes.keys()]) {
      if (all.has(n)) continue;
      this.#routes.delete(n);
      update.removeRoutes.push(n);
    }
    this.#syncNamed(this.#rdsSubs, want, (spec, names) =>
      this.#streams.subscribe({
        type: 'route',
        spec,
        decoder: ROUTE_DECODER,
        names,
        statPrefix: undefined,
        onUpdate: (u) => this.#onRds(u),
        onInvalid: (bad) => {
          for (const d of bad) for (const st of this.#routeOwners(d.name)) st.outcome('rejected');
        },
      }),
    );
  }

  #routeOwners(name: string): SubscriptionStats[] {
    const prefixes = new Set<string>(this.#staticRds.filter((r) => r.routeConfigName === name).map((r) => r.statPrefix));
    for (const l of [...this.#activeListeners.values(), ...this.#warmingListeners.values()]) for (const use of l.refs.rds) if (use.routeConfigName === name) prefixes.add(use.statPrefix);
    return [...prefixes].map((p) => this.#rdsStatsFor(p, name));
  }

  #onRds(u: Update<RouteConfiguration__Output>): ConfigError[] {
    const wanted = new Set([...this.#staticRds.map((r) => r.routeConfigName), ...[...this.#activeListeners.values(), ...this.#warmingListeners.values()].flatMap((l) => [...l.rds.keys()])]);
    const mine = u.resources.filter((r) => wanted.has(r.name));
    const errors: ConfigError[] = [];
    for (const r of mine) {
      const t = compileRouteTable(r.resource, { path: `route_configuration '${r.name}'`, clusterNames: undefined, dynamic: true });
      if (!t.ok) errors.push(...t.errors);
    }
    if (errors.length > 0) {
      for (const r of mine) for (const s of this.#routeOwners(r.name)) s.outcome('rejected');
      return errors;
    }
    const update = newUpdate();
    const now = new Date();
    for (const r of mine) {
      const version = r.version ?? u.version;
      const hash = hashOf('envoy.config.route.v3.RouteConfiguration', r.resource);
      const prev = this.#routes.get(r.name);
      for (const s of this.#routeOwners(r.name)) s.outcome('success', version);
      if (prev?.hash === hash) continue;
      this.#routes.set(r.name, { proto: r.resource, version, lastUpdated: now, hash });
      update.routes.push(r.resource);
    }
    for (const l of [...this.#warmingListeners.values()]) {
      if ([...l.rds.keys()].every((n) => this.#routes.has(n))) this.#activateListener(l, update);
    }
    this.#collectClusterRemovals(update);
    this.#enqueue(update);
    return [];
  }

  // ---- pushing -----------------------------------------------------------------------------

  #enqueue(update: MutableUpdate): void {
    this.#settle();
    const empty = Object.values(update).every((v) => Array.isArray(v) && v.length === 0);
    if (empty) return;
    this.#queue = this.#queue.then(async () => {
      if (this.#closed) return;
      const reserved: net.Server[] = [];
      const ports: Record<string, number> = {};
      try {
        for (const l of update.listeners) {
          const entry = this.#activeListeners.get(l.name);
          if (!entry || entry.config.address.port !== 0) continue;
          let port = this.#ports.get(l.name);
          if (port === undefined) {
            const s = net.createServer();
            await new Promise<void>((res, rej) => s.once('error', rej).listen({ host: entry.config.address.host, port: 0, reusePort: true }, res));
            port = (s.address() as net.AddressInfo).port;
            reserved.push(s);
            this.#ports.set(l.name, port);
          }
          ports[l.name] = port;
        }
        for (const n of update.removeListeners) this.#ports.delete(n);
        const out: XdsWorkerUpdate = {
          ...(update.routes.length ? { routes: update.routes } : {}),
          ...(update.clusters.length ? { clusters: update.clusters } : {}),
          ...(update.endpoints.length ? { endpoints: update.endpoints } : {}),
          ...(update.listeners.length ? { listeners: update.listeners } : {}),
          ...(Object.keys(ports).length ? { ports } : {}),
          ...(update.removeListeners.length ? { removeListeners: update.removeListeners } : {}),
          ...(update.removeClusters.length ? { removeClusters: update.removeClusters } : {}),
          ...(update.removeRoutes.length ? { removeRoutes: update.removeRoutes } : {}),
        };
        await this.#o.push(out);
        if (update.listeners.length) this.#o.stats.counter('listener_manager.listener_create_success').inc(update.listeners.length * this.#o.workers);
      } catch (e) {
        llog.error(`pushing an xDS update to the workers failed: ${(e as Error).message}`);
      } finally {
        for (const s of reserved) s.close();
      }
    });
  }

  #gauges(): void {
    const s = this.#o.stats;
    s.gauge('cluster_manager.active_clusters', 'max').set(this.#staticClusters.size + this.#activeClusters.size);
    s.gauge('cluster_manager.warming_clusters', 'max').set(this.#warmingClusters.size);
    s.gauge('listener_manager.total_listeners_active', 'max').set(this.#staticListeners.size + this.#activeListeners.size);
    s.gauge('listener_manager.total_listeners_warming', 'max').set(this.#warmingListeners.size);
    s.gauge('listener_manager.total_listeners_draining', 'max').set(this.#drainingListeners.size);
  }

  #until(pred: () => boolean): Promise<void> {
    if (pred() || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }

  #settle(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }
}

interface MutableUpdate {
  routes: RouteConfiguration__Output[];
  clusters: Array<{ cluster: Cluster__Output; endpoints?: ClusterLoadAssignment__Output }>;
  endpoints: Array<{ clusterName: string; assignment: ClusterLoadAssignment__Output }>;
  listeners: Listener__Output[];
  removeListeners: string[];
  removeClusters: string[];
  removeRoutes: string[];
}

function newUpdate(): MutableUpdate {
  return { routes: [], clusters: [], endpoints: [], listeners: [], removeListeners: [], removeClusters: [], removeRoutes: [] };
}

function emptyAssignment(name: string): ClusterLoadAssignment__Output {
  const r = decodeJson<ClusterLoadAssignment__Output>('envoy.config.endpoint.v3.ClusterLoadAssignment', { cluster_name: name });
  if (!r.ok) throw new Error(`empty ClusterLoadAssignment: ${r.errors[0]?.reason}`);
  return r.value;
}

/** A version string as a gauge value: its number when numeric, else a stable 48-bit hash. */
function versionNumber(v: string): number {
  return /^\d{1,15}$/.test(v) ? Number(v) : createHash('sha256').update(v).digest().readUIntBE(0, 6);
}
