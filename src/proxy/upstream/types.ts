// The upstream side as the router and tcp_proxy see it: clusters, hosts, load balancing
// and connection pools. Implementations live beside this file (cluster-manager.ts, lb/, pool.ts).

import type { ExtensionSpec } from '../../filters/registry.ts';
import type { Http1Pool } from './http1-pool.ts';
import type { Socket } from 'node:net';
import type { H2ClientSession } from '../http/h2/client-session.ts';
import type { KeepaliveOptions } from '../http/h2/keepalive.ts';
import type { StatsStore } from '../stats.ts';
import type { CircuitBreakersConfig } from './circuit-breakers-config.ts';
import type { OutlierDetectionConfig } from './outlier/config.ts';
import type { HealthCheckConfig } from './health-check/config.ts';
import type { ClientTransportSocket } from '../tls/types.ts';
import type { UpstreamTlsConfig } from '../tls/context-config.ts';
import type { AddressInfo } from '../http/stream-info.ts';
import type { HeaderMap } from '../http/headers.ts';

export type HostHealth = 'healthy' | 'unhealthy' | 'degraded';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

export interface Host {
  /** IP address (after DNS for STRICT_DNS/LOGICAL_DNS). */
  readonly address: string;
  readonly port: number;
  /** `address:port` (IPv6 in brackets), as Envoy prints hosts. */
  readonly key: string;
  /** Hostname the endpoint was configured with (DNS clusters), for auto_host_rewrite. */
  readonly hostname: string | undefined;
  readonly weight: number;
  readonly priority: number;
  readonly locality: Locality | undefined;
  /** LocalityLbEndpoints.load_balancing_weight (locality_weighted_lb_config); undefined when unset. */
  readonly localityWeight?: number | undefined;
  /** LbEndpoint.metadata.filter_metadata as plain JSON; undefined when the endpoint has none. */
  readonly metadata?: EndpointMetadata | undefined;
  /**
   * The transport socket this host's connections use, chosen once when the host is created
   * (transport_socket_matches against its metadata, else the cluster's transport_socket);
   * undefined = plaintext (raw_buffer).
   */
  readonly transportSocket?: ClientTransportSocket | undefined;
  /** Endpoint.health_check_config; undefined when the endpoint has none. */
  readonly healthCheck?: EndpointHealthCheck | undefined;
  health: HostHealth;
  /** Requests in flight to this host from this worker (LEAST_REQUEST reads it). */
  activeRequests: number;
}

/** What the load balancer may use to pick a host. */
export interface LbContext {
  /** Hash from the route's hash_policy (RING_HASH/MAGLEV); undefined -> random pick. */
  readonly hashKey: bigint | undefined;
  /** Hosts to avoid (retry host predicate); may be empty. */
  readonly excludeHosts?: ReadonlySet<string>;
  /** The downstream connection's local address (ORIGINAL_DST: used when `restored`). */
  readonly downstreamLocal?: AddressInfo | undefined;
  /** The downstream request's headers (ORIGINAL_DST with use_http_header). */
  readonly requestHeaders?: HeaderMap | undefined;
}

export type UpstreamProtocol = 'http1' | 'http2';

/**
 * Per-request inputs to an upstream TLS handshake (auto_sni / auto_san_validation, from the request's
 * Host): connections made with different options are never shared, as Envoy keys its pools by them.
 */
export interface UpstreamTransportOptions {
  /** SNI to send instead of the context's `sni`. */
  readonly sni?: string | undefined;
  /** A SAN the server certificate must present. */
  readonly verifySan?: string | undefined;
  /** ALPN to offer instead of the context's alpn_protocols (filter state `envoy.network.application_protocols`). */
  readonly alpn?: readonly string[] | undefined;
}

/** `upstream_http_protocol_options` (HttpProtocolOptions or the deprecated cluster field). */
export interface UpstreamHttpProtocolOptionsConfig {
  readonly autoSni: boolean;
  readonly autoSanValidation: boolean;
  /** Header to take the SNI from instead of Host/:authority; '' = none. Lower case. */
  readonly overrideAutoSniHeader: string;
}

export interface ClusterInfo {
  readonly name: string;
  /** STATIC | STRICT_DNS | LOGICAL_DNS | EDS | ORIGINAL_DST */
  readonly type: string;
  readonly lbPolicy: string;
  readonly connectTimeoutMs: number;
  readonly perConnectionBufferLimitBytes: number;
  /** Explicit protocol from HttpProtocolOptions / http2_protocol_options; 'downstream' = use_downstream_protocol_config. */
  readonly protocol: UpstreamProtocol | 'downstream';
  /** Upstream idle timeout for pooled connections (common_http_protocol_options.idle_timeout), ms. */
  readonly idleTimeoutMs: number;
  /** common_http_protocol_options.max_stream_duration: each upstream request's lifetime, ms; 0 = none. */
  readonly maxStreamDurationMs?: number;
  /** http2_protocol_options (the cluster's or its HttpProtocolOptions'), Envoy's defaults filled. */
  readonly http2?: UpstreamHttp2Options;
  /** Stats prefix, `cluster.<name>.` (or alt_stat_name). */
  readonly statPrefix: string;
  /** circuit_breakers thresholds per routing priority, Envoy's defaults filled. */
  readonly circuitBreakers: CircuitBreakersConfig;
  /** upstream_http_protocol_options (auto_sni, auto_san_validation); undefined when unset. */
  readonly upstreamHttpProtocolOptions?: UpstreamHttpProtocolOptionsConfig | undefined;
  /** The cluster's metadata.filter_metadata, plain JSON (Istio's `istio.services`); undefined when unset. */
  readonly metadata?: EndpointMetadata | undefined;
  /** The cluster's upstream network filters (`filters`) legate runs, in order (tcp_proxy runs them). */
  readonly upstreamFilters?: readonly UpstreamFilterConfig[] | undefined;
}

/** What legate's HTTP/2 client takes from a cluster's http2_protocol_options. */
export interface UpstreamHttp2Options {
  /** Streams opened per connection at most (the server's own limit applies too); past it a new connection is opened. */
  readonly maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE announced: each stream's receive window. */
  readonly initialStreamWindowSize: number;
  /** The connection's receive window. */
  readonly initialConnectionWindowSize: number;
  /** connection_keepalive: PINGs to the server, the connection aborted when one goes unanswered; undefined when unset. */
  readonly keepalive?: KeepaliveOptions | undefined;
}

/** One of a cluster's `filters`, resolved: an `upstream_network` extension and its parsed config. */
export interface UpstreamFilterConfig {
  readonly name: string;
  readonly spec: ExtensionSpec;
  readonly config: unknown;
}

export interface Cluster {
  readonly info: ClusterInfo;
  /** All hosts, every priority. */
  hosts(): readonly Host[];
  /** Picks a host per the cluster's lb_policy (priority/locality aware); undefined -> no healthy upstream. */
  chooseHost(ctx: LbContext): Host | undefined;
  /**
   * This worker's HTTP/1.1 connection pool for a host (keep-alive connections, one request at a time;
   * TLS when the host's transport socket says so).
   */
  http1Pool(host: Host, transport?: UpstreamTransportOptions, priority?: RoutingPriority): Http1Pool;
  /**
   * An HTTP/2 session to a host from this worker's session pool (legate's HTTP/2 client, h2c prior knowledge or
   * over the host's TLS transport socket; a new session when the current one is closing or at max
   * concurrent streams). Rejects with a ProxyError (connect failure/timeout, TLS handshake failure).
   */
  http2Session(host: Host, transport?: UpstreamTransportOptions, priority?: RoutingPriority): Promise<H2ClientSession>;
  /**
   * Opens a connection to a host (TCP, then TLS when the host's transport socket says so), honouring
   * connect_timeout for both (tcp_proxy). Rejects with a ProxyError.
   */
  connect(host: Host, transport?: UpstreamTransportOptions): Promise<Socket>;
  /** Call after changing any Host.health (health checker, outlier detection): rebuilds the load balancer. */
  healthChanged(): void;
  /**
   * Circuit breakers for a routing priority (Envoy's thresholds; process-wide across workers).
   * Callers acquire before using a resource and release exactly once after.
   */
  circuitBreakers(priority: RoutingPriority): CircuitBreakers;
  /** The router reports every upstream attempt's outcome here (outlier detection reads it). */
  reportResult(host: Host, result: UpstreamResult): void;
}

export type RoutingPriority = 'DEFAULT' | 'HIGH';

/** One breaker: `tryAcquire()` false means overflow (503 `x-envoy-overloaded`, flag UO). */
export interface ResourceLimit {
  tryAcquire(): boolean;
  release(): void;
  /** The count is at its limit (the `circuit_breakers.<priority>.*_open` gauges). */
  readonly open: boolean;
}

export interface CircuitBreakers {
  readonly connections: ResourceLimit;
  readonly pendingRequests: ResourceLimit;
  readonly requests: ResourceLimit;
  /** max_retries, or the retry_budget when configured (it reads the active request count). */
  readonly retries: ResourceLimit;
}

/** What happened to one upstream attempt, as outlier detection classifies it. */
export type UpstreamResult =
  | { readonly kind: 'http'; readonly status: number }
  | { readonly kind: 'local'; readonly failure: 'connect_failure' | 'timeout' | 'reset' | 'success' };

export interface ClusterManager {
  /** Resolves once every cluster finished its initial host resolution (STRICT_DNS...). */
  ready(): Promise<void>;
  get(name: string): Cluster | undefined;
  names(): readonly string[];
  readonly stats: StatsStore;
  /** Brings process-wide gauges (circuit breakers) up to date in this worker's stats; call before a snapshot. */
  refreshStats(): void;
  /** Closes pools and stops DNS timers. */
  close(): Promise<void>;
}

// ---- Parsed cluster config (parseCluster in config.ts makes it; frozen, shared by workers) ----

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';

/** upstream_bind_config.source_address: where upstream connections come from (port 0: any). */
export interface SourceAddress {
  readonly address: string;
  readonly port: number;
}

/** An ORIGINAL_DST cluster's original_dst_lb_config and cleanup_interval. */
export interface OriginalDstConfig {
  /** use_http_header: the destination may come from `httpHeaderName` (`IP:port`). */
  readonly useHttpHeader: boolean;
  /** http_header_name, lower case (default `x-envoy-original-dst-host`). */
  readonly httpHeaderName: string;
  /** upstream_port_override: this port instead of the destination's. */
  readonly upstreamPortOverride: number | undefined;
  /** cleanup_interval (default 5 s): a host unused for a whole interval is removed. */
  readonly cleanupIntervalMs: number;
}
export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';

export interface EndpointConfig {
  /** IP address (STATIC), DNS name (STRICT_DNS/LOGICAL_DNS) or a Unix socket path when `pipe`. */
  readonly address: string;
  readonly port: number;
  /** Endpoint.hostname, or the DNS name for DNS clusters. */
  readonly hostname: string | undefined;
  /** LbEndpoint.load_balancing_weight (default 1). */
  readonly weight: number;
  /** From LbEndpoint.health_status: UNHEALTHY/DRAINING/TIMEOUT -> unhealthy, DEGRADED -> degraded. */
  readonly health: HostHealth;
  readonly pipe: boolean;
  /** LbEndpoint.metadata.filter_metadata, plain JSON; undefined when unset. */
  readonly metadata?: EndpointMetadata | undefined;
  /** Endpoint.health_check_config; undefined when unset. */
  readonly healthCheck?: EndpointHealthCheck | undefined;
}

/** Endpoint.health_check_config: where and how active health checks reach one endpoint. */
export interface EndpointHealthCheck {
  /** port_value: the port checks connect to; 0: `address`'s port, else the endpoint's. */
  readonly port: number;
  /** address: the IP checks connect to instead of the endpoint's (Envoy: a direct IP address). */
  readonly address: string | undefined;
  /** `address`'s own port_value. */
  readonly addressPort: number;
  /** hostname: the checks' Host / :authority, over the health check's `host` / `authority`. */
  readonly hostname: string | undefined;
  /** disable_active_health_check: never checked, and never failed by active checks. */
  readonly disabled: boolean;
}

/** `Metadata.filter_metadata` with each Struct as plain JSON, by filter name. */
export type EndpointMetadata = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** One `transport_socket_matches` entry, parsed. */
export interface TransportSocketMatchConfig {
  readonly name: string;
  /** `match` as plain JSON: every key must be in the endpoint's `envoy.transport_socket_match` metadata with an equal value. */
  readonly match: Readonly<Record<string, unknown>>;
  /** undefined = raw_buffer (plaintext). */
  readonly tls: UpstreamTlsConfig | undefined;
}

export interface LocalityEndpointsConfig {
  readonly locality: Locality | undefined;
  /** LocalityLbEndpoints.load_balancing_weight; undefined when unset. */
  readonly weight: number | undefined;
  readonly priority: number;
  readonly endpoints: readonly EndpointConfig[];
  /** LocalityLbEndpoints.metadata.filter_metadata, plain JSON; undefined when unset. */
  readonly metadata?: EndpointMetadata | undefined;
}

export interface LbConfig {
  readonly policy: LbPolicy;
  /** least_request_lb_config.choice_count (default 2). */
  readonly choiceCount: number;
  /** least_request_lb_config.active_request_bias (default 1.0). */
  readonly activeRequestBias: number;
  /** ring_hash_lb_config (defaults 1024 and 8M). */
  readonly minRingSize: number;
  readonly maxRingSize: number;
  /** maglev_lb_config.table_size (default 65537, prime). */
  readonly maglevTableSize: number;
  /** common_lb_config.healthy_panic_threshold, percent (default 50). */
  readonly panicThresholdPercent: number;
  /** load_assignment.policy.overprovisioning_factor, percent (default 140). */
  readonly overprovisioningFactor: number;
  /** common_lb_config.consistent_hashing_lb_config.use_hostname_for_hashing. */
  readonly useHostnameForHashing: boolean;
  /** common_lb_config.locality_weighted_lb_config set. */
  readonly localityWeighted: boolean;
}

export interface ClusterConfig extends ClusterInfo {
  /** Static endpoints (STATIC, DNS names for STRICT_DNS/LOGICAL_DNS); empty for EDS (they come from setEndpoints). */
  readonly localities: readonly LocalityEndpointsConfig[];
  /** EDS clusters: the ClusterLoadAssignment name to subscribe to (eds_cluster_config.service_name, else the cluster name). */
  readonly edsServiceName?: string | undefined;
  /** ORIGINAL_DST clusters: how hosts are found (they are made on demand, per request or connection). */
  readonly originalDst?: OriginalDstConfig | undefined;
  /** upstream_bind_config: the source address of every upstream connection; undefined = the system's choice. */
  readonly sourceAddress?: SourceAddress | undefined;
  readonly lb: LbConfig;
  readonly dnsLookupFamily: DnsLookupFamily;
  /** dns_refresh_rate, ms (default 5 s). */
  readonly dnsRefreshRateMs: number;
  /** circuit_breakers DEFAULT max_connections (default 1024). */
  readonly maxConnections: number;
  /** max_requests_per_connection (common_http_protocol_options or the legacy field); 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** outlier_detection; undefined when the cluster has none. */
  readonly outlierDetection?: OutlierDetectionConfig | undefined;
  /** health_checks[0]; undefined when the cluster has none. */
  readonly healthCheck?: HealthCheckConfig | undefined;
  /** Every UpstreamTlsContext the cluster may use (transport_socket, then each match's), for /certs. */
  readonly tlsContexts: readonly UpstreamTlsConfig[];
  /** The cluster's transport_socket; undefined = raw_buffer. Used when no transport_socket_matches entry matches. */
  readonly transportSocket?: UpstreamTlsConfig | undefined;
  /** transport_socket_matches in order (first match wins). */
  readonly transportSocketMatches?: readonly TransportSocketMatchConfig[];
}
