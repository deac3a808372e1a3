// The main thread's xDS manager (Envoy's ClusterManager CDS/EDS side plus ListenerManager LDS/RDS
// side): subscribes to CDS and LDS (wildcard) and to the EDS and RDS names the current config
// refers to; validates every resource of an update with the static-config parsers (one bad
// resource rejects the update for that type: NACK, last good config kept); warms new clusters
// until their first ClusterLoadAssignment and new listeners until every route configuration they
// name has arrived (or initial_fetch_timeout); pushes the result to the workers as
// XdsWorkerUpdates in order; keeps a cluster removed by CDS while an active listener still refers
// to it; and counts Envoy's cluster_manager.* / listener_manager.* / rds / eds stats. `start()`
// resolves when the initial fetch has ended (CDS and its EDS, then LDS and its RDS), as Envoy's
// init manager. The CDS/EDS side is xds-clusters.ts, the LDS/RDS side xds-listeners.ts; this
// file starts them, answers /config_dump, and pushes their updates to the workers.

import net from 'node:net';
import { joinPath, type ConfigError } from '../../config/result.ts';
import type { SdsReference } from '../../filters/registry.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import type { ListenerConfig } from '../listener/listener-config.ts';
import type { XdsWorkerUpdate } from '../worker/messages.ts';
import { logger } from '../log.ts';
import { checkSdsConfigSource } from '../../xds-client/sds-client.ts';
import { XdsStreams, type XdsSubscription } from './xds-streams.ts';
import { AdsSecrets } from './ads-secrets.ts';
import { newUpdate, type MutableUpdate, type SdsCollector, type XdsContext, type XdsDumpState, type XdsManagerOptions } from './xds-state.ts';
import { CLUSTER_DECODER, XdsClusters } from './xds-clusters.ts';
import { LISTENER_DECODER, XdsListeners } from './xds-listeners.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';

const llog = logger('config');

export class XdsManager {
  readonly #o: XdsManagerOptions;
  readonly #streams: XdsStreams;
  readonly #clusters: XdsClusters;
  readonly #listeners: XdsListeners;
  /** Port reserved for each port-0 dynamic listener, kept across replacements. */
  readonly #ports = new Map<string, number>();
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
    const x: XdsContext = {
      o,
      streams: this.#streams,
      enqueue: (u) => this.#enqueue(u),
      gauges: () => this.#gauges(),
      sdsCollector: () => this.#sdsCollector(),
      referencedClusters: () => this.#listeners.referencedClusters(),
      collectClusterRemovals: (u) => this.#clusters.collectRemovals(u),
    };
    this.#clusters = new XdsClusters(x);
    this.#listeners = new XdsListeners(x);
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
    const clusters = this.#clusters;
    const listeners = this.#listeners;
    if (cds) {
      this.#cds = this.#streams.subscribe({
        type: 'cluster',
        spec: cds,
        decoder: CLUSTER_DECODER,
        names: undefined,
        statPrefix: 'cluster_manager.cds.',
        onUpdate: (u) => clusters.onCds(u, this.#cds?.stateOfTheWorld ?? true),
      });
      const outcome = await this.#cds.initialized;
      llog.info(`cds: initial fetch ended (${outcome}); ${clusters.warming.size} cluster(s) warming`);
      await this.#until(() => clusters.warming.size === 0);
    }
    if (this.#closed) return;
    if (lds) {
      this.#lds = this.#streams.subscribe({
        type: 'listener',
        spec: lds,
        decoder: LISTENER_DECODER,
        names: undefined,
        statPrefix: 'listener_manager.lds.',
        onUpdate: (u) => listeners.onLds(u, this.#lds?.stateOfTheWorld ?? true),
        onInvalid: (bad) => listeners.onInvalid(bad),
      });
      const outcome = await this.#lds.initialized;
      llog.info(`lds: initial fetch ended (${outcome}); ${listeners.warming.size} listener(s) warming`);
      await this.#until(() => listeners.warming.size === 0);
    }
    if (listeners.staticRds.length > 0 && !this.#closed) {
      // Static listeners' RDS: subscribed once the dynamic listeners are in; initialized when all arrived or timed out.
      const update = newUpdate();
      listeners.syncRds(update);
      this.#enqueue(update);
      const specs = listeners.staticRds.map((r) => r.spec);
      const ms = specs.some((x) => x.initialFetchTimeoutMs === 0) ? 0 : Math.max(...specs.map((x) => x.initialFetchTimeoutMs));
      let timer: LongTimer | undefined;
      await Promise.race([this.#until(() => listeners.staticRoutesReady()), ...(ms > 0 ? [new Promise<void>((r) => (timer = setLongTimeout(r, ms)))] : [])]);
      timer?.clear();
    }
    await this.#queue;
  }

  /** Resolves once every update queued so far reached the workers. */
  flushed(): Promise<void> {
    return this.#queue;
  }

  dumpState(): XdsDumpState {
    const c = this.#clusters;
    const l = this.#listeners;
    return {
      cdsVersion: this.#cds?.version ?? '',
      ldsVersion: this.#lds?.version ?? '',
      activeClusters: c.active,
      warmingClusters: c.warming,
      activeListeners: l.active,
      warmingListeners: l.warming,
      drainingListeners: l.draining,
      listenerErrors: l.errors,
      routes: l.routes,
      endpoints: c.endpoints,
    };
  }

  /** Everything active now as one worker update (a worker restarted by the watchdog starts from it). */
  fullUpdate(): XdsWorkerUpdate {
    const c = this.#clusters;
    return {
      routes: [...this.#listeners.routes.values()].map((r) => r.proto),
      clusters: [...c.active.values()].map((e) => {
        const endpoints = e.eds ? c.endpoints.get(e.eds.name)?.proto : undefined;
        return endpoints ? { cluster: e.proto, endpoints } : { cluster: e.proto };
      }),
      listeners: [...this.#listeners.active.values()].map((l) => l.proto),
      ports: Object.fromEntries(this.#ports),
    };
  }

  /** Dynamic listeners active now (for /listeners and /certs). */
  activeListenerConfigs(): ListenerConfig[] {
    return [...this.#listeners.active.values()].map((l) => l.config);
  }

  activeClusterConfigs(): ClusterConfig[] {
    return [...this.#clusters.active.values()].map((c) => c.config);
  }

  close(): void {
    this.#closed = true;
    this.#clusters.close();
    this.#listeners.close();
    this.#streams.close();
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  #sdsCollector(): SdsCollector {
    const refs: SdsReference[] = [];
    return {
      hooks: { staticSecrets: this.#o.config.secrets, sds: (ref) => void refs.push(ref) },
      check: (): ConfigError[] =>
        refs.flatMap((ref) => {
          const r = checkSdsConfigSource(ref.configSource, this.#o.config.clusters, joinPath(ref.path, 'sds_config'), this.#o.plan.ads !== undefined);
          return r.ok ? [] : [...r.errors];
        }),
      subscribe: () => {
        for (const ref of refs) this.#o.onSdsRef?.(ref);
      },
    };
  }

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
          const entry = this.#listeners.active.get(l.name);
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
    const c = this.#clusters;
    const l = this.#listeners;
    s.gauge('cluster_manager.active_clusters', 'max').set(c.staticNames.size + c.active.size);
    s.gauge('cluster_manager.warming_clusters', 'max').set(c.warming.size);
    s.gauge('listener_manager.total_listeners_active', 'max').set(l.staticNames.size + l.active.size);
    s.gauge('listener_manager.total_listeners_warming', 'max').set(l.warming.size);
    s.gauge('listener_manager.total_listeners_draining', 'max').set(l.draining.size);
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
