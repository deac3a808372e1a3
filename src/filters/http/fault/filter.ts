// The fault filter per stream (Envoy's FaultFilter): picks the settings (per-route override or the
// filter's), checks the upstream cluster, downstream node and header matchers, then injects a delay
// (timer, request held) and/or an abort (local reply) -- delay first, abort after it, as Envoy does.
// Faults are capped process-wide by max_active_faults; an overflow lets the request through untouched.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { ResponseFlag } from '../../../proxy/errors.ts';
import type { Runtime, FractionalPercentValue } from '../../../proxy/runtime.ts';
import type { SharedCounters } from '../../../proxy/shared-counters.ts';
import type { Counter, Gauge, StatsStore } from '../../../proxy/stats.ts';
import { FaultHeaders, type FaultConfig } from './config.ts';
import { type LongTimer, setLongTimeout } from '../../../proxy/long-timers.ts';

/** Envoy's RcDetails::FaultAbort and the abort body. */
export const FAULT_ABORT_DETAILS = 'fault_filter_abort';
export const FAULT_ABORT_BODY = 'fault filter abort';

const UNLIMITED = 0x7fffffff;
const HTTP_OK = 200;

/** `http.<stat_prefix>.fault.*`, created once per stat prefix on a worker. */
export interface FaultStats {
  readonly prefix: string;
  readonly delaysInjected: Counter;
  readonly abortsInjected: Counter;
  readonly faultsOverflow: Counter;
  readonly activeFaults: Gauge;
}

export class FaultStatsCache {
  readonly #store: StatsStore;
  readonly #byPrefix = new Map<string, FaultStats>();

  constructor(store: StatsStore) {
    this.#store = store;
  }

  get(statPrefix: string): FaultStats {
    let s = this.#byPrefix.get(statPrefix);
    if (!s) {
      const p = `http.${statPrefix}.fault.`;
      s = {
        prefix: p,
        delaysInjected: this.#store.counter(`${p}delays_injected`),
        abortsInjected: this.#store.counter(`${p}aborts_injected`),
        faultsOverflow: this.#store.counter(`${p}faults_overflow`),
        activeFaults: this.#store.gauge(`${p}active_faults`),
      };
      this.#byPrefix.set(statPrefix, s);
    }
    return s;
  }

  /** `http.<stat_prefix>.fault.<downstream_cluster>.{delays,aborts}_injected`. */
  downstream(stats: FaultStats, cluster: string, what: 'delays_injected' | 'aborts_injected'): Counter {
    return this.#store.counter(`${stats.prefix}${cluster}.${what}`);
  }
}

/** What every stream of one worker shares. */
export interface FaultRuntime {
  readonly config: FaultConfig;
  readonly runtime: Runtime;
  readonly shared: SharedCounters;
  readonly stats: FaultStatsCache;
  /** Settings for this request: a per-route override, 'disabled', or undefined (use `config`). */
  routeSettings(callbacks: HttpFilterCallbacks): FaultConfig | 'disabled' | undefined;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

/** absl::SimpleAtoi on an unsigned integer: optional surrounding whitespace and `+`. */
function parseUint(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*\+?(\d+)\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Keys for `fault.http.<downstream_cluster>....` when x-envoy-downstream-service-cluster is set. */
interface DownstreamKeys {
  readonly cluster: string;
  readonly delayPercent: string;
  readonly abortPercent: string;
  readonly delayDuration: string;
  readonly abortHttpStatus: string;
  readonly abortGrpcStatus: string;
}

export class FaultFilter implements HttpFilter {
  readonly #rt: FaultRuntime;
  readonly #cb: HttpFilterCallbacks;
  #settings: FaultConfig;
  #stats: FaultStats | undefined;
  #downstream: DownstreamKeys | undefined;
  #timer: LongTimer | undefined;
  #faultActive = false;
  #activeKey = '';

  constructor(rt: FaultRuntime, callbacks: HttpFilterCallbacks) {
    this.#rt = rt;
    this.#cb = callbacks;
    this.#settings = rt.config;
  }

  onRequestHeaders(headers: HeaderMap, _endStream: boolean): FilterHeadersStatus {
    const route = this.#rt.routeSettings(this.#cb);
    if (route === 'disabled') return FilterHeadersStatus.Continue;
    const s = (this.#settings = route ?? this.#rt.config);
    if (!s.abort && !s.delay) return FilterHeadersStatus.Continue;
    if (!this.#matchesUpstreamCluster(s, headers)) return FilterHeadersStatus.Continue;
    if (s.downstreamNodes.size > 0) {
      const node = headers.get(FaultHeaders.downstreamServiceNode);
      if (node === undefined || !s.downstreamNodes.has(node)) return FilterHeadersStatus.Continue;
    }
    if (s.headers && !s.headers(headers)) return FilterHeadersStatus.Continue;

    const dc = headers.get(FaultHeaders.downstreamServiceCluster);
    if (dc !== undefined && dc !== '') {
      const p = `fault.http.${dc}.`;
      this.#downstream = {
        cluster: dc,
        delayPercent: `${p}delay.fixed_delay_percent`,
        abortPercent: `${p}abort.abort_percent`,
        delayDuration: `${p}delay.fixed_duration_ms`,
        abortHttpStatus: `${p}abort.http_status`,
        abortGrpcStatus: `${p}abort.grpc_status`,
      };
    }
    this.#stats = this.#rt.stats.get(this.#cb.statPrefix);

    const delay = this.#delayDuration(headers);
    if (delay !== undefined && this.#tryIncActiveFaults()) {
      this.#timer = setLongTimeout(() => this.#afterDelay(headers), delay);
      this.#recordInjected('delays_injected');
      this.#cb.streamInfo.responseFlags.add(ResponseFlag.DelayInjected);
      return FilterHeadersStatus.StopIteration;
    }
    if (this.#maybeAbort(headers)) return FilterHeadersStatus.StopIteration;
    return FilterHeadersStatus.Continue;
  }

  onDestroy(): void {
    this.#timer?.clear();
    this.#timer = undefined;
    if (this.#faultActive) {
      this.#faultActive = false;
      this.#rt.shared.cell(this.#activeKey).add(-1);
      this.#stats?.activeFaults.dec();
    }
  }

  #afterDelay(headers: HeaderMap): void {
    this.#timer = undefined;
    // Delays can be followed by aborts.
    if (!this.#maybeAbort(headers)) this.#cb.continueDecoding();
  }

  #matchesUpstreamCluster(s: FaultConfig, headers: HeaderMap): boolean {
    if (s.upstreamCluster === '') return true;
    const action = this.#cb.route()?.action;
    return action?.kind === 'route' && action.pickCluster(headers, this.#cb.streamInfo) === s.upstreamCluster;
  }

  #enabled(key: string, dc: string | undefined, pct: FractionalPercentValue): boolean {
    const rt = this.#rt.runtime;
    if (rt.featureEnabled(key, pct, this.#rt.random())) return true;
    return dc !== undefined && rt.featureEnabled(dc, pct, this.#rt.random());
  }

  /** The configured percentage, or for header faults the `...-percentage` header capped by it. */
  #percentage(pct: FractionalPercentValue, header: boolean, headers: HeaderMap, name: string): FractionalPercentValue {
    if (!header) return pct;
    const n = parseUint(headers.get(name));
    if (n === undefined || n > 0xffffffff) return pct;
    return { numerator: Math.min(n, pct.numerator), denominator: pct.denominator };
  }

  #delayDuration(headers: HeaderMap): number | undefined {
    const d = this.#settings.delay;
    if (!d) return undefined;
    const keys = this.#settings.runtimeKeys;
    const pct = this.#percentage(d.percentage, d.spec.kind === 'header', headers, FaultHeaders.delayRequestPercentage);
    if (!this.#enabled(keys.delayPercent, this.#downstream?.delayPercent, pct)) return undefined;
    // A header delay without a (valid) header is no delay.
    const configured = d.spec.kind === 'fixed' ? d.spec.ms : parseUint(headers.get(FaultHeaders.delayRequest));
    if (configured === undefined) return undefined;
    const rt = this.#rt.runtime;
    let ms = rt.getInteger(keys.delayDuration, configured);
    if (this.#downstream) ms = rt.getInteger(this.#downstream.delayDuration, ms);
    return ms > 0 ? ms : undefined;
  }

  /** Envoy's abortStatus: an HTTP status wins; a gRPC status alone answers HTTP 200 with it. */
  #abortStatus(headers: HeaderMap): { http: number; grpc: number | undefined } | undefined {
    const a = this.#settings.abort;
    if (!a) return undefined;
    const keys = this.#settings.runtimeKeys;
    const header = a.spec.kind === 'header';
    const pct = this.#percentage(a.percentage, header, headers, FaultHeaders.abortRequestPercentage);
    if (!this.#enabled(keys.abortPercent, this.#downstream?.abortPercent, pct)) return undefined;
    const rt = this.#rt.runtime;
    let http: number | undefined;
    if (a.spec.kind === 'http') http = a.spec.status;
    else if (header) {
      const h = parseUint(headers.get(FaultHeaders.abortRequest));
      if (h !== undefined && h >= 200 && h < 600) http = h;
    }
    if (http !== undefined) {
      const dflt = http;
      http = rt.getInteger(keys.abortHttpStatus, dflt);
      if (this.#downstream) http = rt.getInteger(this.#downstream.abortHttpStatus, dflt);
      // A runtime value outside [200, 600) cannot be sent; keep the configured status then.
      return { http: http >= 200 && http < 600 ? http : dflt, grpc: undefined };
    }
    let grpc: number | undefined;
    if (a.spec.kind === 'grpc') grpc = a.spec.status;
    else if (header) grpc = parseUint(headers.get(FaultHeaders.abortGrpcRequest));
    if (grpc === undefined) return undefined;
    const dflt = grpc;
    grpc = rt.getInteger(keys.abortGrpcStatus, dflt);
    if (this.#downstream) grpc = rt.getInteger(this.#downstream.abortGrpcStatus, dflt);
    return { http: HTTP_OK, grpc };
  }

  #maybeAbort(headers: HeaderMap): boolean {
    const st = this.#abortStatus(headers);
    if (!st || !this.#tryIncActiveFaults()) return false;
    this.#recordInjected('aborts_injected');
    this.#cb.sendLocalReply(st.http, FAULT_ABORT_BODY, {
      details: FAULT_ABORT_DETAILS,
      flag: ResponseFlag.FaultInjected,
      ...(st.grpc !== undefined ? { grpcStatus: st.grpc } : {}),
    });
    return true;
  }

  #recordInjected(what: 'delays_injected' | 'aborts_injected'): void {
    const stats = this.#stats!;
    if (this.#downstream && !this.#settings.disableDownstreamClusterStats) this.#rt.stats.downstream(stats, this.#downstream.cluster, what).inc();
    (what === 'delays_injected' ? stats.delaysInjected : stats.abortsInjected).inc();
  }

  /** One active fault per stream, however many faults it gets; the limit is for the whole process. */
  #tryIncActiveFaults(): boolean {
    if (this.#faultActive) return true;
    const stats = this.#stats!;
    const s = this.#settings;
    const max = Math.min(this.#rt.runtime.getInteger(s.runtimeKeys.maxActiveFaults, s.maxActiveFaults ?? UNLIMITED), UNLIMITED);
    const key = `${stats.prefix}active_faults`;
    if (!this.#rt.shared.cell(key).tryIncrement(max)) {
      stats.faultsOverflow.inc();
      return false;
    }
    this.#activeKey = key;
    this.#faultActive = true;
    stats.activeFaults.inc();
    return true;
  }
}
