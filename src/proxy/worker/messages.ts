// Messages between the main thread and workers. Workers get the validated bootstrap (decoded,
// structured-cloned) and build their own runtime from it; the main thread asks, workers answer.

import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { StatsSnapshot } from '../stats.ts';
import type { LogLevel } from '../log.ts';
import type { CircuitBreakersConfig } from '../upstream/circuit-breakers-config.ts';
import type { TlsSecret } from '../tls/types.ts';

export interface WorkerInit {
  readonly workerId: number;
  readonly bootstrap: Bootstrap__Output;
  readonly logLevel: LogLevel;
  readonly componentLogLevels: ReadonlyArray<readonly [string, LogLevel]>;
  /** Backing store of the process-wide SharedCounters. */
  readonly shared: SharedArrayBuffer;
  /** The admin runtime layer as it stands when the worker starts. */
  readonly runtimeAdmin: Readonly<Record<string, string>>;
  /** Port to bind for each listener by name (port-0 listeners get the port the main thread reserved). */
  readonly ports: Readonly<Record<string, number>>;
  /** Dynamic secrets (SDS, watched files) the main thread holds when the worker starts, by name. */
  readonly secrets: Readonly<Record<string, TlsSecret>>;
}

export interface HostStatus {
  readonly address: string;
  readonly port: number;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly priority: number;
  readonly health: string;
  /** Envoy's health flag names (`failed_active_hc`, `failed_outlier_check`, …); empty = healthy. */
  readonly healthFlags?: readonly string[];
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export interface ClusterStatus {
  readonly name: string;
  readonly type: string;
  /** circuit_breakers thresholds (for `/clusters`). */
  readonly circuitBreakers?: CircuitBreakersConfig;
  readonly hosts: readonly HostStatus[];
}

export type MainToWorker =
  | { readonly type: 'stats'; readonly id: number }
  | { readonly type: 'clusters'; readonly id: number }
  | { readonly type: 'stop_accepting'; readonly id: number }
  | { readonly type: 'drain'; readonly id: number }
  | { readonly type: 'shutdown'; readonly id: number }
  | { readonly type: 'log_level'; readonly id: number; readonly level: LogLevel; readonly component?: string }
  | { readonly type: 'runtime'; readonly id: number; readonly values: Readonly<Record<string, string>> }
  | { readonly type: 'secret'; readonly id: number; readonly name: string; readonly secret: TlsSecret };

export type WorkerToMain =
  | { readonly type: 'ready'; readonly listeners: Record<string, number> }
  | { readonly type: 'init_failed'; readonly error: string }
  | { readonly type: 'reply'; readonly id: number; readonly stats?: StatsSnapshot; readonly clusters?: ClusterStatus[]; readonly connections?: number };
