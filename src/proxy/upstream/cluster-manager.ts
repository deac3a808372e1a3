// One worker's clusters: host membership (STATIC, STRICT_DNS, LOGICAL_DNS with refresh timers), the load
// balancer rebuilt on every change, each host's transport socket (transport-socket-match.ts), and
// connection pools. A failed DNS resolution leaves the previous hosts (none at start), logs and counts
// update_failure; it is never fatal.

import type { ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { logger } from '../log.ts';
import { MemorySecretStore } from '../tls/secret-store.ts';
import type { ClientTransportSocket, SecretStore } from '../tls/types.ts';
import { TransportSocketMatcher } from './transport-socket-match.ts';
import { SharedCounters } from '../shared-counters.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import { hostKey, resolveAll } from './dns.ts';
import { LoadBalancer } from './lb/index.ts';
import { ClusterPools } from './pool.ts';
import { ClusterCircuitBreakers } from './circuit-breakers.ts';
import { ClusterHealth, type HealthContext } from './health-check/cluster-health.ts';
import type { Cluster, ClusterConfig, ClusterInfo, ClusterManager, EndpointConfig, EndpointMetadata, Host, HostHealth, LbContext, Locality, LocalityEndpointsConfig, CircuitBreakers, RoutingPriority, UpstreamResult, UpstreamTransportOptions } from './types.ts';

const log = logger('upstream');

class HostImpl implements Host {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly priority: number;
  readonly locality: Locality | undefined;
  readonly localityWeight: number | undefined;
  readonly metadata: EndpointMetadata | undefined;
  readonly transportSocket: ClientTransportSocket | undefined;
  health: HostHealth;
  activeRequests = 0;

  constructor(address: string, ep: EndpointConfig, loc: LocalityEndpointsConfig, sockets: TransportSocketMatcher) {
    this.address = address;
    this.port = ep.port;
    this.key = ep.pipe ? address : hostKey(address, ep.port);
    this.hostname = ep.hostname;
    this.weight = ep.weight;
    this.priority = loc.priority;
    this.locality = loc.locality;
    this.localityWeight = loc.weight;
    this.metadata = ep.metadata;
    this.transportSocket = sockets.resolve(ep.metadata, loc.metadata);
    this.health = ep.health;
  }
}

interface ClusterStats {
  total: Gauge;
  healthy: Gauge;
  degraded: Gauge;
  change: Counter;
  updateAttempt: Counter;
  updateSuccess: Counter;
  updateFailure: Counter;
}

class ClusterImpl implements Cluster {
  readonly info: ClusterInfo;
  readonly #config: ClusterConfig;
  readonly #pools: ClusterPools;
  readonly #breakers: ClusterCircuitBreakers;
  readonly #stats: ClusterStats;
  readonly #sockets: TransportSocketMatcher;
  #hosts: Host[] = [];
  #lb: LoadBalancer;
  /** DNS clusters: the last good hosts per endpoint, `locality index/endpoint index`. */
  readonly #resolved = new Map<string, Host[]>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Active health checking and outlier detection (health-check/cluster-health.ts). */
  readonly #health: ClusterHealth;

  /**
   * `shared`: the process-wide counters the circuit breakers count in (one per process in production);
   * `secrets`: the worker's secrets, for the cluster's TLS transport sockets.
   */
  constructor(config: ClusterConfig, stats: StatsStore, healthCtx: HealthContext = { stats, workerId: 0 }, shared: SharedCounters = SharedCounters.create(64), secrets: SecretStore = new MemorySecretStore()) {
    this.info = config;
    this.#config = config;
    this.#sockets = new TransportSocketMatcher(config, { stats, secrets }, healthCtx.workerId === 0);
    this.#breakers = new ClusterCircuitBreakers(config.name, config.statPrefix, config.circuitBreakers, shared, stats);
    this.#pools = new ClusterPools(config, stats, this.#breakers.get('DEFAULT'));
    const p = config.statPrefix;
    // Every worker sees the same membership: 'max' keeps the merged gauge from multiplying by workers.
    this.#stats = {
      total: stats.gauge(`${p}membership_total`, 'max'),
      healthy: stats.gauge(`${p}membership_healthy`, 'max'),
      degraded: stats.gauge(`${p}membership_degraded`, 'max'),
      change: stats.counter(`${p}membership_change`),
      updateAttempt: stats.counter(`${p}update_attempt`),
      updateSuccess: stats.counter(`${p}update_success`),
      updateFailure: stats.counter(`${p}update_failure`),
    };
    this.#lb = new LoadBalancer(config.lb, []);
    this.#health = new ClusterHealth(config, healthCtx, () => this.healthChanged());
  }

  /** Initial membership; resolves when DNS clusters finished their first resolution. */
  async init(): Promise<void> {
    if (this.#config.type === 'STATIC') {
      const hosts: Host[] = [];
      for (const loc of this.#config.localities) for (const ep of loc.endpoints) hosts.push(new HostImpl(ep.address, ep, loc, this.#sockets));
      this.#setHosts(hosts);
    } else {
      await this.#resolve();
    }
    await this.#health.ready();
  }

  async #resolve(): Promise<void> {
    const c = this.#config;
    this.#stats.updateAttempt.inc();
    const jobs: Promise<boolean>[] = [];
    c.localities.forEach((loc, li) =>
      loc.endpoints.forEach((ep, ei) => {
        const id = `${li}/${ei}`;
        jobs.push(
          resolveAll(ep.address, c.dnsLookupFamily).then(
            (addrs) => {
              // LOGICAL_DNS keeps a single logical host: the first address returned.
              const use = c.type === 'LOGICAL_DNS' ? addrs.slice(0, 1) : addrs;
              this.#resolved.set(id, use.map((a) => new HostImpl(a, ep, loc, this.#sockets)));
              return true;
            },
            (err: unknown) => {
              log.warn(`cluster ${c.name}: DNS resolution of ${ep.address} failed: ${err instanceof Error ? err.message : String(err)}`);
              return false;
            },
          ),
        );
      }),
    );
    const results = await Promise.all(jobs);
    if (this.#closed) return;
    if (results.every((r) => r)) this.#stats.updateSuccess.inc();
    else this.#stats.updateFailure.inc();
    this.#setHosts([...this.#resolved.values()].flat());
    this.#timer = setTimeout(() => void this.#resolve(), c.dnsRefreshRateMs);
    this.#timer.unref();
  }

  /** Swaps membership, keeping Host objects (health, active requests) whose key stayed. */
  #setHosts(next: Host[]): void {
    const old = new Map<string, Host[]>();
    for (const h of this.#hosts) {
      const l = old.get(h.key);
      if (l) l.push(h);
      else old.set(h.key, [h]);
    }
    let changed = next.length !== this.#hosts.length;
    const hosts = next.map((h) => {
      const prev = old.get(h.key)?.shift();
      if (prev && prev.priority === h.priority && prev.weight === h.weight) return prev;
      changed = true;
      return h;
    });
    const removed = [...old.values()].flat().filter((h) => !hosts.some((n) => n.key === h.key));
    for (const h of removed) void this.#pools.removeHost(h.key);
    if (changed || this.#hosts.length === 0) {
      if (changed) this.#stats.change.inc();
      this.#hosts = hosts;
      this.#health.setHosts(hosts);
      this.healthChanged();
    }
  }

  healthChanged(): void {
    this.#lb = new LoadBalancer(this.#config.lb, this.#hosts);
    this.#stats.total.set(this.#hosts.length);
    this.#stats.healthy.set(this.#hosts.filter((h) => h.health === 'healthy').length);
    this.#stats.degraded.set(this.#hosts.filter((h) => h.health === 'degraded').length);
  }

  hosts(): readonly Host[] {
    return this.#hosts;
  }

  circuitBreakers(priority: RoutingPriority): CircuitBreakers {
    return this.#breakers.get(priority);
  }

  /** Thresholds and this worker's view of the process-wide counts (admin, stats refresh). */
  get breakers(): ClusterCircuitBreakers {
    return this.#breakers;
  }

  reportResult(host: Host, result: UpstreamResult): void {
    this.#health.reportResult(host, result);
  }

  /** Health checking and outlier detection state (tests). */
  get health(): ClusterHealth {
    return this.#health;
  }

  chooseHost(ctx: LbContext): Host | undefined {
    return this.#lb.chooseHost(ctx);
  }

  /** The current balancer (tests, admin). */
  get loadBalancer(): LoadBalancer {
    return this.#lb;
  }

  http1Pool(host: Host, transport?: UpstreamTransportOptions): Dispatcher {
    return this.#pools.http1Pool(host, transport);
  }

  http2Session(host: Host, transport?: UpstreamTransportOptions): Promise<ClientHttp2Session> {
    return this.#pools.http2Session(host, transport);
  }

  connect(host: Host, transport?: UpstreamTransportOptions): Promise<Socket> {
    return this.#pools.connect(host, transport);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#health.close();
    this.#sockets.close();
    await this.#pools.close();
  }
}

class ClusterManagerImpl implements ClusterManager {
  readonly stats: StatsStore;
  readonly #clusters = new Map<string, ClusterImpl>();
  readonly #ready: Promise<void>;

  constructor(clusters: readonly ClusterConfig[], ctx: ClusterManagerContext) {
    this.stats = ctx.stats;
    // Without the process's SharedCounters (single-worker tests) limits hold for this cluster manager.
    const shared = ctx.shared ?? SharedCounters.create(1024);
    const secrets = ctx.secrets ?? new MemorySecretStore();
    for (const c of clusters) this.#clusters.set(c.name, new ClusterImpl(c, ctx.stats, ctx, shared, secrets));
    ctx.stats.gauge('cluster_manager.active_clusters', 'max').set(this.#clusters.size);
    this.#ready = Promise.all([...this.#clusters.values()].map((c) => c.init())).then(() => undefined);
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

  refreshStats(): void {
    for (const c of this.#clusters.values()) c.breakers.refreshGauges();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#clusters.values()].map((c) => c.close()));
  }
}

export interface ClusterManagerContext {
  readonly stats: StatsStore;
  readonly workerId: number;
  readonly shared?: SharedCounters | undefined;
  /** The worker's secrets (static and SDS), for TLS transport sockets; empty when absent. */
  readonly secrets?: SecretStore | undefined;
}

/** One per worker: builds every cluster and starts its initial host resolution. */
export function createClusterManager(clusters: readonly ClusterConfig[], ctx: ClusterManagerContext): ClusterManager {
  return new ClusterManagerImpl(clusters, ctx);
}
