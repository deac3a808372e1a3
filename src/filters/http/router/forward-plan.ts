// What the router settles once per request before its first attempt (Envoy's Filter::decodeHeaders
// between picking the cluster and creating the upstream request): the timeouts, the retry and
// hedging set-up, the attempt-count header options, and the request headers as they go upstream
// (route header mutations, rewrites). Never fails: bad header values are ignored.

import type { HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterMutations, ClusterRouteAction, RouteEntry } from '../../../proxy/http/route-types.ts';
import type { Cluster, UpstreamTransportOptions } from '../../../proxy/upstream/types.ts';
import { autoTransportOptions, withAlpnOverride } from '../../../proxy/upstream/upstream-tls.ts';
import { isGrpcContentType } from '../../../proxy/http/grpc-content-type.ts';
import { isNoopMutator } from '../../../proxy/http/header-mutation.ts';
import { routePriority } from '../../../proxy/upstream/circuit-breakers.ts';
import type { RouteAction__Output } from '../../../generated/envoy/config/route/v3/RouteAction.ts';
import type { VirtualHost__Output } from '../../../generated/envoy/config/route/v3/VirtualHost.ts';
import type { RouterConfig } from './config.ts';
import type { ClusterRouterStats, VirtualClusterStats } from './stats.ts';
import { computeTimeout, type RequestTimeout } from './timeout.ts';
import { EMPTY_RETRY_POLICY, hedgePolicyFor, retryPolicyFor, type RetryPolicy } from './retry-policy.ts';
import { RetryState } from './retry-state.ts';
import type { AttemptSet } from './router-attempts.ts';

export interface ForwardPlan {
  readonly route: RouteEntry;
  readonly action: ClusterRouteAction;
  readonly cluster: Cluster;
  readonly cstats: ClusterRouterStats;
  /** The request's virtual cluster (its virtual host's virtual_clusters), when it has any. */
  readonly vstats: VirtualClusterStats | undefined;
  /** The request headers as sent upstream (mutated per attempt: attempt count, auto host rewrite). */
  readonly headers: HeaderMap;
  /** The picked weighted cluster's request/response header mutations, if it has any. */
  readonly clusterMutations: ClusterMutations | undefined;
  /** auto_sni / auto_san_validation from the (rewritten) Host, for every attempt. */
  readonly transport: UpstreamTransportOptions | undefined;
  /** The timeouts as computed (for setTimeoutHeaders on a retry). */
  readonly timeout: RequestTimeout;
  /** The route timeout, ms (0: none); it starts once the downstream request is complete. */
  readonly timeoutMs: number;
  /** x-envoy-upstream-rq-timeout-alt-response: 204 instead of 504 when the route timeout fires. */
  readonly altTimeoutResponse: boolean;
  readonly perTryTimeoutMs: number;
  readonly perTryIdleTimeoutMs: number;
  /** hedge_on_per_try_timeout (route or virtual host hedge_policy, x-envoy-hedge-on-per-try-timeout). */
  readonly hedgeOnPerTryTimeout: boolean;
  /** include_request_attempt_count: x-envoy-attempt-count on each upstream request. */
  readonly includeAttemptCount: boolean;
  /** include_attempt_count_in_response: x-envoy-attempt-count on the response. */
  readonly includeAttemptCountInResponse: boolean;
  /** include_is_timeout_retry_header: x-envoy-is-timeout-retry on each retry. */
  readonly includeIsTimeoutRetry: boolean;
  /** The upgrade (WebSocket) being proxied, if any: never retried. */
  readonly upgrade: string | undefined;
}

/**
 * Plans forwarding `headers` on `route` to `cluster`: sets up `att` (retry state, hedging, hosts
 * tried, the replay buffer) and applies the route's request header mutations and rewrites. The
 * headers that configure hedging and timeouts are read before those mutations, the retry headers
 * after them, as Envoy does; all of them are consumed (never sent upstream).
 */
export function planForward(
  config: RouterConfig,
  cb: HttpFilterCallbacks,
  att: AttemptSet,
  target: { route: RouteEntry; action: ClusterRouteAction; cluster: Cluster; cstats: ClusterRouterStats; vstats: VirtualClusterStats | undefined },
  headers: HeaderMap,
  endStream: boolean,
): ForwardPlan {
  const { route, action, cluster, cstats, vstats } = target;
  const raw = action.raw as Partial<RouteAction__Output> | undefined;
  const vhRaw = route.virtualHost.raw as Partial<VirtualHost__Output> | undefined;
  // Route-level retry_policy replaces the virtual host's (Envoy does not merge them).
  const policy: RetryPolicy = retryPolicyFor(action.retryPolicy ?? route.virtualHost.retryPolicy) ?? EMPTY_RETRY_POLICY;
  const grpc = isGrpcContentType(headers.get('content-type'));
  const upgrade = cb.upgrade !== undefined && headers.has('upgrade') ? cb.upgrade : undefined;
  // Envoy's order: hedging parameters, timeouts, the route's header mutations and rewrites, and
  // then the retry state, so a retry header added by the route counts. Most requests carry no
  // x-envoy-* header (external ones have them removed): one pass says so, and the reads are skipped.
  const envoyHeaders = headers.hasPrefix('x-envoy-');
  const hedgeOnPerTryTimeout = hedgeOnPerTryTimeoutFor(raw, vhRaw, envoyHeaders ? headers : undefined) && upgrade === undefined;
  const timeout = computeTimeout(headers, action, config, grpc, policy.perTryTimeoutMs, hedgeOnPerTryTimeout, envoyHeaders);
  // A weighted cluster's own mutations (and host_rewrite_literal) come before the route's.
  const clusterMutations = action.clusterHeaders?.(cluster.info.name);
  clusterMutations?.request.apply(headers, cb.streamInfo);
  route.requestHeaders.apply(headers, cb.streamInfo);
  action.rewrite(headers);
  // A retry header can be there only if the request brought x-envoy-* headers or the route added some.
  const retryHeaders = envoyHeaders || clusterMutations !== undefined || !isNoopMutator(route.requestHeaders);
  if (upgrade === undefined) {
    att.retry = RetryState.create(policy, headers, { stats: cstats, ...(vstats ? { vstats } : {}), retries: cluster.circuitBreakers(routePriority(raw)).retries }, retryHeaders);
    att.hedgeOnPerTryTimeout = hedgeOnPerTryTimeout;
  }
  // Consumed in one pass (x-envoy-expected-rq-timeout-ms is set by now, so a prefix check would not skip it).
  if (retryHeaders) headers.removeAll(RETRY_HEADERS);
  if (att.retry && policy.previousHosts) att.triedHosts = new Set();
  att.hostSelectionAttempts = policy.hostSelectionMaxAttempts;
  if (att.retry && !endStream) att.body = [];

  return {
    route,
    action,
    cluster,
    cstats,
    vstats,
    headers,
    clusterMutations,
    transport: withAlpnOverride(autoTransportOptions(cluster.info.upstreamHttpProtocolOptions, (n) => headers.get(n)), cb.streamInfo.filterState),
    timeout,
    timeoutMs: timeout.timeoutMs,
    altTimeoutResponse: timeout.altResponse,
    perTryTimeoutMs: timeout.perTryTimeoutMs,
    hedgeOnPerTryTimeout,
    perTryIdleTimeoutMs: policy.perTryIdleTimeoutMs,
    includeAttemptCount: vhRaw?.include_request_attempt_count === true,
    includeAttemptCountInResponse: vhRaw?.include_attempt_count_in_response === true,
    includeIsTimeoutRetry: vhRaw?.include_is_timeout_retry_header === true,
    upgrade,
  };
}

/** Envoy's finalHedgingParams: the hedge policy's hedge_on_per_try_timeout, overridden by x-envoy-hedge-on-per-try-timeout (consumed); `headers` undefined: the request has no x-envoy-* header. */
function hedgeOnPerTryTimeoutFor(raw: Partial<RouteAction__Output> | undefined, vhRaw: Partial<VirtualHost__Output> | undefined, headers: HeaderMap | undefined): boolean {
  let on = hedgePolicyFor(raw?.hedge_policy ?? vhRaw?.hedge_policy)?.hedgeOnPerTryTimeout ?? false;
  if (headers === undefined) return on;
  const h = headers.get('x-envoy-hedge-on-per-try-timeout');
  if (h !== undefined) {
    if (h === 'true') on = true;
    else if (h === 'false') on = false;
    headers.remove('x-envoy-hedge-on-per-try-timeout');
  }
  return on;
}

/** The retry headers Envoy's RetryStateImpl::create consumes, whether or not the request may be retried. */
const RETRY_HEADERS: ReadonlySet<string> = new Set([
  'x-envoy-retry-on',
  'x-envoy-retry-grpc-on',
  'x-envoy-max-retries',
  'x-envoy-retriable-header-names',
  'x-envoy-retriable-status-codes',
  'x-envoy-upstream-rq-per-try-timeout-ms',
]);
