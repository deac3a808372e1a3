// What the admin API reads from and does to the running server. The lead's server implements
// AdminSource; the admin module only formats. Methods may throw; the admin answers 500 then.

import type { StatsSnapshot } from '../stats.ts';
import type { HostHealth, Locality } from '../upstream/types.ts';

/** envoy.admin.v3.ServerInfo.State */
export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

export interface ServerInfo {
  /** Envoy-style version string (`<sha>/<version>/Clean/RELEASE/...`). */
  readonly version: string;
  readonly state: ServerState;
  /** 'disabled' with --disable-hot-restart. */
  readonly hotRestartVersion: string;
  /** Seconds since this process started. */
  readonly uptimeCurrentEpochS: number;
  /** Seconds since the first epoch (equal to the above without hot restart). */
  readonly uptimeAllEpochsS: number;
  /** envoy.admin.v3.CommandLineOptions as proto3 JSON (snake_case). */
  readonly commandLineOptions: Readonly<Record<string, unknown>>;
  /** envoy.config.core.v3.Node as proto3 JSON. */
  readonly node: Readonly<Record<string, unknown>>;
}

/** Envoy's per-host health flags (HostUtility::healthFlagsToString names). */
export type HealthFlag =
  | 'failed_active_hc'
  | 'failed_outlier_check'
  | 'failed_eds_health'
  | 'degraded_active_hc'
  | 'degraded_eds_health'
  | 'pending_dynamic_removal'
  | 'pending_active_hc'
  | 'excluded_via_immediate_hc_fail'
  | 'active_hc_timeout'
  | 'eds_status_draining';

export interface HostStatus {
  readonly address: string;
  readonly port: number;
  readonly hostname?: string;
  readonly weight: number;
  readonly priority: number;
  readonly locality?: Locality | undefined;
  readonly health: HostHealth;
  /** Set flags; when absent, derived from `health` as EDS health. */
  readonly healthFlags?: readonly HealthFlag[];
  /** Per-host counters (cx_total, rq_total, ...) and gauges (cx_active, rq_active); missing ones read 0. */
  readonly counters?: Readonly<Record<string, number>>;
  readonly gauges?: Readonly<Record<string, number>>;
}

export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export interface ClusterStatus {
  readonly name: string;
  readonly addedViaApi: boolean;
  /** alt_stat_name, else the name. */
  readonly observabilityName?: string;
  readonly edsServiceName?: string;
  /** Envoy's defaults (1024/1024/1024/3) when absent. */
  readonly circuitBreakers?: { readonly default?: CircuitBreakerThresholds; readonly high?: CircuitBreakerThresholds };
  readonly hosts: readonly HostStatus[];
}

export interface ListenerStatus {
  readonly name: string;
  /** Bound address (the real port when configured with port 0). */
  readonly address: string;
  readonly port: number;
}

export interface ConfigDumpOptions {
  /** `?resource=`: a repeated field of one dump (e.g. `dynamic_active_clusters`). */
  readonly resource?: string;
  /** `?name_regex=` applied to resource names. */
  readonly nameRegex?: RegExp;
  /** `?mask=`: field mask applied to each resource (comma-separated paths). */
  readonly mask?: string;
  /** `?include_eds`: add the EndpointsConfigDump. */
  readonly includeEds: boolean;
}

/** One runtime layer, lowest priority first (`static_layer`, `admin`, ...). */
export interface RuntimeLayer {
  readonly name: string;
  readonly values: Readonly<Record<string, string>>;
}

export interface AdminSource {
  /** Stats merged over the main thread and every worker. */
  stats(): Promise<StatsSnapshot>;
  serverInfo(): ServerInfo;
  /** Asked of the workers (worker 0's view) at each call. */
  clusters(): Promise<readonly ClusterStatus[]>;
  listeners(): readonly ListenerStatus[];
  /** envoy.admin.v3.ConfigDump as JSON; undefined when `resource` names nothing in it (-> 404). */
  configDump(opts: ConfigDumpOptions): unknown;
  runtime(): readonly RuntimeLayer[];
  /**
   * `/runtime_modify`: merges values into the admin layer (an empty value removes the key) on the
   * main thread and every worker. Rejects with Envoy's `No admin layer specified` when the runtime
   * has none (answered 503). Optional: no `/runtime_modify` endpoint when absent.
   */
  runtimeModify?(values: Readonly<Record<string, string>>): Promise<void>;
  /** `/healthcheck/fail` (true) and `/healthcheck/ok` (false). */
  healthcheck(fail: boolean): void;
  isHealthcheckFailed(): boolean;
  drainListeners(opts: { readonly inboundOnly: boolean; readonly graceful: boolean }): void;
  /** `/quitquitquit`: called after the response is written. */
  quit(): void;
  /** `/reset_counters`; optional (404 when absent). */
  resetCounters?(): void;
  /** `/certs`: envoy.admin.v3.Certificates as proto3 JSON; optional (404 when absent). */
  certs?(): unknown;
}
