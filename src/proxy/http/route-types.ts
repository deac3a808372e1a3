// What the route table hands the HCM and the router for one request. The table compiles
// RouteConfiguration once (route-table.ts); these objects are frozen and shared by streams.

import type { HeaderMap } from './headers.ts';
import type { StreamInfo } from './stream-info.ts';
import type { FractionalPercentValue } from '../runtime.ts';

export interface HeaderMutator {
  /** Applies *_headers_to_add / *_headers_to_remove at route, then virtual host, then route-config level (Envoy's order). */
  apply(headers: HeaderMap, info: StreamInfo): void;
}

export interface VirtualHostEntry {
  readonly name: string;
  /** Parsed typed_per_filter_config at virtual-host level, by filter name. */
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** Raw retry_policy of the virtual host (envoy.config.route.v3.RetryPolicy, proto-loader form), if any. */
  readonly retryPolicy: unknown;
  /** Raw VirtualHost (proto-loader form) for features read elsewhere (hedge_policy, include_*_attempt_count...). */
  readonly raw?: unknown;
  /** Virtual-host request_mirror_policies: used by routes that have none of their own (not merged). */
  readonly mirrorPolicies?: readonly MirrorPolicy[];
  /** virtual_clusters: the request's virtual cluster name (`other` when none matches); undefined without any. */
  readonly virtualClusters?: (headers: HeaderMap) => string;
}

/** One compiled RouteAction.RequestMirrorPolicy (route-mirror.ts). */
export interface MirrorPolicy {
  /** Fixed shadow cluster; undefined when `clusterHeader` names it. */
  readonly cluster: string | undefined;
  /** Lower-cased header whose first value names the shadow cluster; absent header -> no shadow. */
  readonly clusterHeader: string | undefined;
  /** runtime_fraction.runtime_key, if any. */
  readonly runtimeKey: string | undefined;
  /** runtime_fraction.default_value; 100% when runtime_fraction is unset. */
  readonly defaultValue: FractionalPercentValue;
  /** Don't append `-shadow` to the host part of `:authority`. */
  readonly disableShadowHostSuffixAppend: boolean;
}

/** A weighted cluster entry's request (with host_rewrite_literal) and response header mutations. */
export interface ClusterMutations {
  readonly request: HeaderMutator;
  readonly response: HeaderMutator;
}

/** RouteAction.MaxStreamDuration, in ms. */
export interface RouteStreamDuration {
  /** max_stream_duration; undefined = unset (the HCM's common_http_protocol_options one applies); 0 = none. */
  readonly maxMs: number | undefined;
  /** grpc_timeout_header_max; undefined = grpc-timeout is not honoured; 0 = honoured without a cap. */
  readonly grpcHeaderMaxMs: number | undefined;
  /** grpc_timeout_header_offset; 0 = none. */
  readonly grpcHeaderOffsetMs: number;
}

export interface ClusterRouteAction {
  readonly kind: 'route';
  /**
   * The upstream cluster for this request: the static cluster, a weighted pick, or the
   * `cluster_header` value. Undefined when cluster_header is absent from the request. With `info`,
   * a weighted pick is made once per request (kept in info.weightedPick) and repeated after.
   */
  pickCluster(headers: HeaderMap, info?: StreamInfo): string | undefined;
  /** HTTP status when the cluster does not exist (cluster_not_found_response_code; default 503). */
  readonly clusterNotFoundStatus: number;
  /**
   * Rewrites `:authority` (host_rewrite_literal, host_rewrite_header, host_rewrite_path_regex) and
   * then `:path` (prefix_rewrite / regex_rewrite), in place, recording the old path in
   * `x-envoy-original-path` unless `insertOriginalPath` is false (router's suppress_envoy_headers).
   * Envoy's order: header mutations (requestHeaders.apply) first, then this.
   */
  rewrite(headers: HeaderMap, opts?: { insertOriginalPath?: boolean }): void;
  /** auto_host_rewrite: replace `:authority` with the chosen host's hostname. */
  readonly autoHostRewrite: boolean;
  /** append_x_forwarded_host: the replaced `:authority` is appended to x-forwarded-host (auto_host_rewrite included). */
  readonly appendXForwardedHost?: boolean;
  /**
   * Weighted-cluster-level header mutations for the picked cluster (applied before the route's),
   * or undefined when that cluster entry has none.
   */
  readonly clusterHeaders?: ((cluster: string) => ClusterMutations | undefined) | undefined;
  /** Route timeout, ms; 0 disables. Default 15 s. */
  readonly timeoutMs: number;
  /** Per-route stream idle timeout override, ms; undefined = HCM's stream_idle_timeout. */
  readonly idleTimeoutMs: number | undefined;
  /**
   * RouteAction.max_stream_duration (Envoy's "new timeouts"): when present the router ignores
   * `timeoutMs` and max_grpc_timeout, and the connection manager bounds the whole stream instead.
   */
  readonly streamDuration?: RouteStreamDuration | undefined;
  /** Hash from hash_policy for RING_HASH/MAGLEV; undefined when no policy matched. */
  hash(headers: HeaderMap, info: StreamInfo): bigint | undefined;
  /** Raw retry_policy (proto-loader form) for the resilience work; undefined when none. */
  readonly retryPolicy: unknown;
  /** Raw route action (envoy.config.route.v3.RouteAction) for features read elsewhere. */
  readonly raw: unknown;
  /** request_mirror_policies; empty or absent -> the virtual host's, if any. */
  readonly mirrorPolicies?: readonly MirrorPolicy[];
}

export interface DirectResponseAction {
  readonly kind: 'direct_response';
  readonly status: number;
  readonly body: string | undefined;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  /** Builds the Location header value from the request headers. */
  location(headers: HeaderMap): string;
  /** 301 by default (MOVED_PERMANENTLY), 302, 303, 307, 308. */
  readonly status: number;
}

export interface RouteEntry {
  readonly name: string;
  readonly virtualHost: VirtualHostEntry;
  readonly action: ClusterRouteAction | DirectResponseAction | RedirectAction;
  /** typed_per_filter_config merged: route-level over virtual-host-level, by filter name. */
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** Route > virtual host > route configuration request header mutations. */
  readonly requestHeaders: HeaderMutator;
  readonly responseHeaders: HeaderMutator;
}

export interface RouteTable {
  readonly name: string;
  /** Matches `:authority` to a virtual host, then the routes in order. Undefined -> 404 NR. */
  match(headers: HeaderMap, info: StreamInfo): RouteEntry | undefined;
  /** internal_only_headers: the HCM removes these from requests that are not internal. */
  readonly internalOnlyHeaders?: readonly string[];
}
