// Extensions by Envoy type URL and by well-known name. Registration is an explicit call from
// filters/index.ts (registerBuiltins), never an import side effect; built-ins are registered by
// their metadata and their modules loaded when a config first names them.

import type { Result } from '../config/result.ts';
import type { StatsStore } from '../proxy/stats.ts';
import type { ClusterManager } from '../proxy/upstream/types.ts';
import type { SharedCounters } from '../proxy/shared-counters.ts';
import type { Runtime } from '../proxy/runtime.ts';
import type { SecretStore, TlsSecret } from '../proxy/tls/types.ts';
import type { ConfigSource__Output } from '../generated/envoy/config/core/v3/ConfigSource.ts';
import type { RouteTable } from '../proxy/http/route-types.ts';

export type ExtensionCategory = 'listener' | 'network' | 'http' | 'access_logger' | 'transport_socket' | 'upstream_network';

/** What a config parser may check against (runs on the main thread, before any socket). */
export interface ParseContext {
  /** Field path of this extension's config, for error messages. */
  readonly path: string;
  /** Names of clusters the bootstrap defines (statically). Undefined when clusters come from CDS. */
  readonly clusterNames: ReadonlySet<string> | undefined;
  /** TLS: static secrets and SDS references (absent where no TLS config can appear). */
  readonly tls?: TlsParseHooks;
  /**
   * RDS: an HCM with `rds` asks for its route configuration by name. The main thread records the
   * reference (and subscribes); a worker returns its live RouteSource for that name. Absent -> an
   * HCM with `rds` is a config error.
   */
  readonly rds?: (ref: RdsReference) => RouteSource;
  /** The listener's traffic_direction (Istio's stats filter reports as client or server by it); absent outside a listener. */
  readonly trafficDirection?: 'UNSPECIFIED' | 'INBOUND' | 'OUTBOUND';
}

/** An HCM's `rds`: the route configuration it serves, and where it comes from. */
export interface RdsReference {
  readonly routeConfigName: string;
  readonly configSource: ConfigSource__Output;
  /** Field path of the `rds` message. */
  readonly path: string;
}

/**
 * The route table an HCM serves: fixed for an inline `route_config`; for RDS a worker's live
 * entry, swapped when the main thread pushes a new RouteConfiguration of that name (the next
 * request uses it; streams already routed keep theirs). `table` is undefined until the first one.
 */
export interface RouteSource {
  readonly name: string;
  readonly table: RouteTable | undefined;
}

/** An `sds_secret_configs` entry with an `sds_config`: a secret the main thread must subscribe to. */
export interface SdsReference {
  readonly name: string;
  readonly configSource: ConfigSource__Output;
  /** Field path of the sds_secret_configs entry. */
  readonly path: string;
}

export interface TlsParseHooks {
  /** `static_resources.secrets`, resolved, by name (also pre-loaded into every worker's SecretStore). */
  readonly staticSecrets: ReadonlyMap<string, TlsSecret>;
  /** Records an SDS secret a TLS context refers to; the main thread subscribes to each one once. */
  sds(ref: SdsReference): void;
}

/** What a filter factory gets at run time, on a worker. */
export interface RuntimeContext {
  readonly stats: StatsStore;
  readonly clusterManager: ClusterManager;
  /** Worker index, 0-based. */
  readonly workerId: number;
  /** Process-wide counters shared by all workers (circuit breakers, token buckets). */
  readonly shared: SharedCounters;
  /** Runtime values (static layers + admin layer), updated in place by /runtime_modify. */
  readonly runtime: Runtime;
  /** Secrets by name (static and SDS), updated in place when the main thread pushes a new value. */
  readonly secrets: SecretStore;
}

export interface ExtensionSpec<C = unknown, F = unknown> {
  /** Well-known name, e.g. `envoy.filters.http.router`. */
  readonly name: string;
  /** Older names Envoy still accepts, e.g. `envoy.router`. */
  readonly aliases?: readonly string[];
  /** Fully qualified proto type, e.g. `envoy.extensions.filters.http.router.v3.Router`. */
  readonly protoType: string;
  readonly category: ExtensionCategory;
  /** Network/HTTP filters: must this filter be last in its chain (tcp_proxy, http_connection_manager, router)? */
  readonly terminal?: boolean;
  readonly status: 'stable' | 'alpha' | 'wip';
  readonly securityPosture: 'robust_to_untrusted_downstream' | 'robust_to_untrusted_downstream_and_upstream' | 'unknown' | 'data_plane_agnostic';
  /** Parses the decoded proto message (proto-loader object form) into a frozen config. */
  parse(message: unknown, ctx: ParseContext): Result<C>;
  /** Builds the run-time factory on a worker. */
  factory(config: C, ctx: RuntimeContext): F;
}

/**
 * What the registry knows of an extension before its module is loaded: Envoy's
 * `extensions_metadata.yaml` entry (names, type, category, status, security posture).
 */
export type ExtensionMetadata = Pick<ExtensionSpec, 'name' | 'aliases' | 'protoType' | 'category' | 'terminal' | 'status' | 'securityPosture'>;

/**
 * An extension known by its metadata whose module is loaded on first use: `load` returns the
 * module's register function, which registers the real spec(s) in place of the metadata.
 */
interface LazyExtension {
  readonly metadata: ExtensionMetadata;
  readonly load: () => (registry: ExtensionRegistry) => void;
}

type Entry = ExtensionSpec | LazyExtension;

const TYPE_PREFIX = 'type.googleapis.com/';

export class ExtensionRegistry {
  readonly #byName = new Map<string, Entry>();
  readonly #byType = new Map<string, Entry>();
  /** Register functions already run by a lazy load (one module may register several specs). */
  readonly #loaded = new Set<(registry: ExtensionRegistry) => void>();

  register<C, F>(spec: ExtensionSpec<C, F>): void {
    this.#add(spec as unknown as ExtensionSpec);
  }

  /**
   * Registers an extension by its metadata only; `load` (a synchronous require of its module) runs
   * when a config first names it, so a process loads the code of the extensions its config uses.
   */
  registerLazy(metadata: ExtensionMetadata, load: () => (registry: ExtensionRegistry) => void): void {
    this.#add({ metadata, load });
  }

  #add(e: Entry): void {
    const m = 'metadata' in e ? e.metadata : e;
    this.#byName.set(`${m.category}:${m.name}`, e);
    for (const a of m.aliases ?? []) this.#byName.set(`${m.category}:${a}`, e);
    this.#byType.set(`${m.category}:${m.protoType}`, e);
  }

  /** Finds an extension by type URL (preferred, as Envoy does) or by name; loads its module on first use. */
  find(category: ExtensionCategory, typeUrl: string | undefined, name: string | undefined): ExtensionSpec | undefined {
    if (typeUrl) {
      const t = typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
      return this.#resolve(this.#byType, `${category}:${t}`);
    }
    return name === undefined ? undefined : this.#resolve(this.#byName, `${category}:${name}`);
  }

  #resolve(map: Map<string, Entry>, key: string): ExtensionSpec | undefined {
    const e = map.get(key);
    if (e === undefined || !('metadata' in e)) return e;
    const register = e.load();
    if (!this.#loaded.has(register)) {
      this.#loaded.add(register);
      register(this);
    }
    const spec = map.get(key);
    if (spec === undefined || 'metadata' in spec) throw new Error(`extension ${e.metadata.name} (${e.metadata.protoType}): its module registered no ${e.metadata.category} spec for ${key}`);
    return spec;
  }

  /** Every extension's metadata (loads nothing). */
  list(): readonly ExtensionMetadata[] {
    return [...new Set([...this.#byName.values(), ...this.#byType.values()])].map((e) => ('metadata' in e ? e.metadata : e));
  }
}

/** The process-wide registry, filled by registerBuiltins() at start-up. */
export const registry = new ExtensionRegistry();
