// The per-stream router: matches the route, picks cluster and host, forwards the request over
// HTTP/1.1 or HTTP/2 and streams the response back. Upstream failures become Envoy's local replies
// (503 UF/UC/UR, 504 UT) before the response started, and a downstream reset after.

import type { Duplex } from 'node:stream';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { ClusterRouteAction, RouteEntry } from '../../../proxy/http/route-types.ts';
import { ErrorCode, LocalReplies, ResponseFlag, type ProxyError } from '../../../proxy/errors.ts';
import type { ClusterManager, Host } from '../../../proxy/upstream/types.ts';
import type { RouterConfig } from './config.ts';
import type { ClusterRouterStats, HttpRouterStats, RouterStatsCache } from './stats.ts';
import { computeTimeout } from './timeout.ts';
import { startHttp1Request } from './upstream-request-http1.ts';
import { startHttp2Request } from './upstream-request-http2.ts';
import type { UpstreamRequest, UpstreamSink } from './upstream-request.ts';
import { directResponseHeaders } from './local-replies.ts';

/** What every router on a worker shares. */
export interface RouterRuntime {
  readonly config: RouterConfig;
  readonly clusterManager: ClusterManager;
  readonly stats: RouterStatsCache;
}

export class RouterFilter implements HttpFilter, UpstreamSink {
  readonly #rt: RouterRuntime;
  readonly #cb: HttpFilterCallbacks;
  readonly #http: HttpRouterStats;
  #route: RouteEntry | undefined;
  #cstats: ClusterRouterStats | undefined;
  #host: Host | undefined;
  #upstream: UpstreamRequest | undefined;
  /** The upstream request is in flight (counted in upstream_rq_active). */
  #active = false;
  #responseStarted = false;
  #responseComplete = false;
  #timeoutMs = 0;
  #altTimeoutResponse = false;
  #timer: NodeJS.Timeout | undefined;
  #startMono = 0;
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
    info.clusterName = cluster.info.name;
    const cstats = (this.#cstats = this.#rt.stats.cluster(cluster.info.statPrefix));
    const grpc = headers.get('content-type')?.startsWith('application/grpc') === true;
    const timeout = computeTimeout(headers, action, this.#rt.config, grpc);
    this.#timeoutMs = timeout.timeoutMs;
    this.#altTimeoutResponse = timeout.altResponse;

    const host = cluster.chooseHost({ hashKey: action.hash(headers, info) });
    if (!host) {
      cstats.cxNoneHealthy.inc();
      const r = LocalReplies.noHealthyUpstream;
      this.#localReply(r.status, r.body, r.details, r.flag);
      return;
    }
    this.#host = host;
    info.upstreamHost = { address: host.address, port: host.port };

    route.requestHeaders.apply(headers, info);
    action.rewrite(headers);
    if (action.autoHostRewrite && host.hostname) headers.set(':authority', host.hostname);

    host.activeRequests++;
    cstats.rqTotal.inc();
    cstats.rqActive.inc();
    this.#active = true;
    this.#startMono = performance.now();
    cb.onDownstreamWritable((writable) => {
      if (writable) this.#upstream?.resumeResponse();
      else this.#upstream?.pauseResponse();
    });

    const upgrade = cb.upgrade !== undefined && headers.has('upgrade') ? cb.upgrade : undefined;
    let protocol = cluster.info.protocol;
    if (protocol === 'downstream') protocol = info.protocol === 'HTTP/2' ? 'http2' : 'http1';
    // WebSocket needs an HTTP/1.1 upstream (Envoy would use extended CONNECT on HTTP/2; legate does not).
    if (upgrade !== undefined || protocol === 'http1') {
      this.#upstream = startHttp1Request(cluster.http1Pool(host), headers, endStream, this, upgrade === undefined ? {} : { upgrade });
    } else {
      this.#upstream = startHttp2Request(cluster.http2Session(host), headers, endStream, this);
    }
    if (endStream) this.#onRequestComplete();
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    const up = this.#upstream;
    if (up && !this.#finished) {
      up.sendData(data, endStream);
      if (endStream) this.#onRequestComplete();
    }
    return FilterDataStatus.StopIterationNoBuffer;
  }

  onRequestTrailers(trailers: HeaderMap): FilterTrailersStatus {
    const up = this.#upstream;
    if (up && !this.#finished) {
      up.sendTrailers(trailers);
      this.#onRequestComplete();
    }
    return FilterTrailersStatus.StopIteration;
  }

  /** Envoy starts the route timeout once the whole downstream request has been received. */
  #onRequestComplete(): void {
    if (this.#timeoutMs > 0 && this.#active && !this.#responseComplete && this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
    }
  }

  onDestroy(): void {
    if (this.#active) {
      this.#upstream?.abort();
      this.#cstats?.rqTxReset.inc();
      this.#release(false);
    }
    this.#finished = true;
    this.#clearTimer();
  }

  // ---- upstream → downstream (UpstreamSink) ----

  onUpstreamHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#finished) return;
    const info = this.#cb.streamInfo;
    const now = performance.now();
    info.firstUpstreamRxMono = now;
    const status = Number(headers.get(':status'));
    if (!this.#rt.config.suppressEnvoyHeaders) headers.set('x-envoy-upstream-service-time', String(Math.round(now - this.#startMono)));
    this.#route?.responseHeaders.apply(headers, info);
    if (this.#rt.config.dynamicStats) this.#cstats?.chargeCode(status);
    this.#responseStarted = true;
    info.responseCodeDetails = 'via_upstream';
    if (endStream) this.#onUpstreamComplete();
    this.#cb.encodeHeaders(headers, endStream);
  }

  onUpstreamData(data: Buffer, endStream: boolean): void {
    if (this.#finished) return;
    if (endStream) this.#onUpstreamComplete();
    this.#cb.encodeData(data, endStream);
  }

  onUpstreamTrailers(trailers: HeaderMap): void {
    if (this.#finished) return;
    this.#onUpstreamComplete();
    this.#cb.encodeTrailers(trailers);
  }

  onUpstreamWritable(writable: boolean): void {
    if (!this.#finished) this.#cb.setDecoderReadable(writable);
  }

  onUpstreamUpgrade(headers: HeaderMap, socket: Duplex, head: Buffer): void {
    if (this.#finished) {
      socket.destroy();
      return;
    }
    const info = this.#cb.streamInfo;
    info.firstUpstreamRxMono = performance.now();
    this.#route?.responseHeaders.apply(headers, info);
    if (this.#rt.config.dynamicStats) this.#cstats?.chargeCode(Number(headers.get(':status')));
    this.#responseStarted = true;
    info.responseCodeDetails = 'via_upstream';
    // The tunnel outlives the route timeout; the connection manager owns both sockets from here.
    this.#onUpstreamComplete();
    this.#finished = true;
    this.#cb.upgradeToTunnel(headers, socket, head);
  }

  onUpstreamError(err: ProxyError): void {
    if (this.#finished) return;
    const cstats = this.#cstats;
    if (err.code === ErrorCode.UPSTREAM_RESET) cstats?.rqRxReset.inc();
    this.#release(false);
    this.#clearTimer();
    const flag = err.flag ?? ResponseFlag.UpstreamRemoteReset;
    if (this.#responseStarted) {
      this.#finished = true;
      this.#cb.streamInfo.responseFlags.add(flag);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream(err.message);
      return;
    }
    const reply = upstreamFailureReply(err, flag);
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(reply.status);
    this.#cb.streamInfo.upstreamTransportFailureReason = reply.transportFailure;
    this.#localReply(reply.status, reply.body, reply.details, flag);
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#finished || this.#responseComplete) return;
    const cstats = this.#cstats;
    cstats?.rqTimeout.inc();
    if (this.#active) {
      this.#upstream?.abort();
      cstats?.rqTxReset.inc();
      this.#release(false);
    }
    const r = LocalReplies.upstreamTimeout;
    if (this.#responseStarted) {
      this.#finished = true;
      this.#cb.streamInfo.responseFlags.add(r.flag);
      this.#http.rqResetAfterDownstreamResponseStarted.inc();
      this.#cb.resetStream(r.details);
      return;
    }
    const status = this.#altTimeoutResponse ? 204 : r.status;
    if (this.#rt.config.dynamicStats) cstats?.chargeCode(status);
    this.#localReply(status, this.#altTimeoutResponse ? '' : r.body, r.details, r.flag);
  }

  #onUpstreamComplete(): void {
    this.#responseComplete = true;
    this.#clearTimer();
    this.#release(true);
  }

  /** Ends the upstream request's accounting exactly once. */
  #release(completed: boolean): void {
    if (!this.#active) return;
    this.#active = false;
    this.#cstats?.rqActive.dec();
    if (this.#host) this.#host.activeRequests--;
    if (completed && this.#rt.config.dynamicStats) this.#cstats?.rqTime.record(performance.now() - this.#startMono);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #localReply(status: number, body: string, details: string, flag: ResponseFlag): void {
    this.#finished = true;
    this.#cb.sendLocalReply(status, body, { details, flag });
  }
}

interface FailureReply {
  readonly status: number;
  readonly body: string;
  readonly details: string;
  readonly transportFailure: string | undefined;
}

/** Envoy's 503 bodies: `upstream connect error or disconnect/reset before headers. reset reason: …`. */
function upstreamFailureReply(err: ProxyError, flag: ResponseFlag): FailureReply {
  const prefix = 'upstream connect error or disconnect/reset before headers. ';
  if (flag === ResponseFlag.UpstreamConnectionFailure) {
    const cause = err.cause as { code?: string; message?: string } | undefined;
    const reason = cause ? `delayed connect error: ${cause.code ?? cause.message ?? 'unknown'}` : err.message;
    return {
      status: 503,
      body: `${LocalReplies.connectFailure.body}, transport failure reason: ${reason}`,
      details: LocalReplies.connectFailure.details,
      transportFailure: reason,
    };
  }
  if (flag === ResponseFlag.UpstreamConnectionTermination) {
    return { status: 503, body: `${prefix}reset reason: connection termination`, details: 'upstream_reset_before_response_started{connection_termination}', transportFailure: undefined };
  }
  if (flag === ResponseFlag.UpstreamProtocolError) {
    return { status: 502, body: `${prefix}reset reason: protocol error`, details: 'upstream_reset_before_response_started{protocol_error}', transportFailure: undefined };
  }
  return { status: 503, body: LocalReplies.upstreamReset.body, details: LocalReplies.upstreamReset.details, transportFailure: undefined };
}
