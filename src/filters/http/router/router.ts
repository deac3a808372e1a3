// The per-stream router: matches the route, picks cluster and host, forwards the request over
// HTTP/1.1 or HTTP/2 and streams the response back, retrying (retry_policy, per-try timeouts, hedging)
// until the response starts downstream. Upstream failures become Envoy's local replies (503 UF/UC/UR,
// 504 UT, with URX when retries ran out) before the response started, and a downstream reset after.

import type { Duplex } from 'node:stream';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction, RouteEntry } from '../../../proxy/http/route-types.ts';
import { ErrorCode, LocalReplies, ResponseFlag, type ProxyError } from '../../../proxy/errors.ts';
import type { Cluster, ClusterManager } from '../../../proxy/upstream/types.ts';
import type { RouteAction__Output } from '../../../generated/envoy/config/route/v3/RouteAction.ts';
import type { VirtualHost__Output } from '../../../generated/envoy/config/route/v3/VirtualHost.ts';
import type { RouterConfig } from './config.ts';
import type { ClusterRouterStats, HttpRouterStats, RouterStatsCache } from './stats.ts';
import { computeTimeout } from './timeout.ts';
import { startHttp1Request } from './upstream-request-http1.ts';
import { startHttp2Request } from './upstream-request-http2.ts';
import { directResponseHeaders, upstreamFailureReply } from './local-replies.ts';
import { OVERLOADED_HEADERS, routePriority } from '../../../proxy/upstream/circuit-breakers.ts';
import type { ShadowSet, ShadowWriter } from './shadow.ts';
import { EMPTY_RETRY_POLICY, hedgePolicyFor, retryPolicyFor, type RetryPolicy } from './retry-policy.ts';
import { RetryState, type ResetKind, type RetryStatus } from './retry-state.ts';
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
  /** Attempts in flight; after the response started, only the one that won. */
  #attempts: UpstreamAttempt[] = [];
  /** The attempt whose response goes downstream. */
  #winner: UpstreamAttempt | undefined;
  #attemptCount = 0;
  /** Mirrored copies of this request (shadow.ts), fed the body as it arrives. */
  #shadows: ShadowSet | undefined;
  #retry: RetryState | undefined;
  #hedgeOnPerTryTimeout = false;
  #perTryTimeoutMs = 0;
  #perTryIdleTimeoutMs = 0;
  #retryTimers = new Set<NodeJS.Timeout>();
  /** Hosts tried so far (previous_hosts predicate). */
  #triedHosts: Set<string> | undefined;
  #hostSelectionAttempts = 1;
  #includeAttemptCount = false;
  #includeAttemptCountInResponse = false;
  /** Request body kept for replay while a retry is possible; undefined once abandoned or not needed. */
  #body: Buffer[] | undefined;
  #bodyBytes = 0;
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
      this.#retry = RetryState.create(policy, headers, { stats: cstats, retries: cluster.circuitBreakers(priority).retries });
      const hedge = hedgePolicyFor(raw?.hedge_policy ?? vhRaw?.hedge_policy);
      this.#hedgeOnPerTryTimeout = (hedge?.hedgeOnPerTryTimeout ?? false) || headers.get('x-envoy-hedge-on-per-try-timeout') === 'true';
    }
    if (this.#retry && policy.previousHosts) this.#triedHosts = new Set();
    this.#hostSelectionAttempts = policy.hostSelectionMaxAttempts;
    this.#includeAttemptCount = vhRaw?.include_request_attempt_count === true;
    this.#includeAttemptCountInResponse = vhRaw?.include_attempt_count_in_response === true;
    if (this.#retry && !endStream) this.#body = [];

    route.requestHeaders.apply(headers, info);
    action.rewrite(headers);
    this.#headers = headers;
    this.#downstreamEnded = endStream;
    cb.onDownstreamWritable((writable) => {
      const w = this.#winner?.request;
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
    const tried = this.#triedHosts;
    const exclude = tried !== undefined && tried.size > 0 ? tried : undefined;
    let host = cluster.chooseHost({ hashKey: action.hash(headers, info), excludeHosts: exclude });
    for (let i = 1; host && exclude?.has(host.key) && i < this.#hostSelectionAttempts; i++) {
      host = cluster.chooseHost({ hashKey: action.hash(headers, info), excludeHosts: exclude }) ?? host;
    }
    if (!host) {
      cstats.cxNoneHealthy.inc();
      const r = LocalReplies.noHealthyUpstream;
      this.#finishWithLocalReply(r.status, r.body, r.details, r.flag);
      return false;
    }
    tried?.add(host.key);
    info.upstreamHost = { address: host.address, port: host.port };
    const n = ++this.#attemptCount;
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
    this.#attempts.push(a);
    // What the downstream sent so far: nothing more when it ended without body or trailers.
    const body = n === 1 ? undefined : this.#body;
    const endNow = this.#downstreamEnded && (n === 1 || (this.#bodyBytes === 0 && this.#requestTrailers === undefined));
    let protocol = cluster.info.protocol;
    if (protocol === 'downstream') protocol = info.protocol === 'HTTP/2' ? 'http2' : 'http1';
    // WebSocket needs an HTTP/1.1 upstream (Envoy would use extended CONNECT on HTTP/2; legate does not).
    const upgrade = this.#upgrade;
    if (upgrade !== undefined || protocol === 'http1') {
      a.request = startHttp1Request(cluster.http1Pool(host), headers, endNow, a, upgrade === undefined ? {} : { upgrade });
    } else {
      a.request = startHttp2Request(cluster.http2Session(host), headers, endNow, a);
    }
    if (n > 1 && !endNow && body) {
      const last = body.length - 1;
      body.forEach((chunk, i) => a.request!.sendData(chunk, i === last && this.#downstreamEnded && this.#requestTrailers === undefined));
      if (this.#requestTrailers) a.request.sendTrailers(this.#requestTrailers);
    }
    a.armIdle(this.#perTryIdleTimeoutMs);
    if (this.#downstreamEnded) a.armPerTry(this.#perTryTimeoutMs);
    return true;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    this.#shadows?.sendData(data, endStream);
    if (this.#finished || this.#headers === undefined) return FilterDataStatus.StopIterationNoBuffer;
    if (endStream) this.#downstreamEnded = true;
    if (this.#body) {
      if (this.#bodyBytes + data.length > this.#cb.bufferLimitBytes) {
        // Too big to replay: no more retries (Envoy's retry_or_shadow_abandoned).
        this.#cstats?.retryOrShadowAbandoned.inc();
        this.#abandonRetries();
        if (this.#attempts.length === 0) {
          this.#finishWithLocalReply(507, 'exceeded request buffer limit while retrying upstream', 'request_payload_exceeded_retry_buffer_limit', undefined);
          return FilterDataStatus.StopIterationNoBuffer;
        }
      } else if (data.length > 0) {
        this.#body.push(data);
        this.#bodyBytes += data.length;
      }
    }
    for (const a of this.#attempts) a.request?.sendData(data, endStream);
    if (endStream) this.#onRequestComplete();
    return FilterDataStatus.StopIterationNoBuffer;
  }

  onRequestTrailers(trailers: HeaderMap): FilterTrailersStatus {
    this.#shadows?.sendTrailers(trailers);
    if (this.#finished || this.#headers === undefined) return FilterTrailersStatus.StopIteration;
    this.#downstreamEnded = true;
    this.#requestTrailers = trailers;
    for (const a of this.#attempts) a.request?.sendTrailers(trailers);
    this.#onRequestComplete();
    return FilterTrailersStatus.StopIteration;
  }

  /** Envoy starts the route timeout (and the per-try timeout) once the whole downstream request has been received. */
  #onRequestComplete(): void {
    if (this.#finished) return;
    if (this.#timeoutMs > 0 && !this.#responseComplete && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
    }
    for (const a of this.#attempts) a.armPerTry(this.#perTryTimeoutMs);
  }

  onDestroy(): void {
    this.#shadows?.detach();
    this.#resetAttempts(undefined);
    this.#finished = true;
    this.#clearTimers();
  }

  // ---- upstream → downstream (AttemptOwner) ----

  onAttemptHeaders(a: UpstreamAttempt, headers: HeaderMap, endStream: boolean): void {
    if (this.#finished) return;
    const status = Number(headers.get(':status'));
    a.report({ kind: 'http', status });
    const info = this.#cb.streamInfo;
    const retry = this.#retry;
    if (retry && this.#winner === undefined) {
      let couldNotRetry = false;
      if (a.hedged) couldNotRetry = retry.wouldRetryHeaders(headers);
      else {
        const s = retry.shouldRetryHeaders(headers);
        if (s.kind === 'yes') {
          this.#cstats?.chargeRetriedCode(status);
          if (endStream && this.#downstreamEnded) a.release(true, this.#rt.config.dynamicStats);
          else a.abort();
          this.#drop(a);
          this.#scheduleRetry(s.delayMs);
          return;
        }
        couldNotRetry = this.#noteRetryStatus(s);
      }
      // A bad answer while other attempts may still do better: wait for them.
      if (couldNotRetry && this.#othersPending(a)) {
        a.abort();
        this.#drop(a);
        return;
      }
      // Forwarded: no more retries (Envoy resets its retry state here).
      this.#retry = undefined;
      retry.destroy();
    }
    this.#win(a);
    const now = performance.now();
    info.firstUpstreamRxMono = now;
    info.upstreamHost = { address: a.host.address, port: a.host.port };
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
    if (this.#finished || a !== this.#winner) return;
    if (endStream) this.#onUpstreamComplete(a);
    this.#cb.encodeData(data, endStream);
  }

  onAttemptTrailers(a: UpstreamAttempt, trailers: HeaderMap): void {
    if (this.#finished || a !== this.#winner) return;
    this.#onUpstreamComplete(a);
    this.#cb.encodeTrailers(trailers);
  }

  onAttemptWritable(a: UpstreamAttempt, writable: boolean): void {
    if (!this.#finished && this.#attempts.includes(a)) this.#cb.setDecoderReadable(writable);
  }

  onAttemptUpgrade(a: UpstreamAttempt, headers: HeaderMap, socket: Duplex, head: Buffer): void {
    if (this.#finished) {
      socket.destroy();
      return;
    }
    this.#win(a);
    a.report({ kind: 'http', status: Number(headers.get(':status')) });
    const info = this.#cb.streamInfo;
    info.firstUpstreamRxMono = performance.now();
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
      this.#drop(a);
      this.#overflowReply();
      return;
    }
    const cstats = this.#cstats;
    if (err.code === ErrorCode.UPSTREAM_RESET) cstats?.rqRxReset.inc();
    const flag = err.flag ?? ResponseFlag.UpstreamRemoteReset;
    const connectFailure = flag === ResponseFlag.UpstreamConnectionFailure;
    a.report({ kind: 'local', failure: connectFailure ? (err.code === ErrorCode.UPSTREAM_CONNECT_TIMEOUT ? 'timeout' : 'connect_failure') : 'reset' });
    a.release(false);
    this.#drop(a);
    if (this.#responseStarted) {
      this.#finished = true;
      this.#clearTimers();
      this.#cb.streamInfo.responseFlags.add(flag);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream(err.message);
      return;
    }
    const kind: ResetKind = connectFailure ? 'connect_failure' : flag === ResponseFlag.UpstreamRemoteReset && err.retryable ? 'refused_stream' : 'reset';
    if (this.#maybeRetryReset(a, kind)) return;
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
      this.#drop(a);
      this.#finished = true;
      this.#clearTimers();
      this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamRequestTimeout);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream('upstream_per_try_idle_timeout');
      return;
    }
    if (!idle && this.#hedgeOnPerTryTimeout) {
      // Hedging: keep this attempt running and race another one against it.
      a.report({ kind: 'local', failure: 'timeout' });
      const retry = this.#retry;
      if (retry && !a.hedged) {
        const s = retry.shouldHedgeRetryPerTryTimeout();
        if (s.kind === 'yes') {
          a.hedged = true;
          this.#scheduleRetry(s.delayMs);
        } else this.#noteRetryStatus(s);
      }
      return;
    }
    (idle ? cstats?.rqPerTryIdleTimeout : cstats?.rqPerTryTimeout)?.inc();
    a.report({ kind: 'local', failure: 'timeout' });
    a.abort();
    this.#drop(a);
    if (this.#maybeRetryReset(a, 'timeout')) return;
    const r = LocalReplies.upstreamTimeout;
    const status = this.#altTimeoutResponse ? 204 : r.status;
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(status);
    this.#finishWithLocalReply(status, this.#altTimeoutResponse ? '' : r.body, idle ? 'upstream_per_try_idle_timeout' : 'upstream_per_try_timeout', r.flag);
  }

  /** After an attempt ended without headers: true when a retry was scheduled or another attempt may still answer. */
  #maybeRetryReset(a: UpstreamAttempt, kind: ResetKind): boolean {
    const retry = this.#retry;
    if (retry && !a.hedged) {
      const s = retry.shouldRetryReset(kind);
      if (s.kind === 'yes') {
        this.#scheduleRetry(s.delayMs);
        return true;
      }
      this.#noteRetryStatus(s);
    }
    return this.#othersPending(a);
  }

  /** Flags for a retry that could not happen; true when the response would have been retried. */
  #noteRetryStatus(s: RetryStatus): boolean {
    if (s.kind === 'limit') this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamRetryLimitExceeded);
    else if (s.kind === 'overflow') this.#cb.streamInfo.responseFlags.add(ResponseFlag.UpstreamOverflow);
    return s.kind === 'limit' || s.kind === 'overflow';
  }

  #othersPending(a: UpstreamAttempt): boolean {
    return this.#retryTimers.size > 0 || this.#attempts.some((o) => o !== a && !o.headersReceived);
  }

  #scheduleRetry(delayMs: number): void {
    const t = setTimeout(() => {
      this.#retryTimers.delete(t);
      if (!this.#finished && this.#winner === undefined) this.#startAttempt();
    }, delayMs);
    this.#retryTimers.add(t);
  }

  /** The request body outgrew the buffer: the current attempt is the last. */
  #abandonRetries(): void {
    this.#retry?.destroy();
    this.#retry = undefined;
    this.#hedgeOnPerTryTimeout = false;
    this.#body = undefined;
    this.#bodyBytes = 0;
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
  }

  /** This attempt's response goes downstream: the others are reset, pending retries cancelled. */
  #win(a: UpstreamAttempt): void {
    this.#winner = a;
    this.#resetAttempts(a);
    this.#attempts = [a];
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#body = undefined;
  }

  /** Removes a finished attempt; un-pauses the downstream if it was holding the request body back. */
  #drop(a: UpstreamAttempt): void {
    const i = this.#attempts.indexOf(a);
    if (i >= 0) this.#attempts.splice(i, 1);
    if (a.blocked && !this.#finished) this.#cb.setDecoderReadable(true);
  }

  /** Resets every attempt in flight except `keep`. */
  #resetAttempts(keep: UpstreamAttempt | undefined): void {
    for (const a of this.#attempts) {
      if (a === keep || !a.active) continue;
      a.report({ kind: 'local', failure: 'reset' });
      a.abort();
    }
    if (keep === undefined) this.#attempts = [];
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#finished || this.#responseComplete) return;
    const cstats = this.#cstats;
    cstats?.rqTimeout.inc();
    for (const a of this.#attempts) a.report({ kind: 'local', failure: 'timeout' });
    this.#resetAttempts(undefined);
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
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    this.#retry?.destroy();
    this.#retry = undefined;
  }

  /** Ends the stream with a local reply after forwarding began: no attempt or retry survives it. */
  #finishWithLocalReply(status: number, body: string, details: string, flag: ResponseFlag | undefined): void {
    this.#resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, flag === undefined ? { details } : { details, flag });
  }

  /** Circuit breaker overflow: 503 UO, `x-envoy-overloaded: true` unless Envoy headers are suppressed. */
  #overflowReply(): void {
    const r = LocalReplies.overflow;
    this.#resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(r.status, r.body, { details: r.details, flag: r.flag, ...(this.#rt.config.suppressEnvoyHeaders ? {} : { headers: OVERLOADED_HEADERS }) });
  }

  #localReply(status: number, body: string, details: string, flag: ResponseFlag): void {
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, { details, flag });
  }
}
