// The per-stream router: matches the route, picks cluster and host, forwards the request over
// HTTP/1.1 or HTTP/2 and streams the response back, retrying (retry_policy, per-try timeouts, hedging)
// until the response starts downstream (the attempts themselves: router-attempts.ts). Upstream failures
// become Envoy's local replies (503 UF/UC/UR, 504 UT, URX when retries ran out) before the response
// started, and a downstream reset after.

import type { Duplex } from 'node:stream';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction, RouteEntry } from '../../../proxy/http/route-types.ts';
import { ErrorCode, LocalReplies, ResponseFlag, type ProxyError } from '../../../proxy/errors.ts';
import type { Cluster, ClusterManager, UpstreamTransportOptions } from '../../../proxy/upstream/types.ts';
import { autoTransportOptions } from '../../../proxy/upstream/upstream-tls.ts';
import type { RouteAction__Output } from '../../../generated/envoy/config/route/v3/RouteAction.ts';
import type { VirtualHost__Output } from '../../../generated/envoy/config/route/v3/VirtualHost.ts';
import type { RouterConfig } from './config.ts';
import type { ClusterRouterStats, HttpRouterStats, RouterStatsCache } from './stats.ts';
import { computeTimeout } from './timeout.ts';
import { directResponseHeaders, upstreamFailureReply } from './local-replies.ts';
import { OVERLOADED_HEADERS, routePriority } from '../../../proxy/upstream/circuit-breakers.ts';
import type { ShadowSet, ShadowWriter } from './shadow.ts';
import { EMPTY_RETRY_POLICY, hedgePolicyFor, retryPolicyFor, type RetryPolicy } from './retry-policy.ts';
import { RetryState, type ResetKind } from './retry-state.ts';
import { AttemptSet } from './router-attempts.ts';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.ts';

/** What every router on a worker shares. */
export interface RouterRuntime {
  readonly config: RouterConfig;
  readonly clusterManager: ClusterManager;
  readonly stats: RouterStatsCache;
  /** Request mirroring (request_mirror_policies); absent → nothing is mirrored. */
  readonly shadow?: ShadowWriter;
}

export class RouterFilter implements HttpFilter, AttemptOwner {
  readonly #rt: RouterRuntime;
  readonly #cb: HttpFilterCallbacks;
  readonly #http: HttpRouterStats;
  #route: RouteEntry | undefined;
  #action: ClusterRouteAction | undefined;
  #cluster: Cluster | undefined;
  #cstats: ClusterRouterStats | undefined;
  /** The request headers as sent upstream (mutated per attempt: attempt count, auto host rewrite). */
  #headers: HeaderMap | undefined;
  /** auto_sni / auto_san_validation from the (rewritten) Host, for every attempt. */
  #transport: UpstreamTransportOptions | undefined;
  /** Attempts in flight, retries and hedging (router-attempts.ts). */
  readonly #att: AttemptSet;
  /** Mirrored copies of this request (shadow.ts), fed the body as it arrives. */
  #shadows: ShadowSet | undefined;
  #perTryTimeoutMs = 0;
  #perTryIdleTimeoutMs = 0;
  #includeAttemptCount = false;
  #includeAttemptCountInResponse = false;
  #requestTrailers: HeaderMap | undefined;
  #downstreamEnded = false;
  #upgrade: string | undefined;
  #responseStarted = false;
  #responseComplete = false;
  #timeoutMs = 0;
  #altTimeoutResponse = false;
  #timer: NodeJS.Timeout | undefined;
  #finished = false;

  constructor(rt: RouterRuntime, callbacks: HttpFilterCallbacks) {
    this.#rt = rt;
    this.#cb = callbacks;
    this.#http = rt.stats.http(callbacks.statPrefix);
    this.#att = new AttemptSet(callbacks, () => this.#finished, () => this.#startAttempt());
  }

  // ---- decode path ----

  onRequestHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    const cb = this.#cb;
    const info = cb.streamInfo;
    this.#http.rqTotal.inc();
    const route = cb.route();
    if (!route) {
      this.#http.noRoute.inc();
      this.#localReply(LocalReplies.noRoute.status, LocalReplies.noRoute.body, LocalReplies.noRoute.details, ResponseFlag.NoRouteFound);
      return FilterHeadersStatus.StopIteration;
    }
    this.#route = route;
    info.routeName = route.name;
    const action = route.action;
    if (action.kind === 'direct_response') {
      this.#http.rqDirectResponse.inc();
      this.#finished = true;
      cb.sendLocalReply(action.status, action.body ?? '', { details: 'direct_response', headers: directResponseHeaders(route, info) });
      return FilterHeadersStatus.StopIteration;
    }
    if (action.kind === 'redirect') {
      this.#http.rqRedirect.inc();
      this.#finished = true;
      cb.sendLocalReply(action.status, '', { details: 'direct_response', headers: directResponseHeaders(route, info, action.location(headers)) });
      return FilterHeadersStatus.StopIteration;
    }
    this.#forward(route, action, headers, endStream);
    return FilterHeadersStatus.StopIteration;
  }

  #forward(route: RouteEntry, action: ClusterRouteAction, headers: HeaderMap, endStream: boolean): void {
    const cb = this.#cb;
    const info = cb.streamInfo;
    const clusterName = action.pickCluster(headers);
    const cluster = clusterName === undefined ? undefined : this.#rt.clusterManager.get(clusterName);
    if (!cluster) {
      this.#http.noCluster.inc();
      this.#localReply(action.clusterNotFoundStatus, '', LocalReplies.noCluster.details, ResponseFlag.NoClusterFound);
      return;
    }
    this.#action = action;
    this.#cluster = cluster;
    info.clusterName = cluster.info.name;
    const cstats = (this.#cstats = this.#rt.stats.cluster(cluster.info.statPrefix));
    const raw = action.raw as Partial<RouteAction__Output> | undefined;
    const vhRaw = route.virtualHost.raw as Partial<VirtualHost__Output> | undefined;
    // Route-level retry_policy replaces the virtual host's (Envoy does not merge them).
    const policy: RetryPolicy = retryPolicyFor(action.retryPolicy ?? route.virtualHost.retryPolicy) ?? EMPTY_RETRY_POLICY;
    const grpc = headers.get('content-type')?.startsWith('application/grpc') === true;
    const timeout = computeTimeout(headers, action, this.#rt.config, grpc, policy.perTryTimeoutMs);
    this.#timeoutMs = timeout.timeoutMs;
    this.#altTimeoutResponse = timeout.altResponse;
    this.#perTryTimeoutMs = timeout.perTryTimeoutMs;
    this.#perTryIdleTimeoutMs = policy.perTryIdleTimeoutMs;
    this.#upgrade = cb.upgrade !== undefined && headers.has('upgrade') ? cb.upgrade : undefined;
    if (this.#upgrade === undefined) {
      const priority = raw?.priority === 'HIGH' ? 'HIGH' : 'DEFAULT';
      this.#att.retry = RetryState.create(policy, headers, { stats: cstats, retries: cluster.circuitBreakers(priority).retries });
      const hedge = hedgePolicyFor(raw?.hedge_policy ?? vhRaw?.hedge_policy);
      this.#att.hedgeOnPerTryTimeout = (hedge?.hedgeOnPerTryTimeout ?? false) || headers.get('x-envoy-hedge-on-per-try-timeout') === 'true';
    }
    if (this.#att.retry && policy.previousHosts) this.#att.triedHosts = new Set();
    this.#att.hostSelectionAttempts = policy.hostSelectionMaxAttempts;
    this.#includeAttemptCount = vhRaw?.include_request_attempt_count === true;
    this.#includeAttemptCountInResponse = vhRaw?.include_attempt_count_in_response === true;
    if (this.#att.retry && !endStream) this.#att.body = [];

    route.requestHeaders.apply(headers, info);
    action.rewrite(headers);
    this.#headers = headers;
    this.#transport = autoTransportOptions(cluster.info.upstreamHttpProtocolOptions, (n) => headers.get(n));
    this.#downstreamEnded = endStream;
    cb.onDownstreamWritable((writable) => {
      const w = this.#att.winner?.request;
      if (writable) w?.resumeResponse();
      else w?.pauseResponse();
    });
    if (!this.#startAttempt()) return;
    if (endStream) this.#onRequestComplete();
  }

  /** Picks a host and starts one attempt, replaying what the downstream sent so far. False after a local reply. */
  #startAttempt(): boolean {
    const cluster = this.#cluster!;
    const action = this.#action!;
    const headers = this.#headers!;
    const cstats = this.#cstats!;
    const info = this.#cb.streamInfo;
    const att = this.#att;
    const host = att.pickHost(cluster, action, headers);
    if (!host) {
      cstats.cxNoneHealthy.inc();
      const r = LocalReplies.noHealthyUpstream;
      this.#finishWithLocalReply(r.status, r.body, r.details, r.flag);
      return false;
    }
    info.upstreamHost = { address: host.address, port: host.port };
    const n = ++att.count;
    if (n === 1) {
      const route = this.#route!;
      this.#shadows = this.#rt.shadow?.start(route, headers, { endStream: this.#downstreamEnded, timeoutMs: this.#timeoutMs, downstreamProtocol: info.protocol, mainStatPrefix: cluster.info.statPrefix, bufferLimitBytes: this.#cb.bufferLimitBytes });
    }
    info.attemptCount = n - 1;
    if (this.#includeAttemptCount) headers.set('x-envoy-attempt-count', String(n));
    if (action.autoHostRewrite && host.hostname) headers.set(':authority', host.hostname);

    // Circuit breaker (max_requests, process-wide): over it Envoy answers 503 UO without an upstream request.
    const requests = cluster.circuitBreakers(routePriority(action.raw)).requests;
    if (!requests.tryAcquire()) {
      this.#overflowReply();
      return false;
    }
    const a = new UpstreamAttempt(this, cluster, host, n, cstats);
    a.holdRequestSlot(requests);
    att.launch(a, cluster, headers, { ended: this.#downstreamEnded, trailers: this.#requestTrailers, upgrade: this.#upgrade }, this.#transport);
    a.armIdle(this.#perTryIdleTimeoutMs);
    if (this.#downstreamEnded) a.armPerTry(this.#perTryTimeoutMs);
    return true;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    this.#shadows?.sendData(data, endStream);
    if (this.#finished || this.#headers === undefined) return FilterDataStatus.StopIterationNoBuffer;
    if (endStream) this.#downstreamEnded = true;
    const att = this.#att;
    if (att.body) {
      if (att.bodyBytes + data.length > this.#cb.bufferLimitBytes) {
        // Too big to replay: no more retries (Envoy's retry_or_shadow_abandoned).
        this.#cstats?.retryOrShadowAbandoned.inc();
        att.abandonRetries();
        if (att.list.length === 0) {
          this.#finishWithLocalReply(507, 'exceeded request buffer limit while retrying upstream', 'request_payload_exceeded_retry_buffer_limit', undefined);
          return FilterDataStatus.StopIterationNoBuffer;
        }
      } else if (data.length > 0) {
        att.body.push(data);
        att.bodyBytes += data.length;
      }
    }
    const list = att.list;
    for (let i = 0; i < list.length; i++) list[i]!.request?.sendData(data, endStream);
    if (endStream) this.#onRequestComplete();
    return FilterDataStatus.StopIterationNoBuffer;
  }

  onRequestTrailers(trailers: HeaderMap): FilterTrailersStatus {
    this.#shadows?.sendTrailers(trailers);
    if (this.#finished || this.#headers === undefined) return FilterTrailersStatus.StopIteration;
    this.#downstreamEnded = true;
    this.#requestTrailers = trailers;
    for (const a of this.#att.list) a.request?.sendTrailers(trailers);
    this.#onRequestComplete();
    return FilterTrailersStatus.StopIteration;
  }

  /** Envoy starts the route timeout (and the per-try timeout) once the whole downstream request has been received. */
  #onRequestComplete(): void {
    if (this.#finished) return;
    if (this.#timeoutMs > 0 && !this.#responseComplete && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
    }
    const list = this.#att.list;
    for (let i = 0; i < list.length; i++) list[i]!.armPerTry(this.#perTryTimeoutMs);
  }

  onDestroy(): void {
    this.#shadows?.detach();
    this.#att.resetAttempts(undefined);
    this.#finished = true;
    this.#clearTimers();
  }

  // ---- upstream → downstream (AttemptOwner) ----

  onAttemptHeaders(a: UpstreamAttempt, headers: HeaderMap, endStream: boolean): void {
    if (this.#finished) return;
    const status = Number(headers.get(':status'));
    a.report({ kind: 'http', status });
    const info = this.#cb.streamInfo;
    const decision = this.#att.onResponseHeaders(a, headers);
    if (decision === 'retry') {
      this.#cstats?.chargeRetriedCode(status);
      if (endStream && this.#downstreamEnded) a.release(true, this.#rt.config.dynamicStats);
      else a.abort();
      this.#att.drop(a);
      return;
    }
    // A bad answer while other attempts may still do better: wait for them.
    if (decision === 'wait') {
      a.abort();
      this.#att.drop(a);
      return;
    }
    this.#att.win(a);
    const now = performance.now();
    info.firstUpstreamRxMono = now;
    info.upstreamHost = { address: a.host.address, port: a.host.port };
    info.upstreamTls = a.tls;
    info.attemptCount = a.number - 1;
    if (!this.#rt.config.suppressEnvoyHeaders) headers.set('x-envoy-upstream-service-time', String(Math.round(now - a.startMono)));
    if (this.#includeAttemptCountInResponse) headers.set('x-envoy-attempt-count', String(a.number));
    this.#route?.responseHeaders.apply(headers, info);
    if (this.#rt.config.dynamicStats) this.#cstats?.chargeCode(status);
    this.#responseStarted = true;
    info.responseCodeDetails = 'via_upstream';
    if (endStream) this.#onUpstreamComplete(a);
    this.#cb.encodeHeaders(headers, endStream);
  }

  onAttemptData(a: UpstreamAttempt, data: Buffer, endStream: boolean): void {
    if (this.#finished || a !== this.#att.winner) return;
    if (endStream) this.#onUpstreamComplete(a);
    this.#cb.encodeData(data, endStream);
  }

  onAttemptTrailers(a: UpstreamAttempt, trailers: HeaderMap): void {
    if (this.#finished || a !== this.#att.winner) return;
    this.#onUpstreamComplete(a);
    this.#cb.encodeTrailers(trailers);
  }

  onAttemptWritable(a: UpstreamAttempt, writable: boolean): void {
    if (!this.#finished && this.#att.list.includes(a)) this.#cb.setDecoderReadable(writable);
  }

  onAttemptUpgrade(a: UpstreamAttempt, headers: HeaderMap, socket: Duplex, head: Buffer): void {
    if (this.#finished) {
      socket.destroy();
      return;
    }
    this.#att.win(a);
    a.report({ kind: 'http', status: Number(headers.get(':status')) });
    const info = this.#cb.streamInfo;
    info.firstUpstreamRxMono = performance.now();
    info.upstreamTls = a.tls;
    this.#route?.responseHeaders.apply(headers, info);
    if (this.#rt.config.dynamicStats) this.#cstats?.chargeCode(Number(headers.get(':status')));
    this.#responseStarted = true;
    info.responseCodeDetails = 'via_upstream';
    // The tunnel outlives the route timeout; the connection manager owns both sockets from here.
    this.#onUpstreamComplete(a);
    this.#finished = true;
    this.#cb.upgradeToTunnel(headers, socket, head);
  }

  onAttemptError(a: UpstreamAttempt, err: ProxyError): void {
    if (this.#finished) return;
    if (err.code === ErrorCode.OVERFLOW) {
      // The pool's pending-requests breaker: never retried, no host was contacted (no outlier result).
      a.release(false);
      this.#att.drop(a);
      this.#overflowReply();
      return;
    }
    const cstats = this.#cstats;
    if (err.code === ErrorCode.UPSTREAM_RESET) cstats?.rqRxReset.inc();
    const flag = err.flag ?? ResponseFlag.UpstreamRemoteReset;
    const connectFailure = flag === ResponseFlag.UpstreamConnectionFailure;
    a.report({ kind: 'local', failure: connectFailure ? (err.code === ErrorCode.UPSTREAM_CONNECT_TIMEOUT ? 'timeout' : 'connect_failure') : 'reset' });
    a.release(false);
    this.#att.drop(a);
    if (this.#responseStarted) {
      this.#finished = true;
      this.#clearTimers();
      this.#cb.streamInfo.responseFlags.add(flag);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream(err.message);
      return;
    }
    const kind: ResetKind = connectFailure ? 'connect_failure' : flag === ResponseFlag.UpstreamRemoteReset && err.retryable ? 'refused_stream' : 'reset';
    if (this.#att.maybeRetryReset(a, kind)) return;
    this.#cb.streamInfo.responseFlags.add(flag);
    const reply = upstreamFailureReply(err, flag);
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(reply.status);
    this.#cb.streamInfo.upstreamTransportFailureReason = reply.transportFailure;
    this.#finishWithLocalReply(reply.status, reply.body, reply.details, flag);
  }

  onAttemptTimeout(a: UpstreamAttempt, idle: boolean): void {
    if (this.#finished) return;
    const cstats = this.#cstats;
    if (this.#responseStarted) {
      // Only the idle timer outlives the response start (Envoy ignores per_try_timeout from there).
      if (!idle) return;
      cstats?.rqPerTryIdleTimeout.inc();
      a.abort();
      this.#att.drop(a);
      this.#finished = true;
      this.#clearTimers();
      this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamRequestTimeout);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream('upstream_per_try_idle_timeout');
      return;
    }
    if (!idle && this.#att.hedgeOnPerTryTimeout) {
      // Hedging: keep this attempt running and race another one against it.
      a.report({ kind: 'local', failure: 'timeout' });
      this.#att.hedge(a);
      return;
    }
    (idle ? cstats?.rqPerTryIdleTimeout : cstats?.rqPerTryTimeout)?.inc();
    a.report({ kind: 'local', failure: 'timeout' });
    a.abort();
    this.#att.drop(a);
    if (this.#att.maybeRetryReset(a, 'timeout')) return;
    const r = LocalReplies.upstreamTimeout;
    const status = this.#altTimeoutResponse ? 204 : r.status;
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(status);
    this.#finishWithLocalReply(status, this.#altTimeoutResponse ? '' : r.body, idle ? 'upstream_per_try_idle_timeout' : 'upstream_per_try_timeout', r.flag);
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#finished || this.#responseComplete) return;
    const cstats = this.#cstats;
    cstats?.rqTimeout.inc();
    for (const a of this.#att.list) a.report({ kind: 'local', failure: 'timeout' });
    this.#att.resetAttempts(undefined);
    const r = LocalReplies.upstreamTimeout;
    if (this.#responseStarted) {
      this.#finished = true;
      this.#clearTimers();
      this.#cb.streamInfo.responseFlags.add(r.flag);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream(r.details);
      return;
    }
    const status = this.#altTimeoutResponse ? 204 : r.status;
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(status);
    this.#finishWithLocalReply(status, this.#altTimeoutResponse ? '' : r.body, r.details, r.flag);
  }

  #onUpstreamComplete(a: UpstreamAttempt): void {
    this.#responseComplete = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    a.release(true, this.#rt.config.dynamicStats);
  }

  #clearTimers(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#att.clearRetries();
  }

  /** Ends the stream with a local reply after forwarding began: no attempt or retry survives it. */
  #finishWithLocalReply(status: number, body: string, details: string, flag: ResponseFlag | undefined): void {
    this.#att.resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, flag === undefined ? { details } : { details, flag });
  }

  /** Circuit breaker overflow: 503 UO, `x-envoy-overloaded: true` unless Envoy headers are suppressed. */
  #overflowReply(): void {
    const r = LocalReplies.overflow;
    this.#att.resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(r.status, r.body, { details: r.details, flag: r.flag, ...(this.#rt.config.suppressEnvoyHeaders ? {} : { headers: OVERLOADED_HEADERS }) });
  }

  #localReply(status: number, body: string, details: string, flag: ResponseFlag): void {
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, { details, flag });
  }
}
