// Request mirroring (Envoy's shadowing, RouteAction.request_mirror_policies): for a forwarded request,
// each policy whose runtime fraction is drawn starts a fire-and-forget copy to its shadow cluster with
// `-shadow` appended to the host. Shadows stream the request body as it arrives and never push back
// on, delay or fail the main request: a missing cluster, no healthy host, a full circuit breaker, an
// upstream error, the route timeout or a shadow falling behind only ends the shadow (and is counted).

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { MirrorPolicy, RouteEntry } from '../../../proxy/http/route-types.ts';
import type { Runtime } from '../../../proxy/runtime.ts';
import type { StatsStore } from '../../../proxy/stats.ts';
import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import { logger } from '../../../proxy/log.ts';
import type { RouterConfig } from './config.ts';
import type { RouterStatsCache } from './stats.ts';
import { ShadowStream } from './shadow-stream.ts';

const log = logger('router');

export interface ShadowWriterContext {
  readonly clusterManager: ClusterManager;
  readonly stats: StatsStore;
  readonly runtime: Runtime;
  /** Uniform in [0, 1); one draw per request decides every policy (Envoy's stable random). */
  readonly random?: () => number;
}

export interface ShadowStart {
  /** The main request has no body. */
  readonly endStream: boolean;
  /** The main request's route timeout (after x-envoy-upstream-rq-timeout-ms), ms; 0 disables. */
  readonly timeoutMs: number;
  /** Downstream protocol (`HTTP/2`, `HTTP/1.1`), for clusters that use the downstream's. */
  readonly downstreamProtocol: string | undefined;
  /** The main cluster's stat prefix (`cluster.<name>.`): it is charged retry_or_shadow_abandoned. */
  readonly mainStatPrefix: string;
  /**
   * The downstream connection's buffer limit: what a shadow may hold beyond its upstream's own
   * buffer before it is dropped (Envoy's retry/shadow buffer limit).
   */
  readonly bufferLimitBytes: number;
}

/** The policies in force: the route's, else the virtual host's (not merged, as Envoy). */
export function mirrorPoliciesFor(route: RouteEntry): readonly MirrorPolicy[] {
  const action = route.action;
  const own = action.kind === 'route' ? action.mirrorPolicies : undefined;
  if (own && own.length > 0) return own;
  return route.virtualHost.mirrorPolicies ?? [];
}

/** Envoy's shadowAppendedHost: `foo:8080` -> `foo-shadow:8080`, `[::1]:80` -> `[::1]-shadow:80`, `foo` -> `foo-shadow`. */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  const bracket = host.lastIndexOf(']');
  if (colon < 0 || bracket > colon) return `${host}-shadow`;
  return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
}

/** Per worker (and router config): starts the shadows of one request. */
export class ShadowWriter {
  readonly #config: RouterConfig;
  readonly #ctx: ShadowWriterContext;
  readonly #stats: RouterStatsCache;

  constructor(config: RouterConfig, ctx: ShadowWriterContext, stats: RouterStatsCache) {
    this.#config = config;
    this.#ctx = ctx;
    this.#stats = stats;
  }

  /**
   * Call once the request is about to go upstream, with its final headers (route header mutations and
   * rewrites applied); they are copied. Undefined when nothing is mirrored.
   */
  start(route: RouteEntry, headers: HeaderMap, s: ShadowStart): ShadowSet | undefined {
    const policies = mirrorPoliciesFor(route);
    if (policies.length === 0) return undefined;
    // CONNECT and upgrades are never shadowed (Envoy: "the method CONNECT doesn't support shadowing").
    if (headers.get(':method') === 'CONNECT' || headers.has('upgrade')) return undefined;
    const draw = (this.#ctx.random ?? Math.random)();
    let streams: ShadowStream[] | undefined;
    for (const p of policies) {
      if (!this.#ctx.runtime.featureEnabled(p.runtimeKey, p.defaultValue, draw)) continue;
      const stream = this.#startOne(p, headers, s);
      if (stream) (streams ??= []).push(stream);
    }
    return streams ? new ShadowSet(streams) : undefined;
  }

  #startOne(p: MirrorPolicy, headers: HeaderMap, s: ShadowStart): ShadowStream | undefined {
    const name = p.cluster ?? (p.clusterHeader !== undefined ? headers.get(p.clusterHeader) : undefined);
    if (!name) return undefined; // cluster_header absent: no shadow
    const cluster = this.#ctx.clusterManager.get(name);
    if (!cluster) {
      // Envoy has no stat for this either (a CDS removal or a cluster_header naming nothing).
      if (log.enabled('debug')) log.debug(`shadow cluster '${name}' does not exist`);
      return undefined;
    }
    const stats = this.#stats.cluster(cluster.info.statPrefix);
    const host = cluster.chooseHost({ hashKey: undefined });
    if (!host) {
      stats.cxNoneHealthy.inc();
      return undefined;
    }
    // max_requests applies to shadows too; an overflow is counted by the breaker (upstream_rq_pending_overflow).
    const slot = cluster.circuitBreakers('DEFAULT').requests;
    if (!slot.tryAcquire()) return undefined;
    const copy = headers.clone();
    if (!p.disableShadowHostSuffixAppend) {
      const authority = copy.get(':authority') ?? copy.get('host');
      if (authority) copy.set(':authority', shadowHost(authority));
    }
    let protocol = cluster.info.protocol;
    if (protocol === 'downstream') protocol = s.downstreamProtocol === 'HTTP/2' ? 'http2' : 'http1';
    const store = this.#ctx.stats;
    return new ShadowStream(copy, s.endStream, {
      cluster,
      host,
      stats,
      slot,
      http2: protocol === 'http2',
      timeoutMs: s.timeoutMs,
      bufferLimitBytes: s.bufferLimitBytes,
      dynamicStats: this.#config.dynamicStats,
      onAbandoned: () => store.counter(`${s.mainStatPrefix}retry_or_shadow_abandoned`).inc(),
    });
  }
}

/** The shadows of one request: the router feeds them the body and trailers as they arrive. */
export class ShadowSet {
  readonly #streams: readonly ShadowStream[];

  constructor(streams: readonly ShadowStream[]) {
    this.#streams = streams;
  }

  sendData(data: Buffer, endStream: boolean): void {
    for (const s of this.#streams) s.sendData(data, endStream);
  }

  sendTrailers(trailers: HeaderMap): void {
    for (const s of this.#streams) s.sendTrailers(trailers);
  }

  /**
   * The main stream is finished or reset. Shadows whose request is complete run on (fire and forget);
   * a shadow still waiting for request body is reset, since the rest will never come.
   */
  detach(): void {
    for (const s of this.#streams) if (!s.requestComplete) s.abort();
  }
}
