// One listener on one worker: a reusePort socket, listener filters, filter-chain selection, the
// chain's TLS handshake (listener-tls.ts), the chain's non-terminal network filters
// (onNewConnection: they may close the connection, e.g. local_ratelimit) and hand-off to the
// chain's terminal network filter. A connection that matches no chain, fails its handshake or
// whose listener filters time out is closed and counted; nothing here throws into the event loop.

import net, { type Socket } from 'node:net';
import type { ListenerConfig, ChainConfig } from './listener-config.ts';
import type { RuntimeContext } from '../../filters/registry.ts';
import { NetworkFilterStatus, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../../filters/network/filter.ts';
import { runListenerFilters, withFilterDisabled, type ListenerFilter } from './listener-filters.ts';
import { newStreamInfo } from '../http/stream-info.ts';
import type { Counter, Gauge } from '../stats.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';
import { logger } from '../log.ts';
import { ChainTls, hasTls } from './listener-tls.ts';

const log = logger('conn_handler');
let nextConnectionId = 1;

interface ChainRuntime {
  readonly config: ChainConfig;
  /** Non-terminal filters, in order: each connection gets one of each, which sees onNewConnection before the hand-off. */
  readonly filters: ReadonlyArray<{ factory: NetworkFilterFactory; config: unknown }>;
  readonly terminal: { factory: NetworkFilterFactory; config: unknown };
  /** The chain's TLS server side; undefined for plaintext chains. */
  readonly tls: ChainTls | undefined;
}

export class ActiveListener {
  readonly config: ListenerConfig;
  readonly #rt: RuntimeContext;
  readonly #server: net.Server;
  /** Accepted (raw) sockets; destroying one also ends the TLSSocket wrapping it. */
  readonly #sockets = new Set<Socket>();
  readonly #listenerFilters: ListenerFilter[] = [];
  readonly #chains = new Map<object, ChainRuntime>();
  #stats: ListenerStats | undefined;
  #port = 0;

  constructor(config: ListenerConfig, rt: RuntimeContext) {
    this.config = config;
    this.#rt = rt;
    for (const { ext, disabled } of config.listenerFilters) {
      if ('skipped' in ext) continue;
      const f = ext.spec.factory(ext.config, rt) as ListenerFilter;
      this.#listenerFilters.push(disabled ? withFilterDisabled(f, disabled) : f);
    }
    for (const [raw, chain] of config.chains) {
      const last = chain.filters[chain.filters.length - 1];
      if (!last || 'skipped' in last) continue;
      const filters: Array<{ factory: NetworkFilterFactory; config: unknown }> = [];
      for (const f of chain.filters.slice(0, -1)) {
        if (!('skipped' in f)) filters.push({ factory: f.spec.factory(f.config, rt) as NetworkFilterFactory, config: f.config });
      }
      const tls = hasTls(chain) ? new ChainTls(chain, { stats: rt.stats, secrets: rt.secrets }) : undefined;
      this.#chains.set(raw, { config: chain, filters, terminal: { factory: last.spec.factory(last.config, rt) as NetworkFilterFactory, config: last.config }, tls });
    }
    const limit = config.perConnectionBufferLimitBytes;
    this.#server = net.createServer({ highWaterMark: limit, noDelay: true }, (s) => this.#onConnection(s));
    this.#server.on('error', (e) => log.error(`listener ${config.name}: ${e.message}`));
  }

  get port(): number {
    return this.#port;
  }

  get activeConnections(): number {
    return this.#sockets.size;
  }

  /** Binds with SO_REUSEPORT so every worker can listen on the same address. */
  listen(port: number): Promise<number> {
    const { host, ipv4Compat } = this.config.address;
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port, reusePort: true, ipv6Only: host === '::' ? !ipv4Compat : undefined, backlog: 1024 }, () => {
        this.#server.off('error', reject);
        const a = this.#server.address();
        this.#port = typeof a === 'object' && a ? a.port : port;
        // Envoy names listener stats after the bound address (`listener.127.0.0.1_10000.`).
        const prefix = this.config.raw.stat_prefix || `${this.config.address.host}_${this.#port}`;
        this.#stats = listenerStats(this.#rt, prefix);
        for (const c of this.#chains.values()) c.tls?.start(this.#stats.prefix, this.#stats.transportSocketConnectTimeout);
        resolve(this.#port);
      });
    });
  }

  #onConnection(socket: Socket): void {
    const st = this.#stats!;
    this.#sockets.add(socket);
    st.cxTotal.inc();
    st.cxActive.inc();
    st.workerCxTotal.inc();
    st.workerCxActive.inc();
    st.serverCx.inc();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      st.cxActive.dec();
      st.workerCxActive.dec();
      st.serverCx.dec();
      st.cxDestroy.inc();
    });
    socket.on('error', (e) => log.debug(`downstream ${socket.remoteAddress}: ${e.message}`));
    void this.#dispatch(socket);
  }

  async #dispatch(socket: Socket): Promise<void> {
    const local = { address: stripV4Mapped(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    const remote = { address: stripV4Mapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    const input = await runListenerFilters(
      socket,
      this.#listenerFilters,
      {
        destinationPort: local.port,
        destinationIp: local.address,
        serverName: undefined,
        transportProtocol: 'raw_buffer',
        applicationProtocols: [],
        sourceIp: remote.address,
        sourcePort: remote.port,
      },
      this.config.listenerFiltersTimeoutMs,
      this.config.continueOnListenerFiltersTimeout,
      { store: this.#rt.stats, prefix: this.#stats!.prefix },
    ).catch((e: unknown) => {
      log.debug(`listener filters failed: ${String(e)}`);
      return undefined;
    });
    if (!input) {
      // Counted by runListenerFilters (timeout, error or remote close).
      socket.destroy();
      return;
    }
    if (socket.destroyed) return;
    const chainRaw = this.config.matcher.match(input);
    const chain = chainRaw ? this.#chains.get(chainRaw) : undefined;
    if (!chain || !chain.terminal.factory.takeOver) {
      this.#stats!.noChain.inc();
      log.debug(`closing connection from ${remote.address}:${remote.port}: no matching filter chain found`);
      socket.destroy();
      return;
    }
    let conn: Socket = socket;
    let downstreamTls: TlsConnectionInfo | undefined;
    if (chain.tls) {
      const secured = await chain.tls.secure(socket);
      if (!secured || socket.destroyed) return; // counted under ssl.* / server_ssl_socket_factory.*
      conn = secured.socket;
      downstreamTls = secured.info;
    }
    // With TLS, SNI comes from the handshake (the same name tls_inspector saw, when it ran).
    const serverName = downstreamTls?.sni ?? input.serverName;
    const streamInfo = newStreamInfo({
      downstreamRemote: remote,
      downstreamLocal: local,
      connectionId: nextConnectionId++,
      ...(serverName ? { requestedServerName: serverName } : {}),
      ...(downstreamTls ? { downstreamTls } : {}),
    });
    const callbacks: NetworkFilterCallbacks = {
      socket: conn,
      streamInfo,
      bufferLimitBytes: this.config.perConnectionBufferLimitBytes,
      continueReading: () => conn.resume(),
      close: (mode) => (mode === 'flush' ? conn.end() : conn.destroy()),
    };
    this.#runFilters(chain, callbacks, 0);
  }

  /**
   * Runs the non-terminal filters' onNewConnection from `from`, then hands the socket to the terminal
   * filter. A filter that closed the connection ends it here; one that answered StopIteration resumes
   * the rest through its continueReading(). (Only onNewConnection runs: the terminal filter owns the bytes.)
   */
  #runFilters(chain: ChainRuntime, callbacks: NetworkFilterCallbacks, from: number): void {
    const { socket } = callbacks;
    try {
      for (let i = from; i < chain.filters.length; i++) {
        const f = chain.filters[i]!;
        let resumed = false;
        const filter = f.factory.create?.(f.config, {
          ...callbacks,
          continueReading: () => {
            if (resumed || socket.destroyed) return;
            resumed = true;
            this.#runFilters(chain, callbacks, i + 1);
          },
        });
        const status = filter?.onNewConnection?.() ?? NetworkFilterStatus.Continue;
        // Closed, or already resumed from inside onNewConnection: nothing more to run here.
        if (socket.destroyed || resumed || status === NetworkFilterStatus.StopIteration) return;
        resumed = true; // Continue: a late continueReading() must not run the rest twice.
      }
      chain.terminal.factory.takeOver!(chain.terminal.config, callbacks);
    } catch (e) {
      log.error(`listener ${this.config.name}: network filter failed: ${e instanceof Error ? e.message : String(e)}`);
      socket.destroy();
    }
  }

  /**
   * Stops accepting new connections; existing ones carry on. (net.Server.close's callback waits
   * for every connection to end, so don't wait for it here: draining is the caller's business.)
   */
  stopAccepting(): Promise<void> {
    if (this.#server.listening) this.#server.close();
    return Promise.resolve();
  }

  /** Asks the terminal filters to wind down their connections gracefully. */
  drain(): void {
    for (const c of this.#chains.values()) c.terminal.factory.drain?.();
  }

  async closeAll(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    for (const c of this.#chains.values()) c.tls?.close();
    await Promise.all([...this.#chains.values()].map((c) => c.terminal.factory.close?.()));
    await this.stopAccepting();
  }
}

interface ListenerStats {
  readonly prefix: string;
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly cxDestroy: Counter;
  readonly workerCxTotal: Counter;
  readonly workerCxActive: Gauge;
  readonly serverCx: Gauge;
  readonly noChain: Counter;
  readonly transportSocketConnectTimeout: Counter;
}

function listenerStats(rt: RuntimeContext, prefix: string): ListenerStats {
  const p = `listener.${prefix}.`;
  const w = `${p}worker_${rt.workerId}.`;
  return {
    prefix: p,
    cxTotal: rt.stats.counter(`${p}downstream_cx_total`),
    cxActive: rt.stats.gauge(`${p}downstream_cx_active`),
    cxDestroy: rt.stats.counter(`${p}downstream_cx_destroy`),
    workerCxTotal: rt.stats.counter(`${w}downstream_cx_total`),
    workerCxActive: rt.stats.gauge(`${w}downstream_cx_active`),
    serverCx: rt.stats.gauge('server.total_connections'),
    noChain: rt.stats.counter(`${p}no_filter_chain_match`),
    transportSocketConnectTimeout: rt.stats.counter(`${p}downstream_cx_transport_socket_connect_timeout`),
  };
}

function stripV4Mapped(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
