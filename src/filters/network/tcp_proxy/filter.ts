// tcp_proxy, the terminal network filter: picks a cluster (weighted), a host, connects with up to
// max_connect_attempts tries, then hands both sockets to TcpProxySession. No cluster, no host or
// failed connects close the downstream connection (NC / UH / UF) and still write the access log.

import type { Socket } from 'node:net';
import type { NetworkFilter, NetworkFilterCallbacks, NetworkFilterFactory, UpstreamNetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Cluster, Host, UpstreamFilterConfig } from '../../../proxy/upstream/types.ts';
import { ProxyError, ResponseFlag } from '../../../proxy/errors.ts';
import { type AccessLogger, createAccessLogger } from '../../../proxy/access-log/index.ts';
import { TcpProxySession } from '../../../proxy/tcp/tcp-proxy-session.ts';
import { type TcpProxyStats, tcpProxyStats } from '../../../proxy/tcp/tcp-proxy-stats.ts';
import { logger } from '../../../proxy/log.ts';
import { transportFailureReason, upstreamTlsInfo } from '../../../proxy/upstream/upstream-tls.ts';
import { type TcpProxyConfig, pickCluster } from './config.ts';

const log = logger('filter');

/** The worker-side factory for one tcp_proxy config: shared stats, loggers and live sessions. */
export class TcpProxyFactory implements NetworkFilterFactory<TcpProxyConfig> {
  readonly terminal = true;
  readonly #ctx: RuntimeContext;
  /** Per cluster upstream filter config, its factory on this worker. */
  readonly #upstreamFactories = new WeakMap<UpstreamFilterConfig, UpstreamNetworkFilterFactory>();
  readonly #stats: TcpProxyStats;
  readonly #loggers: readonly AccessLogger[];
  readonly #live = new Set<Socket>();

  constructor(config: TcpProxyConfig, ctx: RuntimeContext) {
    this.#ctx = ctx;
    this.#stats = tcpProxyStats(ctx.stats, config.statPrefix);
    this.#loggers = config.accessLogs.map((c) => createAccessLogger(c));
  }

  takeOver(config: TcpProxyConfig, callbacks: NetworkFilterCallbacks): void {
    const down = callbacks.socket;
    this.#stats.downstreamCxTotal.inc();
    this.#live.add(down);
    let logged = false;
    const finish = (): void => {
      if (logged) return;
      logged = true;
      this.#live.delete(down);
      const info = callbacks.streamInfo;
      info.durationMs = performance.now() - info.startMono;
      for (const l of this.#loggers) l.log(info);
    };
    void this.#start(config, callbacks, finish).catch((e: unknown) => {
      log.error(`tcp_proxy: unexpected error: ${String(e)}`);
      down.destroy();
      finish();
    });
  }

  async #start(config: TcpProxyConfig, callbacks: NetworkFilterCallbacks, finish: () => void): Promise<void> {
    const down = callbacks.socket;
    const info = callbacks.streamInfo;
    const fail = (flag?: ResponseFlag): void => {
      if (flag) info.responseFlags.add(flag);
      down.destroy();
      finish();
    };

    const clusterName = pickCluster(config);
    info.clusterName = clusterName;
    const cluster = this.#ctx.clusterManager.get(clusterName);
    if (!cluster) {
      log.debug(`tcp_proxy: cluster '${clusterName}' not found`);
      this.#stats.downstreamCxNoRoute.inc();
      fail(ResponseFlag.NoClusterFound);
      return;
    }

    // Until the upstream is up, the downstream is not read (its FIN, if any, is forwarded later);
    // a reset or close meanwhile abandons the attempt.
    // A client FIN while connecting must not end our write side (Node's default without allowHalfOpen).
    down.allowHalfOpen = true;
    let downGone = down.destroyed;
    const onDownGone = (): void => {
      downGone = true;
    };
    down.once('close', onDownGone);
    down.on('error', () => {});

    const up = await this.#connect(cluster, config.maxConnectAttempts, info, () => downGone);
    down.off('close', onDownGone);
    if (up === undefined || downGone) {
      up?.destroy();
      if (downGone) {
        info.responseFlags.add(ResponseFlag.DownstreamConnectionTermination);
        finish();
      } else fail(); // #connect left UH or UF on info
      return;
    }

    info.upstreamLocal = { address: up.localAddress ?? '', port: up.localPort ?? 0 };
    new TcpProxySession({
      downstream: down,
      upstream: up,
      idleTimeoutMs: config.idleTimeoutMs,
      maxDurationMs: config.maxDownstreamConnectionDurationMs,
      stats: this.#stats,
      streamInfo: info,
      onClose: finish,
      dataFilters: this.#withUpstreamFilters(callbacks.dataFilters ?? [], cluster, up, info),
      // Per-chunk timestamps feed only the access log's durations.
      stampTimes: this.#loggers.length > 0,
    });
  }

  /**
   * The connection's filters and, after them, the cluster's upstream filters on this upstream
   * connection: bytes to the upstream pass them last, bytes from it first (the session runs
   * onWrite in reverse).
   */
  #withUpstreamFilters(filters: NetworkFilter[], cluster: Cluster, up: Socket, info: NetworkFilterCallbacks['streamInfo']): NetworkFilter[] {
    const configs = cluster.info.upstreamFilters;
    if (!configs?.length) return filters;
    const out = [...filters];
    for (const u of configs) {
      let factory = this.#upstreamFactories.get(u);
      if (!factory) this.#upstreamFactories.set(u, (factory = u.spec.factory(u.config, this.#ctx) as UpstreamNetworkFilterFactory));
      const f = factory.create(up, info);
      const adapted: NetworkFilter = {};
      if (f.onUpstreamWrite) adapted.onData = (d, e) => f.onUpstreamWrite!(d, e);
      if (f.onUpstreamData) adapted.onWrite = (d, e) => f.onUpstreamData!(d, e);
      out.push(adapted);
    }
    return out;
  }

  /** Tries up to `attempts` hosts; undefined when none connected (flag UH or UF left on `info`). */
  async #connect(cluster: Cluster, attempts: number, info: NetworkFilterCallbacks['streamInfo'], gone: () => boolean): Promise<Socket | undefined> {
    const failed = new Set<string>();
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const downstreamLocal = info.downstreamLocal;
      let host: Host | undefined = cluster.chooseHost({ hashKey: undefined, excludeHosts: failed, downstreamLocal });
      if (!host && failed.size > 0) host = cluster.chooseHost({ hashKey: undefined, downstreamLocal });
      if (!host) {
        // Envoy counts this where the cluster manager hands out a TCP pool; here chooseHost is the LB alone.
        this.#ctx.clusterManager.stats.counter(`${cluster.info.statPrefix}upstream_cx_none_healthy`).inc();
        info.responseFlags.add(ResponseFlag.NoHealthyUpstream);
        return undefined;
      }
      info.upstreamHost = { address: host.address, port: host.port };
      info.attemptCount = attempt - 1;
      try {
        const socket = await cluster.connect(host);
        info.upstreamTls = upstreamTlsInfo(socket);
        return socket;
      } catch (e) {
        failed.add(host.key);
        info.upstreamTransportFailureReason = transportFailureReason(e) ?? (e instanceof Error ? e.message : String(e));
        const flag = e instanceof ProxyError && e.flag ? e.flag : ResponseFlag.UpstreamConnectionFailure;
        info.responseFlags.add(flag);
        log.debug(`tcp_proxy: connect to ${host.key} (attempt ${attempt}/${attempts}) failed: ${info.upstreamTransportFailureReason}`);
        if (gone()) return undefined;
      }
    }
    this.#ctx.clusterManager.stats.counter(`${cluster.info.statPrefix}upstream_cx_connect_attempts_exceeded`).inc();
    return undefined;
  }

  /** TCP connections have nothing to drain gracefully; they end when the listener's drain time is up. */
  drain(): void {}

  async close(): Promise<void> {
    for (const s of this.#live) s.destroy();
    await Promise.all(this.#loggers.map((l) => l.close()));
  }
}
