// The per-stream router: matches the route, picks cluster and host, forwards the request over
// HTTP/1.1 or HTTP/2 and streams the response back, retrying (retry_policy, per-try timeouts, hedging)
// until the response starts downstream (the per-request set-up: forward-plan.ts; the attempts
// themselves: router-attempts.ts). Upstream failures become Envoy's local replies (503 UF/UC/UR,
// 504 UT, URX when retries ran out) before the response started, and a downstream reset after.

import type { Duplex } from 'node:stream';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction, RouteEntry } from '../../../proxy/http/route-types.ts';
import { ErrorCode, LocalReplies, ResponseFlag, type ProxyError } from '../../../proxy/errors.ts';
import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import type { RouterConfig } from './config.ts';
import type { HttpRouterStats, RouterStatsCache } from './stats.ts';
import { directResponseHeaders, directResponseLocation, upstreamFailureReply } from './local-replies.ts';
import { OVERLOADED_HEADERS, routePriority } from '../../../proxy/upstream/circuit-breakers.ts';
import type { ShadowSet, ShadowWriter } from './shadow.ts';
import type { ResetKind } from './retry-state.ts';
import { AttemptSet } from './router-attempts.ts';
import { planForward, type ForwardPlan } from './forward-plan.ts';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.ts';
import { startTimeout, type Timeout } from '../../../proxy/timeouts.ts';
import { setTimeoutHeaders } from './timeout.ts';
import { strictHeaderViolation } from './strict-headers.ts';
import { setAuthority } from '../../../proxy/http/route-actions.ts';

/** What every router on a worker shares. */
export interface RouterRuntime {
  readonly config: RouterConfig;
  readonly clusterManager: ClusterManager;
  readonly stats: RouterStatsCache;
  /** Request mirroring (request_mirror_policies); absent -> nothing is mirrored. */
  readonly shadow?: ShadowWriter;
}

export class RouterFilter implements HttpFilter, AttemptOwner {
  readonly #rt: RouterRuntime;
  readonly #cb: HttpFilterCallbacks;
  readonly #http: HttpRouterStats;
  /** The route once matched: its response header mutations apply to local replies too. */
  #route: RouteEntry | undefined;
  /** Set once the request is being forwarded (forward-plan.ts). */
  #plan: ForwardPlan | undefined;
  /** Attempts in flight, retries and hedging (router-attempts.ts). */
  readonly #att: AttemptSet;
  /** Mirrored copies of this request (shadow.ts), fed the body as it arrives. */
  #shadows: ShadowSet | undefined;
  #requestTrailers: HeaderMap | undefined;
  #downstreamEnded = false;
  #responseStarted = false;
  #responseComplete = false;
  #timer: Timeout | undefined;
  /** When the downstream request was complete (performance.now()); undefined before. */
  #completeMono: number | undefined;
  #finished = false;

  constructor(rt: RouterRuntime, callbacks: HttpFilterCallbacks) {
    this.#rt = rt;
    this.#cb = callbacks;
    this.#http = rt.stats.http(callbacks.statPrefix);
    this.#att = new AttemptSet(callbacks, () => this.#finished, (timeoutRetry) => this.#startAttempt(timeoutRetry));
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
    info.routeName = route.name;
    this.#route = route;
    const action = route.action;
    if (action.kind === 'direct_response') {
      this.#http.rqDirectResponse.inc();
      this.#finished = true;
      cb.sendLocalReply(action.status, action.body ?? '', { details: 'direct_response', modifyHeaders: directResponseHeaders(route, info, directResponseLocation(action.status, headers)) });
      return FilterHeadersStatus.StopIteration;
    }
    if (action.kind === 'redirect') {
      this.#http.rqRedirect.inc();
      this.#finished = true;
      cb.sendLocalReply(action.status, '', { details: 'direct_response', modifyHeaders: directResponseHeaders(route, info, action.location(headers)) });
      return FilterHeadersStatus.StopIteration;
    }
    this.#forward(route, action, headers, endStream);
    return FilterHeadersStatus.StopIteration;
  }

  #forward(route: RouteEntry, action: ClusterRouteAction, headers: HeaderMap, endStream: boolean): void {
    const cb = this.#cb;
    const clusterName = action.pickCluster(headers, cb.streamInfo);
    const cluster = clusterName === undefined ? undefined : this.#rt.clusterManager.get(clusterName);
    if (!cluster) {
      this.#http.noCluster.inc();
      this.#localReply(action.clusterNotFoundStatus, '', LocalReplies.noCluster.details, ResponseFlag.NoClusterFound);
      return;
    }
    cb.streamInfo.clusterName = cluster.info.name;
    const strict = this.#rt.config.strictCheckHeaders;
    if (strict.length > 0) {
      const bad = strictHeaderViolation(headers, strict);
      if (bad) {
        this.#localReply(400, `invalid header '${bad.name}' with value '${bad.value}'`, `request_headers_failed_strict_check{${bad.name}}`, ResponseFlag.InvalidEnvoyRequestHeaders);
        return;
      }
    }
    const cstats = this.#rt.stats.cluster(cluster.info.statPrefix);
    const vc = route.virtualHost.virtualClusters?.(headers);
    const vstats = vc === undefined ? undefined : this.#rt.stats.virtualCluster(route.virtualHost.name, vc);
    vstats?.rqTotal.inc();
    this.#plan = planForward(this.#rt.config, cb, this.#att, { route, action, cluster, cstats, vstats }, headers, endStream);
    this.#downstreamEnded = endStream;
    cb.onDownstreamWritable((writable) => {
      const w = this.#att.winner?.request;
      if (writable) w?.resumeResponse();
      else w?.pauseResponse();
    });
    if (!this.#startAttempt()) return;
    if (endStream) this.#onRequestComplete();
  }

  /**
   * Picks a host and starts one attempt, replaying what the downstream sent so far. False after a
   * local reply. `timeoutRetry`: this retry follows a per-try timeout.
   */
  #startAttempt(timeoutRetry = false): boolean {
    const plan = this.#plan!;
    const { cluster, action, headers, cstats } = plan;
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
      this.#shadows = this.#rt.shadow?.start(plan.route, headers, { endStream: this.#downstreamEnded, timeoutMs: plan.timeoutMs, downstreamProtocol: info.protocol, mainStatPrefix: cluster.info.statPrefix, bufferLimitBytes: this.#cb.bufferLimitBytes });
    }
    info.attemptCount = n - 1;
    if (n > 1) {
      // Envoy's doRetry: the retry is told the time left.
      const elapsed = this.#completeMono === undefined ? 0 : Math.round(performance.now() - this.#completeMono);
      setTimeoutHeaders(headers, plan.timeout, elapsed, !this.#rt.config.suppressEnvoyHeaders, plan.hedgeOnPerTryTimeout);
      if (plan.includeIsTimeoutRetry) headers.set('x-envoy-is-timeout-retry', timeoutRetry ? 'true' : 'false');
    }
    if (plan.includeAttemptCount) headers.set('x-envoy-attempt-count', String(n));
    if (action.autoHostRewrite && host.hostname) setAuthority(headers, host.hostname, action.appendXForwardedHost === true);

    // max_requests (process-wide) is taken when the attempt gets its connection (UpstreamAttempt).
    const priority = routePriority(action.raw);
    const a = new UpstreamAttempt(this, cluster, host, n, cstats, cluster.circuitBreakers(priority).requests);
    att.launch(a, cluster, headers, { ended: this.#downstreamEnded, trailers: this.#requestTrailers, upgrade: plan.upgrade }, plan.transport, priority);
    a.armIdle(plan.perTryIdleTimeoutMs);
    if (this.#downstreamEnded) a.armPerTry(plan.perTryTimeoutMs);
    return true;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    this.#shadows?.sendData(data, endStream);
    if (this.#finished || this.#plan === undefined) return FilterDataStatus.StopIterationNoBuffer;
    if (endStream) this.#downstreamEnded = true;
    const att = this.#att;
    if (att.body) {
      if (att.bodyBytes + data.length > this.#cb.bufferLimitBytes) {
        // Too big to replay: no more retries (Envoy's retry_or_shadow_abandoned).
        this.#plan.cstats.retryOrShadowAbandoned.inc();
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
    if (this.#finished || this.#plan === undefined) return FilterTrailersStatus.StopIteration;
    this.#downstreamEnded = true;
    this.#requestTrailers = trailers;
    for (const a of this.#att.list) a.request?.sendTrailers(trailers);
    this.#onRequestComplete();
    return FilterTrailersStatus.StopIteration;
  }

  /** Envoy starts the route timeout (and the per-try timeout) once the whole downstream request has been received. */
  #onRequestComplete(): void {
    const plan = this.#plan;
    if (this.#finished || plan === undefined) return;
    this.#completeMono ??= performance.now();
    if (plan.timeoutMs > 0 && !this.#responseComplete && this.#timer === undefined) {
      this.#timer = startTimeout(plan.timeoutMs, () => this.#onTimeout());
    }
    const list = this.#att.list;
    for (let i = 0; i < list.length; i++) list[i]!.armPerTry(plan.perTryTimeoutMs);
  }

  onDestroy(): void {
    this.#shadows?.detach();
    this.#att.resetAttempts(undefined);
    this.#finished = true;
    this.#clearTimers();
  }

  // ---- upstream -> downstream (AttemptOwner) ----

  onAttemptHeaders(a: UpstreamAttempt, headers: HeaderMap, endStream: boolean): void {
    if (this.#finished) return;
    const status = Number(headers.get(':status'));
    a.report({ kind: 'http', status });
    const info = this.#cb.streamInfo;
    const plan = this.#plan;
    const decision = this.#att.onResponseHeaders(a, headers);
    if (decision === 'retry') {
      plan?.cstats.chargeRetriedCode(status);
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
    // Envoy measures from the end of the downstream request, across retries.
    if (!this.#rt.config.suppressEnvoyHeaders) headers.set('x-envoy-upstream-service-time', String(Math.round(now - (this.#completeMono ?? a.startMono))));
    if (plan?.includeAttemptCountInResponse) headers.set('x-envoy-attempt-count', String(a.number));
    // %RESP(...)% in the mutations reads these headers.
    info.responseHeaders = headers;
    plan?.clusterMutations?.response.apply(headers, info);
    plan?.route.responseHeaders.apply(headers, info);
    this.#chargeCode(status);
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
    info.responseHeaders = headers;
    this.#plan?.clusterMutations?.response.apply(headers, info);
    this.#plan?.route.responseHeaders.apply(headers, info);
    this.#chargeCode(Number(headers.get(':status')));
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
    const cstats = this.#plan?.cstats;
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
    const reply = upstreamFailureReply(err, flag, this.#att.count > 1);
    this.#chargeCode(reply.status);
    this.#cb.streamInfo.upstreamTransportFailureReason = reply.transportFailure;
    this.#finishWithLocalReply(reply.status, reply.body, reply.details, flag);
  }

  onAttemptTimeout(a: UpstreamAttempt, idle: boolean): void {
    if (this.#finished) return;
    const cstats = this.#plan?.cstats;
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
    const status = this.#plan?.altTimeoutResponse ? 204 : r.status;
    this.#chargeCode(status);
    this.#finishWithLocalReply(status, this.#plan?.altTimeoutResponse ? '' : r.body, idle ? 'upstream_per_try_idle_timeout' : 'upstream_per_try_timeout', r.flag);
  }

  /**
   * Envoy's onStreamMaxDurationReached: the upstream request is reset and retried under retry_on
   * reset; else 504 (408 while the request is still arriving) 'upstream max stream duration
   * reached', flag UMSDR, or a reset when the response has started.
   */
  onAttemptMaxDuration(a: UpstreamAttempt): void {
    if (this.#finished) return;
    a.abort();
    this.#att.drop(a);
    if (!this.#responseStarted && this.#att.maybeRetryReset(a, 'reset')) return;
    const info = this.#cb.streamInfo;
    if (this.#responseStarted) {
      this.#finished = true;
      this.#clearTimers();
      info.responseFlags.add(ResponseFlag.UpstreamMaxStreamDurationReached);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream('upstream max stream duration reached');
      return;
    }
    this.#finishWithLocalReply(this.#downstreamEnded ? 504 : 408, 'upstream max stream duration reached', 'upstream_max_stream_duration_reached', ResponseFlag.UpstreamMaxStreamDurationReached);
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#finished || this.#responseComplete) return;
    const cstats = this.#plan?.cstats;
    cstats?.rqTimeout.inc();
    this.#plan?.vstats?.rqTimeout.inc();
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
    const status = this.#plan?.altTimeoutResponse ? 204 : r.status;
    this.#chargeCode(status);
    this.#finishWithLocalReply(status, this.#plan?.altTimeoutResponse ? '' : r.body, r.details, r.flag);
  }

  /** Envoy's chargeUpstreamCode: the cluster's response code stats and the virtual cluster's (dynamic_stats). */
  #chargeCode(status: number): void {
    if (!this.#rt.config.dynamicStats) return;
    this.#plan?.cstats.chargeCode(status);
    this.#plan?.vstats?.chargeCode(status);
  }

  #onUpstreamComplete(a: UpstreamAttempt): void {
    this.#responseComplete = true;
    if (this.#rt.config.dynamicStats) this.#plan?.vstats?.rqTime.record(performance.now() - a.startMono);
    this.#timer?.stop();
    this.#timer = undefined;
    a.release(true, this.#rt.config.dynamicStats);
  }

  #clearTimers(): void {
    this.#timer?.stop();
    this.#timer = undefined;
    this.#att.clearRetries();
  }

  /** Ends the stream with a local reply after forwarding began: no attempt or retry survives it. */
  #finishWithLocalReply(status: number, body: string, details: string, flag: ResponseFlag | undefined): void {
    this.#att.resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, flag === undefined ? { details, modifyHeaders: this.#replyHeaders() } : { details, flag, modifyHeaders: this.#replyHeaders() });
  }

  /** Circuit breaker overflow: 503 UO, `x-envoy-overloaded: true` unless Envoy headers are suppressed. */
  #overflowReply(): void {
    const r = LocalReplies.overflow;
    this.#att.resetAttempts(undefined);
    this.#clearTimers();
    this.#finished = true;
    this.#cb.sendLocalReply(r.status, r.body, { details: r.details, flag: r.flag, modifyHeaders: this.#replyHeaders(), ...(this.#rt.config.suppressEnvoyHeaders ? {} : { headers: OVERLOADED_HEADERS }) });
  }

  #localReply(status: number, body: string, details: string, flag: ResponseFlag): void {
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, { details, flag, modifyHeaders: this.#replyHeaders() });
  }

  /**
   * Envoy's modify_headers for the router's local replies (no cluster, no healthy host, overflow,
   * timeouts, upstream failures): the weighted cluster's and the route's response header mutations,
   * and x-envoy-attempt-count under include_attempt_count_in_response.
   */
  #replyHeaders(): (headers: HeaderMap) => void {
    return (headers) => {
      const route = this.#route;
      if (route === undefined) return;
      const info = this.#cb.streamInfo;
      const plan = this.#plan;
      info.responseHeaders = headers;
      plan?.clusterMutations?.response.apply(headers, info);
      route.responseHeaders.apply(headers, info);
      if (plan?.includeAttemptCountInResponse && this.#att.count > 0) headers.set('x-envoy-attempt-count', String(this.#att.count));
    };
  }
}
