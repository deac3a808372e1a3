// Active health checking for one cluster (Envoy's HealthCheckerImplBase): one session per host,
// each on its own timer, applying healthy/unhealthy thresholds and Envoy's interval choice (no
// traffic yet, healthy, unhealthy, edges, jitter). Flags changes go to the owner through a hook.
// A probe failure is a health result, never an exception; close() stops every timer and socket.

import type { Counter, Gauge, StatsStore } from '../../stats.ts';
import type { Host, SourceAddress } from '../types.ts';
import type { HealthCheckConfig } from './config.ts';
import { ACTIVE_HC_TIMEOUT, DEGRADED_ACTIVE_HC, FAILED_ACTIVE_HC, PENDING_ACTIVE_HC, hasHostFlag, setHostFlags } from './flags.ts';
import { createProbe, type Probe, type ProbeResult, type ProbeTarget, type ProbeTls } from './probes.ts';
import type { ClientTransportSocket } from '../../tls/types.ts';
import { type LongTimer, setLongTimeout } from '../../long-timers.ts';

export interface CheckerHooks {
  /** A host's active-HC flags changed; `healthChanged` when Host.health did too. */
  flagsChanged(host: Host, healthChanged: boolean): void;
  /** A check passed (outlier detection may uneject the host). */
  checkPassed(host: Host): void;
  /** Has the cluster carried traffic yet? Until then Envoy checks at no_traffic_interval. */
  hasTraffic(): boolean;
  /** The transport socket a host's checks connect with (undefined: plaintext). */
  transportSocket(host: Host): ClientTransportSocket | undefined;
  /** The cluster's upstream_bind_config source address, which checks connect from too. */
  readonly source?: SourceAddress | undefined;
}

interface HcStats {
  attempt: Counter;
  success: Counter;
  failure: Counter;
  networkFailure: Counter;
  passiveFailure: Counter;
  verifyCluster: Counter;
  healthy: Gauge;
  degraded: Gauge;
}

type Transition = 'unchanged' | 'changed' | 'pending';
type Failure = 'active' | 'network' | 'timeout';

class Session {
  readonly host: Host;
  readonly #parent: HealthChecker;
  readonly #probe: Probe;
  #numHealthy = 0;
  #numUnhealthy = 0;
  #first = true;
  #seq = 0;
  #timer: LongTimer | undefined;
  #timeout: LongTimer | undefined;
  #closed = false;
  /** Resolved after the first check's result. */
  readonly firstResult: Promise<void>;
  #resolveFirst!: () => void;

  constructor(parent: HealthChecker, host: Host, probe: Probe) {
    this.#parent = parent;
    this.host = host;
    this.#probe = probe;
    this.firstResult = new Promise((r) => (this.#resolveFirst = r));
  }

  start(initialDelayMs: number): void {
    this.#schedule(initialDelayMs);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setLongTimeout(() => this.#run(), ms);
    this.#timer.unref();
  }

  #run(): void {
    if (this.#closed) return;
    const seq = ++this.#seq;
    this.#parent.stats.attempt.inc();
    this.#timeout = setLongTimeout(() => {
      if (seq !== this.#seq) return;
      this.#probe.close(); // a fresh connection next time
      this.#done(seq, undefined);
    }, this.#parent.config.timeoutMs);
    this.#timeout.unref();
    void this.#probe.check().then((r) => this.#done(seq, r));
  }

  /** `r` undefined = timed out. */
  #done(seq: number, r: ProbeResult | undefined): void {
    if (seq !== this.#seq || this.#closed) return;
    this.#seq++; // later answers to this attempt are ignored
    this.#timeout?.clear();
    let healthy: boolean;
    let t: Transition;
    if (r?.ok) {
      t = this.#success(r.degraded);
      healthy = true;
    } else {
      t = this.#failure(r ? r.type : 'timeout', r ? r.retriable : false);
      healthy = false;
    }
    this.#first = false;
    this.#resolveFirst();
    this.#schedule(this.#parent.nextInterval(healthy, t));
  }

  /** Envoy's handleSuccess(degraded). */
  #success(degraded: boolean): Transition {
    const p = this.#parent;
    this.#numUnhealthy = 0;
    let t: Transition = 'unchanged';
    let flagsChanged = false;
    let healthChanged = false;
    if (hasHostFlag(this.host, FAILED_ACTIVE_HC)) {
      // The very first result moves a host to healthy at once (Envoy: faster startup).
      if (this.#first || ++this.#numHealthy === p.config.healthyThreshold) {
        healthChanged = setHostFlags(this.host, FAILED_ACTIVE_HC | ACTIVE_HC_TIMEOUT, false);
        flagsChanged = true;
        t = 'changed';
      } else {
        t = 'pending';
      }
    }
    if (hasHostFlag(this.host, PENDING_ACTIVE_HC)) {
      healthChanged = setHostFlags(this.host, PENDING_ACTIVE_HC, false) || healthChanged;
      flagsChanged = true;
    }
    // x-envoy-degraded: only a passing check sets or clears it (a failing one leaves it).
    if (degraded !== hasHostFlag(this.host, DEGRADED_ACTIVE_HC)) {
      healthChanged = setHostFlags(this.host, DEGRADED_ACTIVE_HC, degraded) || healthChanged;
      flagsChanged = true;
      if (t === 'unchanged') t = 'changed';
    }
    p.stats.success.inc();
    if (flagsChanged) p.changed(this.host, healthChanged);
    p.hooks.checkPassed(this.host);
    return t;
  }

  #failure(type: Failure, retriable: boolean): Transition {
    const p = this.#parent;
    this.#numHealthy = 0;
    let t: Transition = 'unchanged';
    let flagsChanged = false;
    let healthChanged = false;
    if (!hasHostFlag(this.host, FAILED_ACTIVE_HC)) {
      // A wrong answer (not retriable) fails at once; network trouble needs unhealthy_threshold.
      if ((type === 'active' && !retriable) || ++this.#numUnhealthy >= p.config.unhealthyThreshold) {
        healthChanged = setHostFlags(this.host, FAILED_ACTIVE_HC, true);
        flagsChanged = true;
        t = 'changed';
      } else {
        t = 'pending';
      }
    }
    if (type === 'timeout' && !hasHostFlag(this.host, ACTIVE_HC_TIMEOUT)) {
      healthChanged = setHostFlags(this.host, ACTIVE_HC_TIMEOUT, true) || healthChanged;
      flagsChanged = true;
    }
    if (hasHostFlag(this.host, PENDING_ACTIVE_HC)) {
      healthChanged = setHostFlags(this.host, PENDING_ACTIVE_HC, false) || healthChanged;
      flagsChanged = true;
    }
    p.stats.failure.inc();
    if (type !== 'active') p.stats.networkFailure.inc();
    if (flagsChanged) p.changed(this.host, healthChanged);
    return t;
  }

  close(): void {
    this.#closed = true;
    this.#timer?.clear();
    this.#timeout?.clear();
    this.#probe.close();
    this.#resolveFirst();
  }
}

export class HealthChecker {
  readonly config: HealthCheckConfig;
  readonly hooks: CheckerHooks;
  readonly stats: HcStats;
  readonly #clusterName: string;
  readonly #statPrefix: string;
  readonly #random: () => number;
  readonly #sessions = new Map<Host, Session>();

  constructor(config: HealthCheckConfig, clusterName: string, statPrefix: string, stats: StatsStore, hooks: CheckerHooks, random: () => number = Math.random) {
    this.config = config;
    this.hooks = hooks;
    this.#clusterName = clusterName;
    this.#statPrefix = statPrefix;
    this.#random = random;
    const p = `${statPrefix}health_check.`;
    this.stats = {
      attempt: stats.counter(`${p}attempt`),
      success: stats.counter(`${p}success`),
      failure: stats.counter(`${p}failure`),
      networkFailure: stats.counter(`${p}network_failure`),
      passiveFailure: stats.counter(`${p}passive_failure`),
      verifyCluster: stats.counter(`${p}verify_cluster`),
      healthy: stats.gauge(`${p}healthy`, 'max'),
      degraded: stats.gauge(`${p}degraded`, 'max'),
    };
  }

  /**
   * New hosts start failed and pending (Envoy) and get a session; removed hosts stop theirs. A host
   * whose endpoint disables active checks gets neither.
   */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h, s] of this.#sessions) {
      if (keep.has(h)) continue;
      s.close();
      this.#sessions.delete(h);
    }
    for (const h of hosts) {
      if (this.#sessions.has(h) || h.healthCheck?.disabled) continue;
      setHostFlags(h, FAILED_ACTIVE_HC | PENDING_ACTIVE_HC, true);
      const s = new Session(this, h, createProbe(this.config.checker, this.#target(h), this.config.reuseConnection));
      this.#sessions.set(h, s);
      s.start(this.config.initialJitterMs > 0 ? Math.floor(this.#random() * this.config.initialJitterMs) : 0);
    }
    this.#countHealthy();
  }

  /** Resolves once every current host has had its first check answered (cluster warming). */
  firstRound(): Promise<void> {
    return Promise.all([...this.#sessions.values()].map((s) => s.firstResult)).then(() => undefined);
  }

  changed(host: Host, healthChanged: boolean): void {
    this.#countHealthy();
    this.hooks.flagsChanged(host, healthChanged);
  }

  /**
   * Where a host's checks go (Envoy's healthCheckAddress): the endpoint's health_check_config address
   * and port_value over the host's own (legate also takes the check's alt_port, which Envoy does not
   * implement); over the host's transport socket, or the one transport_socket_match_criteria picks.
   */
  #target(h: Host): ProbeTarget {
    const c = this.config;
    const ep = h.healthCheck;
    const pipe = h.port === 0 && h.address.startsWith('/');
    const address = ep?.address ?? h.address;
    const port = ep?.port || (ep?.address !== undefined ? ep.addressPort : 0) || (c.altPort ?? h.port);
    const socket = this.hooks.transportSocket(h);
    const tls: ProbeTls | undefined = socket ? { socket, alpn: c.tlsAlpn, statPrefix: this.#statPrefix, timeoutMs: c.timeoutMs } : undefined;
    const socketPath = pipe && ep?.address === undefined ? h.address : undefined;
    const source = socketPath === undefined ? this.hooks.source : undefined;
    return { address, port, socketPath, clusterName: this.#clusterName, hostname: ep?.hostname, tls, ...(source ? { source } : {}) };
  }

  #countHealthy(): void {
    let healthy = 0;
    let degraded = 0;
    for (const h of this.#sessions.keys()) {
      if (!hasHostFlag(h, FAILED_ACTIVE_HC)) healthy++;
      if (hasHostFlag(h, DEGRADED_ACTIVE_HC)) degraded++;
    }
    this.stats.healthy.set(healthy);
    this.stats.degraded.set(degraded);
  }

  /** Envoy's HealthCheckerImplBase::interval(), with jitter. */
  nextInterval(healthy: boolean, t: Transition): number {
    const c = this.config;
    let base: number;
    if (this.hooks.hasTraffic()) {
      if (healthy && t === 'pending') base = c.healthyEdgeIntervalMs;
      else if (!healthy && t === 'pending') base = c.unhealthyEdgeIntervalMs;
      else base = healthy ? c.intervalMs : c.unhealthyIntervalMs;
    } else {
      base = healthy && c.noTrafficHealthyIntervalMs > 0 ? c.noTrafficHealthyIntervalMs : c.noTrafficIntervalMs;
    }
    const pct = Math.floor((c.intervalJitterPercent * base) / 100);
    let ms = base;
    if (pct > 0) ms += Math.floor(this.#random() * pct);
    if (c.intervalJitterMs > 0) ms += Math.floor(this.#random() * c.intervalJitterMs);
    return ms;
  }

  close(): void {
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
  }
}
