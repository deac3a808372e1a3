// Messages between the main thread and workers. Workers get the validated bootstrap (decoded,
// structured-cloned) and build their own runtime from it; the main thread asks, workers answer.

import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { StatsSnapshot } from '../stats.ts';
import type { LogLevel } from '../log.ts';
import type { CircuitBreakersConfig } from '../upstream/circuit-breakers-config.ts';
import type { TlsSecret } from '../tls/types.ts';
import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { Cluster__Output } from '../../generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { UnpackedConfig } from '../../config/unpacked-anys.ts';

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
  /** --drain-time-s: how long listeners replaced or removed by LDS drain their connections (default 600). */
  readonly drainTimeS?: number;
  /** Process-wide Proxy-Wasm shared data and queues (src/proxy/wasm/shared-store.ts). */
  readonly wasmShared?: SharedArrayBuffer;
  /** The worker watchdog's beats and in-Wasm marks (watchdog.ts). */
  readonly watchdog?: SharedArrayBuffer;
  /**
   * V8's compiling tiers are held (v8-flags.ts) until a listener's first connection: the worker
   * turns them on for the process when its first comes.
   */
  readonly compilersHeldUntilTraffic?: boolean;
  /** Log every Proxy-Wasm host call (`legate wasm run --trace`). */
  readonly wasmTrace?: boolean;
  /** The bootstrap's Anys, already decoded by the main thread (unpacked-anys.ts); set by WorkerPool. */
  readonly unpacked?: UnpackedConfig;
}

export interface HostStatus {
  readonly address: string;
  readonly port: number;
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly priority: number;
  readonly health: string;
  /** Envoy's health flag names (`failed_active_hc`, `failed_outlier_check`, ...); empty = healthy. */
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

/**
 * A dynamic (xDS) config change the main thread has validated and warmed, pushed to every worker
 * as decoded protos (workers parse them again, as they parse the bootstrap, but get the contents of
 * their Anys already decoded: the 'xds' message's `unpacked`). A worker applies the
 * parts in this order, each resource replacing the one of the same name:
 * routes -> clusters -> endpoints -> listeners -> removeListeners -> removeClusters -> removeRoutes.
 * In-flight streams and connections finish on what they started with; removed or replaced
 * listeners drain (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY) for the drain time.
 */
export interface XdsWorkerUpdate {
  /** RDS RouteConfigurations by their name; HCMs with `rds` of that name use them from the next request. */
  readonly routes?: readonly RouteConfiguration__Output[];
  /** CDS clusters to add or replace; an EDS cluster comes with its first ClusterLoadAssignment. */
  readonly clusters?: readonly { readonly cluster: Cluster__Output; readonly endpoints?: ClusterLoadAssignment__Output }[];
  /** EDS updates for clusters already present, by cluster name. */
  readonly endpoints?: readonly { readonly clusterName: string; readonly assignment: ClusterLoadAssignment__Output }[];
  /** LDS listeners to add or replace (same address: swapped in place, old connections drained). */
  readonly listeners?: readonly Listener__Output[];
  /** Port to bind for a new listener whose address has port 0, by listener name (reserved by the main thread). */
  readonly ports?: Readonly<Record<string, number>>;
  readonly removeListeners?: readonly string[];
  readonly removeClusters?: readonly string[];
  readonly removeRoutes?: readonly string[];
}

export type MainToWorker =
  | { readonly type: 'stats'; readonly id: number }
  | { readonly type: 'clusters'; readonly id: number }
  | { readonly type: 'stop_accepting'; readonly id: number }
  | { readonly type: 'drain'; readonly id: number }
  | { readonly type: 'shutdown'; readonly id: number }
  | { readonly type: 'log_level'; readonly id: number; readonly level: LogLevel; readonly component?: string }
  | { readonly type: 'runtime'; readonly id: number; readonly values: Readonly<Record<string, string>> }
  | { readonly type: 'secret'; readonly id: number; readonly name: string; readonly secret: TlsSecret }
  | { readonly type: 'xds'; readonly id: number; readonly update: XdsWorkerUpdate; readonly unpacked?: UnpackedConfig };

export type WorkerToMain =
  | { readonly type: 'ready'; readonly listeners: Record<string, number> }
  | { readonly type: 'init_failed'; readonly error: string }
  | {
      readonly type: 'reply';
      readonly id: number;
      readonly stats?: StatsSnapshot;
      readonly clusters?: ClusterStatus[];
      readonly connections?: number;
      /** After 'xds': the bound port of every listener the worker now has, by name. */
      readonly listeners?: Record<string, number>;
      /** After 'xds': what the worker could not apply (should not happen: the main thread validated it). */
      readonly errors?: readonly string[];
    };
