// The CDS/EDS side of the xDS manager (Envoy's ClusterManager): validates CDS updates with the
// static-config parsers (one bad cluster rejects the update), warms an EDS cluster until its first
// ClusterLoadAssignment (or initial_fetch_timeout), keeps a cluster CDS removed while an active
// listener still refers to it, subscribes to the EDS names the current clusters need, and turns
// EDS updates into endpoint updates for the workers.

import type { Cluster__Output } from '../../generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import { joinPath, type ConfigError } from '../../config/result.ts';
import type { ParseContext } from '../../filters/registry.ts';
import { parseCluster, parseClusterLoadAssignment } from '../upstream/config.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import { logger } from '../log.ts';
import { TYPE_URL } from '../../xds-client/codec.ts';
import type { DecodedResource, ResourceDecoder } from '../../xds-client/subscription.ts';
import { parseConfigSource, type SourceSpec } from './sources.ts';
import { emptyAssignment, hashOf, newUpdate, syncNamed, versionNumber, WarmingTimers, type ClusterEntry, type MutableUpdate, type NamedSubscriptions, type ResourceEntry, type Update, type XdsContext } from './xds-state.ts';

const log = logger('upstream');
const llog = logger('config');

export const CLUSTER_DECODER: ResourceDecoder<Cluster__Output> = { typeUrl: TYPE_URL.cluster, nameOf: (c) => c.name, kind: 'cluster' };
const ENDPOINT_DECODER: ResourceDecoder<ClusterLoadAssignment__Output> = { typeUrl: TYPE_URL.endpoint, nameOf: (la) => la.cluster_name, kind: 'cluster_load_assignment' };

export class XdsClusters {
  readonly #x: XdsContext;
  readonly staticNames: ReadonlySet<string>;
  readonly active = new Map<string, ClusterEntry>();
  readonly warming = new Map<string, ClusterEntry>();
  readonly endpoints = new Map<string, ResourceEntry<ClusterLoadAssignment__Output>>();
  readonly #timers = new WarmingTimers();
  /** Active clusters CDS removed while an active listener still refers to them. */
  readonly #pendingRemoval = new Set<string>();
  readonly #edsSubs: NamedSubscriptions = new Map();

  constructor(x: XdsContext) {
    this.#x = x;
    this.staticNames = new Set(x.o.config.clusters.map((c) => c.name));
  }

  close(): void {
    this.#timers.close();
  }

  onCds(u: Update<Cluster__Output>, sotw: boolean): ConfigError[] {
    const o = this.#x.o;
    const errors: ConfigError[] = [];
    const parsed: Array<{ r: DecodedResource<Cluster__Output>; config: ClusterConfig; eds: ClusterEntry['eds'] }> = [];
    const seen = new Set<string>();
    const sds = this.#x.sdsCollector();
    for (const r of u.resources) {
      const path = `cluster '${r.name}'`;
      if (this.staticNames.has(r.name)) {
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
      for (const w of c.warnings ?? []) llog.warn(w);
      let eds: ClusterEntry['eds'];
      if (c.value.type === 'EDS') {
        const cs = r.resource.eds_cluster_config?.eds_config;
        const spath = joinPath(path, 'eds_cluster_config.eds_config');
        const spec = cs ? parseConfigSource(cs, o.config.clusters, o.plan.ads !== undefined, spath) : undefined;
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
      const current = this.warming.get(r.name) ?? this.active.get(r.name);
      if (current?.hash === hash) continue;
      const entry: ClusterEntry = { name: r.name, proto: r.resource, config, version: u.version, lastUpdated: now, hash, eds };
      o.stats.counter(this.active.has(r.name) || this.warming.has(r.name) ? 'cluster_manager.cluster_modified' : 'cluster_manager.cluster_added').inc();
      const known = eds ? this.endpoints.get(eds.name) : undefined;
      if (!eds || known) {
        this.#timers.cancel(r.name);
        this.#activate(entry, known?.proto, update);
      } else {
        this.#warm(entry);
      }
    }
    const removed = sotw ? [...this.active.keys(), ...this.warming.keys()].filter((n) => !seen.has(n)) : u.removed;
    for (const n of removed) {
      if (this.warming.has(n)) {
        this.#timers.cancel(n);
        this.warming.delete(n);
        if (!this.active.has(n)) o.stats.counter('cluster_manager.cluster_removed').inc();
      }
      if (this.active.has(n)) this.#pendingRemoval.add(n);
    }
    this.collectRemovals(update);
    this.#syncEds();
    llog.info(`cds: version ${u.version || '<empty>'}: ${update.clusters.length} cluster(s) added or updated, ${this.warming.size} warming, ${update.removeClusters.length} removed`);
    this.#x.enqueue(update);
    return [];
  }

  #warm(entry: ClusterEntry): void {
    this.#timers.cancel(entry.name);
    this.warming.set(entry.name, entry);
    const ms = entry.eds!.spec.initialFetchTimeoutMs;
    if (ms > 0) {
      this.#timers.start(entry.name, ms, () => {
        if (this.warming.get(entry.name) !== entry) return;
        log.warn(`cluster '${entry.name}': no ClusterLoadAssignment '${entry.eds!.name}' within ${ms} ms (initial_fetch_timeout); activating it without endpoints`);
        this.#x.o.stats.counter(`${entry.config.statPrefix}init_fetch_timeout`).inc();
        const update = newUpdate();
        this.#activate(entry, emptyAssignment(entry.eds!.name), update);
        this.#x.enqueue(update);
      });
    }
    this.#x.gauges();
  }

  #activate(entry: ClusterEntry, endpoints: ClusterLoadAssignment__Output | undefined, update: MutableUpdate): void {
    this.#timers.cancel(entry.name);
    this.warming.delete(entry.name);
    this.active.set(entry.name, entry);
    update.clusters.push(endpoints ? { cluster: entry.proto, endpoints } : { cluster: entry.proto });
    log.debug(`cluster '${entry.name}' ${entry.eds ? 'warmed and ' : ''}activated (version ${entry.version || '<empty>'})`);
    this.#x.gauges();
  }

  /** Removes clusters CDS no longer has once no active listener refers to them. */
  collectRemovals(update: MutableUpdate): void {
    if (this.#pendingRemoval.size === 0) return;
    const used = this.#x.referencedClusters();
    for (const n of [...this.#pendingRemoval]) {
      if (used.has(n)) {
        log.debug(`cluster '${n}' removed by CDS but still referenced by an active listener: kept`);
        continue;
      }
      this.#pendingRemoval.delete(n);
      this.active.delete(n);
      update.removeClusters.push(n);
      this.#x.o.stats.counter('cluster_manager.cluster_removed').inc();
      log.debug(`cluster '${n}' removed`);
    }
    this.#x.gauges();
  }

  // ---- EDS ---------------------------------------------------------------------------------

  /** Subscribes to the EDS names of the current clusters (per source); forgets endpoints nobody uses. */
  #syncEds(): void {
    const want = new Map<string, { spec: SourceSpec; names: Set<string> }>();
    for (const c of [...this.active.values(), ...this.warming.values()]) {
      if (!c.eds) continue;
      let w = want.get(c.eds.spec.key);
      if (!w) want.set(c.eds.spec.key, (w = { spec: c.eds.spec, names: new Set() }));
      w.names.add(c.eds.name);
    }
    const all = new Set([...want.values()].flatMap((w) => [...w.names]));
    for (const n of [...this.endpoints.keys()]) if (!all.has(n)) this.endpoints.delete(n);
    syncNamed(this.#edsSubs, want, (spec, names) =>
      this.#x.streams.subscribe({
        type: 'endpoint',
        spec,
        decoder: ENDPOINT_DECODER,
        names,
        statPrefix: undefined,
        onUpdate: (u) => this.#onEds(u),
        onInvalid: (bad) => {
          for (const d of bad) for (const c of this.#edsUsers(d.name)) this.#x.o.stats.counter(`${c.config.statPrefix}update_rejected`).inc();
        },
      }),
    );
  }

  #edsUsers(name: string): ClusterEntry[] {
    return [...this.active.values(), ...this.warming.values()].filter((c) => c.eds?.name === name);
  }

  #onEds(u: Update<ClusterLoadAssignment__Output>): ConfigError[] {
    const stats = this.#x.o.stats;
    const errors: ConfigError[] = [];
    const users = (name: string): ClusterEntry[] => this.#edsUsers(name);
    for (const r of u.resources) {
      const path = `cluster_load_assignment '${r.name}'`;
      const p = parseClusterLoadAssignment(r.resource, 'EDS', path);
      if (!p.ok) errors.push(...p.errors);
    }
    if (errors.length > 0) {
      for (const r of u.resources) for (const c of users(r.name)) stats.counter(`${c.config.statPrefix}update_rejected`).inc();
      return errors;
    }
    const update = newUpdate();
    const now = new Date();
    for (const r of u.resources) {
      const cs = users(r.name);
      if (cs.length === 0) continue; // a file with more than we need, or a late response
      const hash = hashOf('envoy.config.endpoint.v3.ClusterLoadAssignment', r.resource);
      const prev = this.endpoints.get(r.name);
      this.endpoints.set(r.name, { proto: r.resource, version: r.version ?? u.version, lastUpdated: now, hash });
      for (const c of cs) {
        stats.gauge(`${c.config.statPrefix}version`, 'max').set(versionNumber(r.version ?? u.version));
        if (this.warming.get(c.name) === c) this.#activate(c, r.resource, update);
        else if (prev?.hash !== hash) update.endpoints.push({ clusterName: c.name, assignment: r.resource });
      }
    }
    for (const n of u.removed) {
      if (!this.endpoints.delete(n)) continue;
      for (const c of users(n)) if (this.active.get(c.name) === c) update.endpoints.push({ clusterName: c.name, assignment: emptyAssignment(n) });
    }
    this.#x.enqueue(update);
    return [];
  }
}
