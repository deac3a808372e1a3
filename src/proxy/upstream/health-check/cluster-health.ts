// A cluster's host health in one worker: active health checking and outlier detection together,
// each setting its own flags on hosts (flags.ts) and asking the cluster to rebuild its balancer.
// Across workers only worker 0 runs active checks; it publishes each host's active-HC flags into
// the process-wide SharedCounters, and the other workers poll them (every <=100 ms). Outlier
// detection stays per worker (each sees its own traffic). Without `shared` (tests, one worker)
// this worker checks on its own. Failures never escape: a lost check is a failed check.

import type { SharedCell, SharedCounters } from '../../shared-counters.ts';
import type { Counter, StatsStore } from '../../stats.ts';
import type { ClusterConfig, Host, UpstreamResult } from '../types.ts';
import type { ClientTransportSocket } from '../../tls/types.ts';
import { createRequire } from 'node:module';
import type { OutlierDetector } from '../outlier/detector.ts';
import type { HealthChecker } from './checker.ts';
import { ACTIVE_HC_FLAGS, FAILED_ACTIVE_HC, FAILED_OUTLIER_CHECK, PENDING_ACTIVE_HC, assignHostFlags, hasHostFlag, hostFlags } from './flags.ts';

/** The checker and the outlier detector are required for a cluster that configures them: a config without either never loads them. */
const lazy = createRequire(import.meta.url);

export interface HealthContext {
  readonly stats: StatsStore;
  readonly workerId: number;
  /** Process-wide cells; absent -> this worker runs its own active checks. */
  readonly shared?: SharedCounters | undefined;
  /**
   * A cluster replacing one of the same name (CDS): worker 0 keeps its results to itself until
   * activate(), so the other workers keep following the serving cluster's results while it warms.
   */
  readonly deferPublish?: boolean;
}

/** Set in a published cell so "not yet published" (0) differs from "no flags". */
const PUBLISHED = 1 << 20;
const FOLLOWER_POLL_MS = 100;

export class ClusterHealth {
  readonly #config: ClusterConfig;
  readonly #rebuild: () => void;
  readonly #shared: SharedCounters | undefined;
  readonly #checker: HealthChecker | undefined;
  readonly #outlier: OutlierDetector | undefined;
  /** Followers: hosts whose flags come from worker 0. */
  #followed: readonly Host[] = [];
  #poll: NodeJS.Timeout | undefined;
  readonly #cx: Counter & { readonly value?: number };
  #trafficPublished = false;
  #deferPublish: boolean;
  #hosts: readonly Host[] = [];

  /** `transportSocket`: what a host's active checks connect with (undefined: plaintext). */
  constructor(config: ClusterConfig, ctx: HealthContext, rebuild: () => void, transportSocket: (host: Host) => ClientTransportSocket | undefined = () => undefined) {
    this.#config = config;
    this.#rebuild = rebuild;
    this.#shared = ctx.shared;
    this.#deferPublish = ctx.deferPublish === true;
    this.#cx = ctx.stats.counter(`${config.statPrefix}upstream_cx_total`);
    if (config.outlierDetection) this.#outlier = new (lazy('../outlier/detector.ts') as typeof import('../outlier/detector.ts')).OutlierDetector(config.outlierDetection, ctx.stats, config.statPrefix, rebuild);
    const hc = config.healthCheck;
    if (!hc) return;
    if (!ctx.shared || ctx.workerId === 0) {
      this.#checker = new (lazy('./checker.ts') as typeof import('./checker.ts')).HealthChecker(hc, config.name, config.statPrefix, ctx.stats, {
        flagsChanged: (host, healthChanged) => {
          this.#publish(host);
          if (healthChanged) rebuild();
        },
        checkPassed: (host) => {
          if (this.#outlier && config.outlierDetection?.successfulActiveHealthCheckUnejectHost && hasHostFlag(host, FAILED_OUTLIER_CHECK)) this.#outlier.uneject(host);
        },
        hasTraffic: () => this.#hasTraffic(),
        transportSocket,
        source: config.sourceAddress,
      });
    } else {
      this.#poll = setInterval(() => this.#follow(), Math.min(FOLLOWER_POLL_MS, hc.intervalMs));
      this.#poll.unref();
    }
  }

  #cell(what: string): SharedCell | undefined {
    return this.#shared?.cell(`hc/${this.#config.name}/${what}`);
  }

  /** Has any worker made an upstream connection for this cluster (Envoy's upstream_cx_total.used())? */
  #hasTraffic(): boolean {
    if ((this.#cx.value ?? 0) > 0) return true;
    return (this.#cell('traffic')?.load() ?? 0) > 0;
  }

  #publish(host: Host): void {
    if (this.#deferPublish) return;
    this.#cell(`host/${host.key}`)?.store(PUBLISHED | (hostFlags(host) & ACTIVE_HC_FLAGS));
  }

  /** Followers: take worker 0's flags; report this worker's traffic. */
  #follow(): void {
    if (!this.#trafficPublished && (this.#cx.value ?? 0) > 0) {
      this.#trafficPublished = true;
      this.#cell('traffic')?.store(1);
    }
    let changed = false;
    for (const h of this.#followed) {
      const v = this.#cell(`host/${h.key}`)?.load() ?? 0;
      if (v & PUBLISHED) changed = assignHostFlags(h, ACTIVE_HC_FLAGS, v) || changed;
    }
    if (changed) this.#rebuild();
  }

  /** Call with the new membership before the cluster rebuilds its balancer. */
  setHosts(hosts: readonly Host[]): void {
    this.#hosts = hosts;
    this.#outlier?.setHosts(hosts);
    if (this.#checker) {
      this.#checker.setHosts(hosts);
      for (const h of hosts) this.#publish(h);
    } else if (this.#config.healthCheck) {
      const known = new Set(this.#followed);
      // Hosts whose endpoint disables active checks are never checked, so never failed by them.
      const checked = hosts.filter((h) => !h.healthCheck?.disabled);
      for (const h of checked) if (!known.has(h)) assignHostFlags(h, ACTIVE_HC_FLAGS, FAILED_ACTIVE_HC | PENDING_ACTIVE_HC);
      this.#followed = checked;
      this.#follow();
    }
  }

  /** The cluster now serves (it replaced the previous one): worker 0 publishes its results from here on. */
  activate(): void {
    if (!this.#deferPublish) return;
    this.#deferPublish = false;
    if (this.#checker) for (const h of this.#hosts) this.#publish(h);
  }

  /** Cluster warming: resolves after the first round of active checks (worker 0's, for followers). */
  async ready(): Promise<void> {
    if (this.#checker) {
      await this.#checker.firstRound();
      this.#cell('round')?.store(1);
      return;
    }
    const hc = this.#config.healthCheck;
    if (!hc) return;
    // Worker 0 may start later: wait for its first round, bounded by one check's worth of time.
    const deadline = Date.now() + hc.initialJitterMs + hc.timeoutMs + 1000;
    while ((this.#cell('round')?.load() ?? 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.#follow();
  }

  reportResult(host: Host, result: UpstreamResult): void {
    this.#outlier?.report(host, result);
  }

  /** The outlier detector (tests drive its sweep). */
  get outlierDetector(): OutlierDetector | undefined {
    return this.#outlier;
  }

  close(): void {
    clearInterval(this.#poll);
    this.#checker?.close();
    this.#outlier?.close();
  }
}
