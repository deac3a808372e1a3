// One cluster on one worker: host membership (STATIC, STRICT_DNS, LOGICAL_DNS with refresh timers, EDS
// set from the main thread's ClusterLoadAssignments), the load balancer rebuilt on every change, each
// host's transport socket (transport-socket-match.ts), health (health-check/cluster-health.ts) and
// connection pools. A failed DNS resolution leaves the previous hosts (none at start), logs and counts
// update_failure; it is never fatal. A retired cluster (replaced or removed) lets its in-flight
// requests finish, then closes its pools.

import type { H2ClientSession } from '../http/h2/client-session.ts';
import type { Socket } from 'node:net';
import type { Http1Pool } from './http1-pool.ts';
import { logger } from '../log.ts';
import { MemorySecretStore } from '../tls/secret-store.ts';
import type { ClientTransportSocket, SecretStore } from '../tls/types.ts';
import { TransportSocketMatcher } from './transport-socket-match.ts';
import { SharedCounters } from '../shared-counters.ts';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import { resolveAll } from './dns.ts';
import { hostKey } from '../host-port.ts';
import { LoadBalancer } from './lb/index.ts';
import { ClusterPools } from './pool.ts';
import { ClusterCircuitBreakers } from './circuit-breakers.ts';
import { ClusterHealth, type HealthContext } from './health-check/cluster-health.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import { ok, type Result } from '../../config/result.ts';
import { parseClusterLoadAssignment } from './config.ts';
import type { Cluster, ClusterConfig, ClusterInfo, EndpointConfig, EndpointHealthCheck, LbConfig, EndpointMetadata, Host, HostHealth, LbContext, Locality, LocalityEndpointsConfig, CircuitBreakers, RoutingPriority, UpstreamResult, UpstreamTransportOptions } from './types.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';
import { OriginalDstHosts } from './original-dst.ts';

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
  readonly healthCheck: EndpointHealthCheck | undefined;
  /** The health the endpoint was configured (or EDS-reported) with; a change makes a new Host. */
  readonly configuredHealth: HostHealth;
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
    this.healthCheck = ep.healthCheck;
    this.health = ep.health;
    this.configuredHealth = ep.health;
  }
}

/**
 * Can `prev` stand for `next` (same address)? Anything the balancer or the transport socket choice
 * reads must match; otherwise the new host replaces it (and its health-check state starts over).
 */
function sameHost(prev: HostImpl, next: HostImpl): boolean {
  return (
    prev.priority === next.priority &&
    prev.weight === next.weight &&
    prev.configuredHealth === next.configuredHealth &&
    prev.localityWeight === next.localityWeight &&
    prev.hostname === next.hostname &&
    JSON.stringify(prev.locality) === JSON.stringify(next.locality) &&
    // Another health-check address (or disabling checks) starts the host's checks over, as in Envoy.
    JSON.stringify(prev.healthCheck) === JSON.stringify(next.healthCheck) &&
    JSON.stringify(prev.metadata) === JSON.stringify(next.metadata)
  );
}

interface ClusterStats {
  total: Gauge;
  healthy: Gauge;
  degraded: Gauge;
  change: Counter;
  updateAttempt: Counter;
  updateSuccess: Counter;
  updateFailure: Counter;
  lbHealthyPanic: Counter;
}

export class ClusterImpl implements Cluster {
  readonly info: ClusterInfo;
  readonly #config: ClusterConfig;
  /** DEFAULT-priority connections; HIGH-priority routes get their own pools (#highPools), as Envoy keys pools by priority. */
  readonly #pools: ClusterPools;
  #highPools: ClusterPools | undefined;
  readonly #statsStore: StatsStore;
  readonly #breakers: ClusterCircuitBreakers;
  readonly #stats: ClusterStats;
  readonly #sockets: TransportSocketMatcher;
  #hosts: HostImpl[] = [];
  #lb: LoadBalancer;
  /** The cluster's lb config; EDS updates may change overprovisioning_factor (the assignment's policy). */
  #lbConfig: LbConfig;
  readonly #workerId: number;
  /** DNS clusters: the last good hosts per endpoint, `locality index/endpoint index`. */
  readonly #resolved = new Map<string, HostImpl[]>();
  #timer: LongTimer | undefined;
  #closed = false;
  /** Active health checking and outlier detection (health-check/cluster-health.ts). */
  readonly #health: ClusterHealth;
  /** ORIGINAL_DST clusters: hosts made per destination, which choose them instead of the balancer. */
  readonly #originalDst: OriginalDstHosts<HostImpl> | undefined;

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
    this.#statsStore = stats;
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
      lbHealthyPanic: stats.counter(`${p}lb_healthy_panic`),
    };
    this.#lbConfig = config.lb;
    this.#workerId = healthCtx.workerId;
    this.#lb = new LoadBalancer(config.lb, []);
    // Checks connect over each host's transport socket, or the one transport_socket_match_criteria picks.
    const criteria = config.healthCheck?.transportSocketMatchCriteria;
    const checkSocket = criteria ? (): ClientTransportSocket | undefined => this.#sockets.forLabels(criteria) : (h: Host): ClientTransportSocket | undefined => h.transportSocket;
    this.#health = new ClusterHealth(config, healthCtx, () => this.healthChanged(), checkSocket);
    if (config.originalDst) {
      const loc: LocalityEndpointsConfig = { locality: undefined, weight: undefined, priority: 0, endpoints: [] };
      this.#originalDst = new OriginalDstHosts(
        config.originalDst,
        (address, port) => new HostImpl(address, { address, port, hostname: undefined, weight: 1, health: 'healthy', pipe: false }, loc, this.#sockets),
        (hosts) => this.#setHosts(hosts),
        stats.counter(`${p}original_dst_host_invalid`),
      );
    }
  }

  /**
   * Initial membership; resolves when DNS clusters finished their first resolution and the first
   * round of active health checks is done. EDS clusters start with `endpoints` (none until they come).
   */
  async init(endpoints?: EdsEndpoints): Promise<void> {
    if (this.#config.type === 'EDS') {
      if (endpoints) this.setEndpoints(endpoints);
      else this.#setHosts([]);
    } else if (this.#config.type === 'STATIC' || this.#config.type === 'ORIGINAL_DST') {
      this.#setHosts(this.#hostsOf(this.#config.localities));
    } else {
      await this.#resolve();
    }
    await this.#health.ready();
  }

  #hostsOf(localities: readonly LocalityEndpointsConfig[]): HostImpl[] {
    const hosts: HostImpl[] = [];
    for (const loc of localities) for (const ep of loc.endpoints) hosts.push(new HostImpl(ep.address, ep, loc, this.#sockets));
    return hosts;
  }

  /**
   * EDS: the cluster's endpoints from a ClusterLoadAssignment. Hosts whose address, priority, weight
   * and reported health stay are kept (with their health-check and outlier state and pools).
   * update_attempt/update_success count once per process (worker 0), as Envoy counts per update.
   */
  setEndpoints(endpoints: EdsEndpoints): void {
    if (this.#closed) return;
    const counts = this.#workerId === 0;
    if (counts) this.#stats.updateAttempt.inc();
    const op = endpoints.overprovisioningFactor ?? this.#config.lb.overprovisioningFactor;
    const lbChanged = op !== this.#lbConfig.overprovisioningFactor;
    if (lbChanged) this.#lbConfig = { ...this.#lbConfig, overprovisioningFactor: op };
    if (!this.#setHosts(this.#hostsOf(endpoints.localities)) && lbChanged) this.healthChanged();
    if (counts) this.#stats.updateSuccess.inc();
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
    this.#timer = setLongTimeout(() => void this.#resolve(), c.dnsRefreshRateMs);
    this.#timer.unref();
  }

  /** Swaps membership, keeping Host objects (health, active requests) whose key stayed; true when it rebuilt the balancer. */
  #setHosts(next: HostImpl[]): boolean {
    const old = new Map<string, HostImpl[]>();
    for (const h of this.#hosts) {
      const l = old.get(h.key);
      if (l) l.push(h);
      else old.set(h.key, [h]);
    }
    let changed = next.length !== this.#hosts.length;
    const hosts = next.map((h) => {
      const prev = old.get(h.key)?.shift();
      if (prev && sameHost(prev, h)) return prev;
      changed = true;
      return h;
    });
    const keys = new Set(hosts.map((h) => h.key));
    const removed = [...old.values()].flat().filter((h) => !keys.has(h.key));
    for (const h of removed) {
      void this.#pools.removeHost(h.key);
      void this.#highPools?.removeHost(h.key);
    }
    if (changed || this.#hosts.length === 0) {
      if (changed) this.#stats.change.inc();
      this.#hosts = hosts;
      this.#health.setHosts(hosts);
      this.healthChanged();
      return true;
    }
    return false;
  }

  healthChanged(): void {
    this.#lb = new LoadBalancer(this.#lbConfig, this.#hosts, this.#stats.lbHealthyPanic);
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

  /** Now serving in place of a cluster of the same name (health results go to the other workers from here on). */
  activate(): void {
    this.#health.activate();
  }

  /** Health checking and outlier detection state (tests). */
  get health(): ClusterHealth {
    return this.#health;
  }

  chooseHost(ctx: LbContext): Host | undefined {
    if (this.#originalDst) return this.#closed ? undefined : this.#originalDst.choose(ctx);
    return this.#lb.chooseHost(ctx);
  }

  /** The current balancer (tests, admin). */
  get loadBalancer(): LoadBalancer {
    return this.#lb;
  }

  /** The pools for a routing priority; HIGH's are made on first use (their connections count against HIGH's breakers). */
  #poolsFor(priority: RoutingPriority | undefined): ClusterPools {
    if (priority !== 'HIGH') return this.#pools;
    return (this.#highPools ??= new ClusterPools(this.#config, this.#statsStore, this.#breakers.get('HIGH')));
  }

  http1Pool(host: Host, transport?: UpstreamTransportOptions, priority?: RoutingPriority): Http1Pool {
    return this.#poolsFor(priority).http1Pool(host, transport);
  }

  http2Session(host: Host, transport?: UpstreamTransportOptions, priority?: RoutingPriority): Promise<H2ClientSession> {
    return this.#poolsFor(priority).http2Session(host, transport);
  }

  connect(host: Host, transport?: UpstreamTransportOptions): Promise<Socket> {
    return this.#pools.connect(host, transport);
  }

  /**
   * Replaced or removed (CDS): stops DNS and health checking at once; requests in flight finish on
   * the pools, which close once idle (close() still bounds them, at shutdown).
   */
  async retire(): Promise<void> {
    this.#closed = true;
    this.#timer?.clear();
    this.#originalDst?.close();
    this.#health.close();
    await Promise.all([this.#pools.drain(), this.#highPools?.drain()]);
    this.#sockets.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.clear();
    this.#originalDst?.close();
    this.#health.close();
    this.#sockets.close();
    await Promise.all([this.#pools.close(), this.#highPools?.close()]);
  }
}

/** An EDS ClusterLoadAssignment, parsed. */
export interface EdsEndpoints {
  readonly localities: readonly LocalityEndpointsConfig[];
  /** policy.overprovisioning_factor, percent; undefined -> the cluster's (140 by default). */
  readonly overprovisioningFactor: number | undefined;
}

/** Parses an EDS ClusterLoadAssignment; `path` names it in errors. */
export function parseEdsEndpoints(la: ClusterLoadAssignment__Output, path: string): Result<EdsEndpoints> {
  const r = parseClusterLoadAssignment(la, 'EDS', path);
  if (!r.ok) return r;
  const op = la.policy?.overprovisioning_factor?.value;
  if (op !== undefined && op < 1) return { ok: false, errors: [{ path: `${path}.policy.overprovisioning_factor`, reason: 'value must be greater than 0' }] };
  return ok({ localities: r.value, overprovisioningFactor: op });
}
