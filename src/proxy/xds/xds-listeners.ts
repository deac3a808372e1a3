// The LDS/RDS side of the xDS manager (Envoy's ListenerManager and RDS): validates LDS updates
// with the static-config parsers (one bad listener rejects the update; its error is kept for
// /config_dump), warms a listener until every route configuration it names has arrived (or
// initial_fetch_timeout), drains replaced and removed listeners, subscribes to the RDS names of
// the static and dynamic listeners, and counts the http.<prefix>.rds.<name>.* stats.

import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import { joinPath, type ConfigError } from '../../config/result.ts';
import type { ParseContext } from '../../filters/registry.ts';
import { parseListener, type ListenerConfig } from '../listener/listener-config.ts';
import { compileRouteTable } from '../http/route-table.ts';
import { logger } from '../log.ts';
import { TYPE_URL } from '../../xds-client/codec.ts';
import { nackMessage, type DecodedResource, type ResourceDecoder } from '../../xds-client/subscription.ts';
import { SubscriptionStats } from '../../xds-client/subscription-stats.ts';
import { parseConfigSource, type SourceSpec } from './sources.ts';
import { listenerRefs, routeClusters, type ListenerRefs } from './references.ts';
import { hashOf, newUpdate, syncNamed, WarmingTimers, type ListenerEntry, type ListenerErrorState, type MutableUpdate, type NamedSubscriptions, type ResourceEntry, type Update, type XdsContext } from './xds-state.ts';
import { setLongTimeout } from '../long-timers.ts';

const llog = logger('config');

export const LISTENER_DECODER: ResourceDecoder<Listener__Output> = { typeUrl: TYPE_URL.listener, nameOf: (l) => l.name, kind: 'listener' };
const ROUTE_DECODER: ResourceDecoder<RouteConfiguration__Output> = { typeUrl: TYPE_URL.route, nameOf: (r) => r.name, kind: 'route_configuration' };

export class XdsListeners {
  readonly #x: XdsContext;
  readonly staticNames: ReadonlySet<string>;
  readonly active = new Map<string, ListenerEntry>();
  readonly warming = new Map<string, ListenerEntry>();
  readonly draining = new Map<string, ListenerEntry>();
  readonly errors = new Map<string, ListenerErrorState>();
  readonly routes = new Map<string, ResourceEntry<RouteConfiguration__Output>>();
  readonly #timers = new WarmingTimers();
  readonly #routeClusterCache = new WeakMap<RouteConfiguration__Output, Set<string>>();
  readonly #rdsStats = new Map<string, SubscriptionStats>();
  readonly #rdsSubs: NamedSubscriptions = new Map();
  /** Static listeners' references: their RDS names (with sources) and clusters. */
  readonly staticRds: Array<{ readonly routeConfigName: string; readonly statPrefix: string; readonly spec: SourceSpec }> = [];
  readonly #staticClusterRefs = new Set<string>();

  constructor(x: XdsContext) {
    this.#x = x;
    const o = x.o;
    this.staticNames = new Set(o.config.listeners.map((l) => l.name));
    for (const l of o.config.listeners) {
      const refs = listenerRefs(l.raw, '');
      for (const c of refs.clusters) this.#staticClusterRefs.add(c);
      for (const use of refs.rds) {
        const spec = use.configSource ? parseConfigSource(use.configSource, o.config.clusters, o.plan.ads !== undefined, use.path) : undefined;
        if (spec?.ok) this.staticRds.push({ routeConfigName: use.routeConfigName, statPrefix: use.statPrefix, spec: spec.value });
      }
    }
  }

  close(): void {
    this.#timers.close();
  }

  /** Every static listener's route configuration has arrived. */
  staticRoutesReady(): boolean {
    return this.staticRds.every((r) => this.routes.has(r.routeConfigName));
  }

  /** LDS resources the subscription rejected before onLds: kept as /config_dump's error state. */
  onInvalid(bad: readonly DecodedResource<Listener__Output>[]): void {
    const at = new Date();
    for (const d of bad) this.errors.set(d.name, { failed: d.resource, details: nackMessage(d.invalid ?? []), at });
  }

  onLds(u: Update<Listener__Output>, sotw: boolean): ConfigError[] {
    const o = this.#x.o;
    const errors: ConfigError[] = [];
    const parsed: Array<{ r: DecodedResource<Listener__Output>; config: ListenerConfig; refs: ListenerRefs; rds: Map<string, SourceSpec> }> = [];
    const seen = new Set<string>();
    const now = new Date();
    const sds = this.#x.sdsCollector();
    for (const r of u.resources) {
      const path = `listener '${r.name}'`;
      const before = errors.length;
      if (this.staticNames.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `'${r.name}' is a static listener and cannot be added or updated via LDS` });
      } else if (seen.has(r.name)) {
        errors.push({ path: joinPath(path, 'name'), reason: `duplicate listener ${r.name} found` });
      } else {
        seen.add(r.name);
        const ctx: ParseContext = { path, clusterNames: undefined, tls: sds.hooks, rds: (ref) => ({ name: ref.routeConfigName, table: undefined }) };
        const c = parseListener(r.resource, path, ctx);
        if (!c.ok) errors.push(...c.errors);
        else {
          for (const w of c.warnings ?? []) llog.warn(w);
          const refs = listenerRefs(r.resource, path);
          const rds = new Map<string, SourceSpec>();
          for (const use of refs.rds) {
            const spath = joinPath(use.path, 'config_source');
            if (!use.configSource) {
              errors.push({ path: spath, reason: 'value is required' });
              continue;
            }
            const spec = parseConfigSource(use.configSource, o.config.clusters, o.plan.ads !== undefined, spath);
            if (spec.ok) rds.set(use.routeConfigName, spec.value);
            else errors.push(...spec.errors);
          }
          if (errors.length === before) parsed.push({ r, config: c.value, refs, rds });
        }
      }
      if (errors.length > before) this.errors.set(r.name, { failed: r.resource, details: nackMessage(errors.slice(before)), at: now });
    }
    errors.push(...sds.check());
    if (errors.length > 0) return errors;
    sds.subscribe();

    const update = newUpdate();
    for (const { r, config, refs, rds } of parsed) {
      this.errors.delete(r.name);
      const hash = hashOf('envoy.config.listener.v3.Listener', r.resource);
      const current = this.warming.get(r.name) ?? this.active.get(r.name);
      if (current?.hash === hash) continue;
      const entry: ListenerEntry = { name: r.name, proto: r.resource, config, version: u.version, lastUpdated: now, hash, refs, rds };
      const existed = this.active.has(r.name) || this.warming.has(r.name);
      o.stats.counter(existed ? 'listener_manager.listener_modified' : 'listener_manager.listener_added').inc();
      for (const use of refs.rds) this.#rdsStatsFor(use.statPrefix, use.routeConfigName);
      if ([...rds.keys()].every((n) => this.routes.has(n))) this.#activate(entry, update);
      else this.#warm(entry);
    }
    const removed = sotw ? [...this.active.keys(), ...this.warming.keys()].filter((n) => !seen.has(n)) : u.removed;
    for (const n of removed) {
      const warming = this.warming.get(n);
      const active = this.active.get(n);
      if (!warming && !active) continue;
      this.#timers.cancel(n);
      this.warming.delete(n);
      if (active) {
        this.active.delete(n);
        update.removeListeners.push(n);
        this.#drain(active);
      }
      this.errors.delete(n);
      o.stats.counter('listener_manager.listener_removed').inc();
      llog.info(`listener '${n}' removed`);
    }
    this.syncRds(update);
    this.#x.collectClusterRemovals(update);
    this.#x.enqueue(update);
    this.#x.gauges();
    return [];
  }

  #warm(entry: ListenerEntry): void {
    this.#timers.cancel(entry.name);
    this.warming.set(entry.name, entry);
    const specs = [...entry.rds.values()];
    const ms = specs.some((s) => s.initialFetchTimeoutMs === 0) ? 0 : Math.max(...specs.map((s) => s.initialFetchTimeoutMs));
    if (ms > 0) {
      this.#timers.start(entry.name, ms, () => {
        if (this.warming.get(entry.name) !== entry) return;
        const missing = [...entry.rds.keys()].filter((n) => !this.routes.has(n));
        llog.warn(`listener '${entry.name}': route configuration(s) ${missing.join(', ')} not received within ${ms} ms (initial_fetch_timeout); activating it`);
        for (const use of entry.refs.rds) if (missing.includes(use.routeConfigName)) this.#rdsStatsFor(use.statPrefix, use.routeConfigName).outcome('init_fetch_timeout');
        const update = newUpdate();
        this.#activate(entry, update);
        this.#x.enqueue(update);
      });
    }
    this.#x.gauges();
  }

  #activate(entry: ListenerEntry, update: MutableUpdate): void {
    this.#timers.cancel(entry.name);
    this.warming.delete(entry.name);
    const prev = this.active.get(entry.name);
    if (prev) this.#drain(prev);
    this.active.set(entry.name, entry);
    update.listeners.push(entry.proto);
    llog.info(`listener '${entry.name}' ${prev ? 'updated' : 'added'} (version ${entry.version || '<empty>'})`);
    this.#x.gauges();
  }

  #drain(l: ListenerEntry): void {
    this.draining.set(l.name, l);
    this.#x.gauges();
    const t = setLongTimeout(() => {
      if (this.draining.get(l.name) === l) this.draining.delete(l.name);
      this.#x.gauges();
    }, this.#x.o.drainTimeMs);
    t.unref();
  }

  /** Clusters the static and active listeners and their route configurations refer to. */
  referencedClusters(): Set<string> {
    const out = new Set<string>(this.#staticClusterRefs);
    const names = [...this.staticRds.map((r) => r.routeConfigName), ...[...this.active.values()].flatMap((l) => [...l.rds.keys()])];
    for (const l of this.active.values()) for (const c of l.refs.clusters) out.add(c);
    for (const name of names) {
      const rc = this.routes.get(name)?.proto;
      if (!rc) continue;
      let cs = this.#routeClusterCache.get(rc);
      if (!cs) this.#routeClusterCache.set(rc, (cs = routeClusters(rc)));
      for (const c of cs) out.add(c);
    }
    return out;
  }

  // ---- RDS ---------------------------------------------------------------------------------

  #rdsStatsFor(statPrefix: string, name: string): SubscriptionStats {
    const prefix = `http.${statPrefix}.rds.${name}.`;
    let s = this.#rdsStats.get(prefix);
    if (!s) {
      this.#rdsStats.set(prefix, (s = new SubscriptionStats(this.#x.o.stats, prefix)));
      s.started();
    }
    return s;
  }

  /** The RDS names active and warming listeners need, per source; forgets route configs nobody names. */
  syncRds(update: MutableUpdate): void {
    const want = new Map<string, { spec: SourceSpec; names: Set<string> }>();
    const uses: Array<[string, SourceSpec]> = this.staticRds.map((r) => [r.routeConfigName, r.spec]);
    for (const l of [...this.active.values(), ...this.warming.values()]) uses.push(...l.rds);
    for (const [name, spec] of uses) {
      let w = want.get(spec.key);
      if (!w) want.set(spec.key, (w = { spec, names: new Set() }));
      w.names.add(name);
    }
    const all = new Set([...want.values()].flatMap((w) => [...w.names]));
    for (const n of [...this.routes.keys()]) {
      if (all.has(n)) continue;
      this.routes.delete(n);
      update.removeRoutes.push(n);
    }
    syncNamed(this.#rdsSubs, want, (spec, names) =>
      this.#x.streams.subscribe({
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
    const prefixes = new Set<string>(this.staticRds.filter((r) => r.routeConfigName === name).map((r) => r.statPrefix));
    for (const l of [...this.active.values(), ...this.warming.values()]) for (const use of l.refs.rds) if (use.routeConfigName === name) prefixes.add(use.statPrefix);
    return [...prefixes].map((p) => this.#rdsStatsFor(p, name));
  }

  #onRds(u: Update<RouteConfiguration__Output>): ConfigError[] {
    const wanted = new Set([...this.staticRds.map((r) => r.routeConfigName), ...[...this.active.values(), ...this.warming.values()].flatMap((l) => [...l.rds.keys()])]);
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
      const prev = this.routes.get(r.name);
      for (const s of this.#routeOwners(r.name)) s.outcome('success', version);
      if (prev?.hash === hash) continue;
      this.routes.set(r.name, { proto: r.resource, version, lastUpdated: now, hash });
      update.routes.push(r.resource);
    }
    for (const l of [...this.warming.values()]) {
      if ([...l.rds.keys()].every((n) => this.routes.has(n))) this.#activate(l, update);
    }
    this.#x.collectClusterRemovals(update);
    this.#x.enqueue(update);
    return [];
  }
}
