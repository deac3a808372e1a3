// One worker's clusters by name: built from the bootstrap, then added, replaced and removed at run
// time (CDS) and given EDS endpoints. A replacement warms (DNS, first health checks) before it takes
// new requests; a replaced or removed cluster stops taking new requests while those in flight finish
// on its pools, which then close. Lookups are by name at request time (router, tcp_proxy).

import { logger } from '../log.ts';
import { MemorySecretStore } from '../tls/secret-store.ts';
import type { SecretStore } from '../tls/types.ts';
import { SharedCounters } from '../shared-counters.ts';
import type { Gauge, StatsStore } from '../stats.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import { ok, type Result } from '../../config/result.ts';
import { ClusterImpl, parseEdsEndpoints, type EdsEndpoints } from './cluster.ts';
import type { Cluster, ClusterConfig, ClusterManager } from './types.ts';

export { parseEdsEndpoints, type EdsEndpoints } from './cluster.ts';

const log = logger('upstream');

class ClusterManagerImpl implements DynamicClusterManager {
  readonly stats: StatsStore;
  readonly #ctx: ClusterManagerContext;
  readonly #shared: SharedCounters;
  readonly #secrets: SecretStore;
  readonly #clusters = new Map<string, ClusterImpl>();
  /** Replaced or removed clusters whose in-flight requests are still finishing. */
  readonly #retiring = new Set<ClusterImpl>();
  /** The newest add/replace per name: an older one that finishes warming later must not win. */
  readonly #pending = new Map<string, ClusterImpl>();
  readonly #active: Gauge;
  readonly #ready: Promise<void>;

  constructor(clusters: readonly ClusterConfig[], ctx: ClusterManagerContext) {
    this.stats = ctx.stats;
    this.#ctx = ctx;
    // Without the process's SharedCounters (single-worker tests) limits hold for this cluster manager.
    this.#shared = ctx.shared ?? SharedCounters.create(1024);
    this.#secrets = ctx.secrets ?? new MemorySecretStore();
    for (const c of clusters) this.#clusters.set(c.name, this.#create(c));
    this.#active = ctx.stats.gauge('cluster_manager.active_clusters', 'max');
    this.#active.set(this.#clusters.size);
    this.#ready = Promise.all([...this.#clusters.values()].map((c) => c.init())).then(() => undefined);
  }

  /** `replacing`: a cluster of that name serves meanwhile (its health results stay the ones other workers follow). */
  #create(c: ClusterConfig, replacing = false): ClusterImpl {
    const health = { stats: this.#ctx.stats, workerId: this.#ctx.workerId, shared: this.#ctx.shared, deferPublish: replacing };
    return new ClusterImpl(c, this.#ctx.stats, health, this.#shared, this.#secrets);
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name);
  }

  names(): readonly string[] {
    return [...this.#clusters.keys()];
  }

  async addOrUpdateCluster(config: ClusterConfig, endpoints?: ClusterLoadAssignment__Output): Promise<Result<void>> {
    let eds: EdsEndpoints | undefined;
    if (endpoints && config.type === 'EDS') {
      const r = parseEdsEndpoints(endpoints, `cluster ${config.name}: ClusterLoadAssignment ${endpoints.cluster_name}`);
      if (!r.ok) return r;
      eds = r.value;
    }
    const next = this.#create(config, this.#clusters.has(config.name));
    this.#pending.set(config.name, next);
    // Warm (DNS, first health-check round) before taking traffic; the old cluster serves meanwhile.
    await next.init(eds);
    if (this.#pending.get(config.name) !== next) {
      void next.close();
      return ok(undefined);
    }
    this.#pending.delete(config.name);
    const old = this.#clusters.get(config.name);
    this.#clusters.set(config.name, next);
    this.#active.set(this.#clusters.size);
    if (old) this.#retire(old);
    next.activate();
    log.debug(`cluster ${config.name} ${old ? 'updated' : 'added'}`);
    return ok(undefined);
  }

  removeCluster(name: string): boolean {
    this.#pending.delete(name);
    const old = this.#clusters.get(name);
    if (!old) return false;
    this.#clusters.delete(name);
    this.#active.set(this.#clusters.size);
    this.#retire(old);
    log.debug(`cluster ${name} removed`);
    return true;
  }

  setEndpoints(clusterName: string, assignment: ClusterLoadAssignment__Output): Result<void> {
    const path = `ClusterLoadAssignment ${assignment.cluster_name || clusterName}`;
    const c = this.#clusters.get(clusterName);
    if (!c) return { ok: false, errors: [{ path, reason: `unknown cluster '${clusterName}'` }] };
    if (c.info.type !== 'EDS') return { ok: false, errors: [{ path, reason: `cluster '${clusterName}' is ${c.info.type}, not EDS` }] };
    const r = parseEdsEndpoints(assignment, path);
    if (!r.ok) return r;
    c.setEndpoints(r.value);
    return ok(undefined);
  }

  #retire(c: ClusterImpl): void {
    this.#retiring.add(c);
    void c.retire().finally(() => this.#retiring.delete(c));
  }

  /** Clusters replaced or removed whose in-flight requests are still finishing (tests). */
  get retiring(): number {
    return this.#retiring.size;
  }

  refreshStats(): void {
    for (const c of this.#clusters.values()) c.breakers.refreshGauges();
  }

  async close(): Promise<void> {
    this.#pending.clear();
    await Promise.all([...this.#clusters.values(), ...this.#retiring].map((c) => c.close()));
  }
}

/** A worker's cluster manager as the dynamic (xDS) config drives it. */
export interface DynamicClusterManager extends ClusterManager {
  /**
   * Adds a cluster, or replaces the one of that name once the new one has warmed (DNS, first health
   * checks): new requests use the new one; requests in flight finish on the old one's pools. An EDS
   * cluster may come with its first ClusterLoadAssignment. Fails (changing nothing) on a bad assignment.
   */
  addOrUpdateCluster(config: ClusterConfig, endpoints?: ClusterLoadAssignment__Output): Promise<Result<void>>;
  /** Removes a cluster: new requests find no cluster (503 NC); those in flight finish. False if unknown. */
  removeCluster(name: string): boolean;
  /** EDS: replaces an EDS cluster's endpoints (the next request balances over them). */
  setEndpoints(clusterName: string, assignment: ClusterLoadAssignment__Output): Result<void>;
  /** Clusters replaced or removed whose in-flight requests are still finishing. */
  readonly retiring: number;
}

export interface ClusterManagerContext {
  readonly stats: StatsStore;
  readonly workerId: number;
  readonly shared?: SharedCounters | undefined;
  /** The worker's secrets (static and SDS), for TLS transport sockets; empty when absent. */
  readonly secrets?: SecretStore | undefined;
}

/** One per worker: builds every cluster and starts its initial host resolution. */
export function createClusterManager(clusters: readonly ClusterConfig[], ctx: ClusterManagerContext): DynamicClusterManager {
  return new ClusterManagerImpl(clusters, ctx);
}
