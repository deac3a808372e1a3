// Outlier detection for one cluster in one worker (passive health checking, Envoy's DetectorImpl):
// consecutive 5xx / gateway failure / local-origin failure eject inline; success-rate and
// failure-percentage ejection and unejection run on the `interval` sweep. An ejected host carries
// FAILED_OUTLIER_CHECK and the cluster rebuilds its balancer. Per worker: each worker's detector
// sees only its own traffic (Envoy aggregates on the main thread); documented in the report.
// Never throws; a result for an unknown host is ignored.

import type { Counter, Gauge, StatsStore } from '../../stats.ts';
import type { Host, UpstreamResult } from '../types.ts';
import { FAILED_OUTLIER_CHECK, hasHostFlag, setHostFlags } from '../health-check/flags.ts';
import type { OutlierDetectionConfig } from './config.ts';
import { type LongTimer, setLongInterval } from '../../long-timers.ts';

export type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure'
  | 'success_rate'
  | 'local_origin_success_rate'
  | 'failure_percentage'
  | 'failure_percentage_local_origin';

const TYPES: readonly EjectionType[] = [
  'consecutive_5xx',
  'consecutive_gateway_failure',
  'consecutive_local_origin_failure',
  'success_rate',
  'local_origin_success_rate',
  'failure_percentage',
  'failure_percentage_local_origin',
];

/** Success-rate bucket pair: requests counted this interval, read after the swap. */
class SuccessRateMonitor {
  #total = 0;
  #success = 0;
  #lastTotal = 0;
  #lastSuccess = 0;
  add(success: boolean): void {
    this.#total++;
    if (success) this.#success++;
  }
  swap(): void {
    this.#lastTotal = this.#total;
    this.#lastSuccess = this.#success;
    this.#total = 0;
    this.#success = 0;
  }
  /** [success rate percent, volume] of the last interval; undefined without requests. */
  last(): [number, number] | undefined {
    return this.#lastTotal === 0 ? undefined : [(this.#lastSuccess * 100) / this.#lastTotal, this.#lastTotal];
  }
}

class HostMonitor {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;
  readonly external = new SuccessRateMonitor();
  readonly local = new SuccessRateMonitor();
  ejectTimeBackoff = 0;
  lastEjection: number | undefined;
  lastUnejection: number | undefined;
  jitterMs = 0;
  numEjections = 0;
}

export interface DetectorOptions {
  /** Monotonic ms clock (tests pass a fake). */
  readonly now?: () => number;
  /** [0, 1) random source for enforcing_* and jitter. */
  readonly random?: () => number;
  /** false: no interval timer; the caller drives sweep() (tests). */
  readonly timer?: boolean;
}

export class OutlierDetector {
  readonly #config: OutlierDetectionConfig;
  readonly #onChange: () => void;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #monitors = new Map<Host, HostMonitor>();
  readonly #active: Gauge;
  readonly #enforcedTotal: Counter;
  readonly #overflow: Counter;
  readonly #detected = new Map<EjectionType, Counter>();
  readonly #enforced = new Map<EjectionType, Counter>();
  #timer: LongTimer | undefined;
  #ejected = 0;

  constructor(config: OutlierDetectionConfig, stats: StatsStore, statPrefix: string, onChange: () => void, opts: DetectorOptions = {}) {
    this.#config = config;
    this.#onChange = onChange;
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
    const p = `${statPrefix}outlier_detection.`;
    this.#active = stats.gauge(`${p}ejections_active`);
    this.#enforcedTotal = stats.counter(`${p}ejections_enforced_total`);
    this.#overflow = stats.counter(`${p}ejections_overflow`);
    for (const t of TYPES) {
      this.#detected.set(t, stats.counter(`${p}ejections_detected_${t}`));
      this.#enforced.set(t, stats.counter(`${p}ejections_enforced_${t}`));
    }
    if (opts.timer !== false) {
      this.#timer = setLongInterval(() => this.sweep(), config.intervalMs);
      this.#timer.unref();
    }
  }

  /** Tracks membership: new hosts get a monitor, removed hosts drop theirs (and their ejection). */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [h] of this.#monitors) {
      if (keep.has(h)) continue;
      this.#monitors.delete(h);
      if (hasHostFlag(h, FAILED_OUTLIER_CHECK)) this.#setEjected(this.#ejected - 1);
    }
    for (const h of hosts) if (!this.#monitors.has(h)) this.#monitors.set(h, new HostMonitor());
  }

  /** One upstream attempt's outcome (the router's reportResult). */
  report(host: Host, result: UpstreamResult): void {
    const m = this.#monitors.get(host);
    if (!m) return;
    if (result.kind === 'http') return this.#httpCode(host, m, result.status);
    const c = this.#config;
    if (!c.splitExternalLocalOriginErrors) {
      // Without the split, local-origin failures count as the 5xx Envoy maps them to; connect success is not a response.
      if (result.failure === 'timeout') this.#httpCode(host, m, 504);
      else if (result.failure !== 'success') this.#httpCode(host, m, 503);
      return;
    }
    if (result.failure === 'success') {
      m.local.add(true);
      m.consecutiveLocal = 0;
      return;
    }
    m.local.add(false);
    if (++m.consecutiveLocal === c.consecutiveLocalOriginFailure) this.#consecutive(host, m, 'consecutive_local_origin_failure');
  }

  #httpCode(host: Host, m: HostMonitor, code: number): void {
    const c = this.#config;
    if (c.splitExternalLocalOriginErrors) {
      // A response arrived: the connection worked (Envoy resets the local-origin streak).
      m.local.add(true);
      m.consecutiveLocal = 0;
    }
    if (code >= 500 && code < 600) {
      m.external.add(false);
      if (code === 502 || code === 503 || code === 504) {
        if (++m.consecutiveGateway === c.consecutiveGatewayFailure) this.#consecutive(host, m, 'consecutive_gateway_failure');
      } else {
        m.consecutiveGateway = 0;
      }
      if (++m.consecutive5xx === c.consecutive5xx) this.#consecutive(host, m, 'consecutive_5xx');
    } else {
      m.external.add(true);
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
    }
  }

  #consecutive(host: Host, m: HostMonitor, type: EjectionType): void {
    // Reset the streak so a new bout is detected even without an interleaved success.
    if (type === 'consecutive_5xx') m.consecutive5xx = 0;
    else if (type === 'consecutive_gateway_failure') m.consecutiveGateway = 0;
    else m.consecutiveLocal = 0;
    if (hasHostFlag(host, FAILED_OUTLIER_CHECK)) return;
    this.#detected.get(type)!.inc();
    this.#eject(host, m, type);
  }

  #enforcing(type: EjectionType): number {
    const c = this.#config;
    switch (type) {
      case 'consecutive_5xx':
        return c.enforcingConsecutive5xx;
      case 'consecutive_gateway_failure':
        return c.enforcingConsecutiveGatewayFailure;
      case 'consecutive_local_origin_failure':
        return c.enforcingConsecutiveLocalOriginFailure;
      case 'success_rate':
        return c.enforcingSuccessRate;
      case 'local_origin_success_rate':
        return c.enforcingLocalOriginSuccessRate;
      case 'failure_percentage':
        return c.enforcingFailurePercentage;
      case 'failure_percentage_local_origin':
        return c.enforcingFailurePercentageLocalOrigin;
    }
  }

  #eject(host: Host, m: HostMonitor, type: EjectionType): void {
    const c = this.#config;
    // Current Envoy (since always_eject_one_host): eject only while the share ejected, this host
    // included, stays within max_ejection_percent, or for the first ejection under
    // always_eject_one_host. (With the default 10%, a cluster of fewer than 10 hosts ejects nothing
    // unless always_eject_one_host is set.)
    const ejectedPercent = (100 * (this.#ejected + 1)) / this.#monitors.size;
    if (ejectedPercent > Math.min(100, c.maxEjectionPercent) && !(c.alwaysEjectOneHost && this.#ejected === 0)) {
      this.#overflow.inc();
      return;
    }
    if (this.#random() * 100 >= this.#enforcing(type)) return;
    this.#enforcedTotal.inc();
    this.#enforced.get(type)!.inc();
    this.#setEjected(this.#ejected + 1);
    // The multiplier grows per ejection until base × multiplier passes max_ejection_time.
    if (m.ejectTimeBackoff * c.baseEjectionTimeMs < c.maxEjectionTimeMs + c.baseEjectionTimeMs) m.ejectTimeBackoff++;
    m.numEjections++;
    m.lastEjection = this.#now();
    m.jitterMs = c.maxEjectionTimeJitterMs > 0 ? Math.floor(this.#random() * (c.maxEjectionTimeJitterMs + 1)) : 0;
    if (setHostFlags(host, FAILED_OUTLIER_CHECK, true)) this.#onChange();
  }

  #setEjected(n: number): void {
    this.#ejected = n;
    this.#active.set(n);
  }

  /** Returns an ejected host to service (the interval sweep, or a passing active health check). */
  uneject(host: Host): void {
    const m = this.#monitors.get(host);
    if (!m || !hasHostFlag(host, FAILED_OUTLIER_CHECK)) return;
    this.#setEjected(this.#ejected - 1);
    m.consecutive5xx = 0;
    m.consecutiveGateway = 0;
    m.consecutiveLocal = 0;
    m.lastUnejection = this.#now();
    if (setHostFlags(host, FAILED_OUTLIER_CHECK, false)) this.#onChange();
  }

  /** The `interval` sweep: unejects hosts whose time is up, then success-rate/failure-percentage ejection. */
  sweep(): void {
    const c = this.#config;
    const now = this.#now();
    for (const [host, m] of this.#monitors) {
      if (!hasHostFlag(host, FAILED_OUTLIER_CHECK)) {
        // Healthy for an interval since its last return: shrink the ejection-time multiplier.
        if (m.lastUnejection !== undefined && m.ejectTimeBackoff > 0 && now - m.lastUnejection >= c.intervalMs) m.ejectTimeBackoff--;
      } else if (m.lastEjection !== undefined) {
        const ejectFor = Math.min(c.baseEjectionTimeMs * m.ejectTimeBackoff, c.maxEjectionTimeMs) + m.jitterMs;
        if (now - m.lastEjection >= ejectFor) this.uneject(host);
      }
      m.external.swap();
      m.local.swap();
    }
    this.#successRate('external');
    if (c.splitExternalLocalOriginErrors) this.#successRate('local');
  }

  #successRate(which: 'external' | 'local'): void {
    const c = this.#config;
    const n = this.#monitors.size;
    if (n < c.successRateMinimumHosts && n < c.failurePercentageMinimumHosts) return;
    const sr: Array<[Host, HostMonitor, number]> = [];
    const fp: Array<[Host, HostMonitor, number]> = [];
    let sum = 0;
    for (const [host, m] of this.#monitors) {
      if (hasHostFlag(host, FAILED_OUTLIER_CHECK)) continue;
      const rv = (which === 'external' ? m.external : m.local).last();
      if (!rv) continue;
      const [rate, volume] = rv;
      if (volume >= c.successRateRequestVolume) {
        sr.push([host, m, rate]);
        sum += rate;
      }
      if (volume >= c.failurePercentageRequestVolume) fp.push([host, m, rate]);
    }
    if (sr.length > 0 && sr.length >= c.successRateMinimumHosts) {
      const mean = sum / sr.length;
      const variance = sr.reduce((v, [, , r]) => v + (r - mean) ** 2, 0) / sr.length;
      const threshold = mean - c.successRateStdevFactor * Math.sqrt(variance);
      const type: EjectionType = which === 'external' ? 'success_rate' : 'local_origin_success_rate';
      for (const [host, m, rate] of sr) {
        if (rate >= threshold || hasHostFlag(host, FAILED_OUTLIER_CHECK)) continue;
        this.#detected.get(type)!.inc();
        this.#eject(host, m, type);
      }
    }
    if (fp.length > 0 && fp.length >= c.failurePercentageMinimumHosts) {
      const type: EjectionType = which === 'external' ? 'failure_percentage' : 'failure_percentage_local_origin';
      for (const [host, m, rate] of fp) {
        if (100 - rate < c.failurePercentageThreshold || hasHostFlag(host, FAILED_OUTLIER_CHECK)) continue;
        this.#detected.get(type)!.inc();
        this.#eject(host, m, type);
      }
    }
  }

  /** Ejections currently in force (tests, admin). */
  get ejectionsActive(): number {
    return this.#ejected;
  }

  close(): void {
    this.#timer?.clear();
  }
}
