// One listener on one worker: a reusePort socket, listener filters, filter-chain selection, the
// chain's TLS handshake (listener-tls.ts), the chain's non-terminal network filters
// (onNewConnection: they may close the connection, e.g. local_ratelimit) and hand-off to the
// chain's terminal network filter. A connection that matches no chain, fails its handshake or
// whose listener filters time out is closed and counted; nothing here throws into the event loop.
// LDS may replace the listener's config in place (same address): new connections get the new
// filter chains while those opened on the old config drain (HTTP/1.1 `Connection: close`, HTTP/2
// GOAWAY) and are closed at the end of the drain time; removal drains the same way.

import net, { type Socket } from 'node:net';
import type { ListenerConfig } from './listener-config.ts';
import type { RuntimeContext } from '../../filters/registry.ts';
import { NetworkFilterStatus, type NetworkFilterCallbacks } from '../../filters/network/filter.ts';
import { runListenerFilters } from './listener-filters.ts';
import type { ConnectionMatchInput } from './filter-chain-match.ts';
import { ListenerGeneration, type ChainRuntime } from './listener-generation.ts';
import { newStreamInfo, type AddressInfo } from '../http/stream-info.ts';
import type { Counter, Gauge } from '../stats.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';
import { logger } from '../log.ts';
import { Limits } from '../limits.ts';
import { hostKey } from '../host-port.ts';
import { trafficSeen } from '../worker/first-traffic.ts';

const log = logger('conn_handler');
let nextConnectionId = 1;

export interface ActiveListenerOptions {
  /** How long connections of a replaced or removed config may drain before being closed (--drain-time-s), ms. */
  readonly drainTimeMs?: number;
  /**
   * use_original_dst: the worker's listener for a restored original destination (its exact
   * address, else the wildcard address with its port), if it has one.
   */
  readonly listenerFor?: (destination: AddressInfo) => ActiveListener | undefined;
}

export class ActiveListener {
  readonly #rt: RuntimeContext;
  readonly #server: net.Server;
  readonly #drainTimeMs: number;
  readonly #listenerFor: ActiveListenerOptions['listenerFor'];
  #current: ListenerGeneration;
  /** Older configs whose connections are draining. */
  readonly #draining = new Set<ListenerGeneration>();
  #stats: ListenerStats | undefined;
  #port = 0;
  #bound = false;
  /**
   * The address every connection accepted here has as its local one, when the listener is bound to
   * one IPv4 address: read from the socket it costs a getsockname() per connection.
   */
  #localAddress: AddressInfo | undefined;

  constructor(config: ListenerConfig, rt: RuntimeContext, opts: ActiveListenerOptions = {}) {
    this.#rt = rt;
    this.#drainTimeMs = opts.drainTimeMs ?? Limits.drainTimeS * 1000;
    this.#listenerFor = opts.listenerFor;
    this.#current = new ListenerGeneration(config, rt);
    const limit = config.perConnectionBufferLimitBytes;
    this.#server = net.createServer({ highWaterMark: limit, noDelay: true }, (s) => this.#onConnection(s, this.#localAddress, false));
    this.#server.on('error', (e) => log.error(`listener ${this.config.name}: ${e.message}`));
  }

  /** The current config (new connections get its filter chains). */
  get config(): ListenerConfig {
    return this.#current.config;
  }

  get port(): number {
    return this.#port;
  }

  /** bind_to_port (default true): false -> created but not bound (it gets connections handed over). */
  get bindToPort(): boolean {
    return this.config.raw.bind_to_port?.value ?? true;
  }

  /** Bound to its address (false before listen(), for bind_to_port false, and once it stopped accepting). */
  get bound(): boolean {
    return this.#bound;
  }

  get activeConnections(): number {
    let n = this.#current.sockets.size;
    for (const g of this.#draining) n += g.sockets.size;
    return n;
  }

  /** Replaced configs still draining (tests). */
  get drainingConfigs(): number {
    return this.#draining.size;
  }

  /** Connections still draining on replaced configs (tests). */
  get drainingConnections(): number {
    let n = 0;
    for (const g of this.#draining) n += g.sockets.size;
    return n;
  }

  /**
   * Binds with SO_REUSEPORT so every worker can listen on the same address. With bind_to_port
   * false nothing is bound: the listener is only set up, and `port` is the configured one.
   */
  listen(port: number): Promise<number> {
    const { host, ipv4Compat } = this.config.address;
    if (!this.bindToPort) {
      this.#port = port;
      this.#setUp();
      return Promise.resolve(port);
    }
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port, reusePort: true, ipv6Only: host === '::' ? !ipv4Compat : undefined, backlog: 1024 }, () => {
        this.#server.off('error', reject);
        const a = this.#server.address();
        this.#port = typeof a === 'object' && a ? a.port : port;
        this.#localAddress = net.isIPv4(host) && host !== '0.0.0.0' ? { address: host, port: this.#port } : undefined;
        this.#bound = true;
        this.#setUp();
        resolve(this.#port);
      });
    });
  }

  #setUp(): void {
    this.#stats = listenerStats(this.#rt, this.#statPrefix());
    this.#current.startTls(this.#stats);
  }

  /** Envoy names listener stats after the bound address (`listener.127.0.0.1_10000.`) unless stat_prefix is set. */
  #statPrefix(): string {
    return this.config.raw.stat_prefix || `${this.config.address.host}_${this.#port}`;
  }

  /**
   * LDS replaced this listener's config, same address: new connections get `config`'s filter chains;
   * those opened on the previous config drain and are closed when the drain time is up.
   */
  update(config: ListenerConfig): void {
    const old = this.#current;
    this.#current = new ListenerGeneration(config, this.#rt, old);
    // A new stat_prefix counts new connections under it (the old ones finish under the old one).
    if (this.#stats && this.#stats.prefix !== `listener.${this.#statPrefix()}.`) this.#stats = listenerStats(this.#rt, this.#statPrefix());
    if (this.#stats) this.#current.startTls(this.#stats);
    this.#draining.add(old);
    old.retire(this.#drainTimeMs, () => this.#draining.delete(old));
  }

  /**
   * LDS removed this listener: stops accepting, drains every connection and closes what is left
   * after the drain time. Resolves once everything is closed.
   */
  async remove(): Promise<void> {
    await this.stopAccepting();
    const gens = [this.#current, ...this.#draining];
    await Promise.all(
      gens.map(
        (g) =>
          new Promise<void>((resolve) => {
            this.#draining.add(g);
            g.retire(this.#drainTimeMs, () => {
              this.#draining.delete(g);
              resolve();
            });
          }),
      ),
    );
  }

  /**
   * Takes a connection accepted elsewhere: a use_original_dst listener hands over a redirected
   * connection with the original destination it restored (`localAddress`), which this listener's
   * listener filters and chains then see. It is not handed over again.
   */
  accept(socket: Socket, localAddress?: AddressInfo): void {
    this.#onConnection(socket, localAddress, true);
  }

  /**
   * `localAddress`: the connection's local address when the listener knows it (see #localAddress),
   * or the original destination it was handed over with (`handedOver`).
   */
  #onConnection(socket: Socket, localAddress: AddressInfo | undefined, handedOver: boolean): void {
    trafficSeen();
    const st = this.#stats!;
    const gen = this.#current;
    gen.sockets.add(socket);
    st.cxTotal.inc();
    st.cxActive.inc();
    st.workerCxTotal.inc();
    st.workerCxActive.inc();
    st.serverCx.inc();
    const release = (): void => {
      // A filter-chain-only update may have moved it to a newer config.
      this.#current.sockets.delete(socket);
      for (const g of this.#draining) g.sockets.delete(socket);
      st.cxActive.dec();
      st.workerCxActive.dec();
      st.serverCx.dec();
    };
    const onClose = (): void => {
      release();
      st.cxDestroy.inc();
    };
    const onError = (e: Error): void => log.debug(`downstream ${socket.remoteAddress}: ${e.message}`);
    // 'close' comes once: `on` spares once()'s wrapper, per connection.
    socket.on('close', onClose);
    socket.on('error', onError);
    const local = localAddress ?? { address: stripV4Mapped(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    const remote = { address: stripV4Mapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    const initial: ConnectionMatchInput = {
      destinationPort: local.port,
      destinationIp: local.address,
      serverName: undefined,
      transportProtocol: 'raw_buffer',
      applicationProtocols: [],
      sourceIp: remote.address,
      sourcePort: remote.port,
    };
    // Without listener filters the chain is chosen now, in this tick (no promise per connection).
    if (gen.listenerFilters.length === 0) return this.#dispatch(socket, gen, initial, local, remote, remote);
    void runListenerFilters(
      socket,
      gen.listenerFilters,
      initial,
      gen.config.listenerFiltersTimeoutMs,
      gen.config.continueOnListenerFiltersTimeout,
      { store: this.#rt.stats, prefix: this.#stats!.prefix },
    ).then(
      (input) => {
        // Undefined: counted by runListenerFilters (timeout, error or remote close).
        if (!input) return void socket.destroy();
        // proxy_protocol gives the client's address; the socket's peer stays the direct one.
        const peer = input.sourceIp === remote.address && input.sourcePort === remote.port ? remote : { address: input.sourceIp, port: input.sourcePort };
        if (!input.localAddressRestored) return this.#dispatch(socket, gen, input, local, peer, remote);
        const restored: AddressInfo = { address: input.destinationIp, port: input.destinationPort, restored: true };
        const target = gen.config.useOriginalDst && !handedOver ? this.#listenerFor?.(restored) : undefined;
        if (!target || target === this || socket.destroyed) return this.#dispatch(socket, gen, input, restored, peer, remote);
        // Envoy's hand-off: the connection is the other listener's from here on (it stays in this one's downstream_cx_total).
        socket.off('close', onClose);
        socket.off('error', onError);
        release();
        target.accept(socket, restored);
      },
      (e: unknown) => {
        log.debug(`listener filters failed: ${String(e)}`);
        socket.destroy();
      },
    );
  }

  /**
   * Chooses the connection's filter chain, then its TLS handshake (if any) and its network filters.
   * `remote` is the client as listener filters found it (proxy_protocol), `direct` the socket's peer.
   */
  #dispatch(socket: Socket, gen: ListenerGeneration, input: ConnectionMatchInput, local: AddressInfo, remote: AddressInfo, direct: AddressInfo): void {
    if (socket.destroyed) return;
    const chainRaw = gen.config.matcher.match(input);
    const chain = chainRaw ? gen.chains.get(chainRaw) : undefined;
    if (!chain || !chain.terminal.factory.takeOver) {
      this.#stats!.noChain.inc();
      log.debug(`closing connection from ${hostKey(remote.address, remote.port)}: no matching filter chain found`);
      socket.destroy();
      return;
    }
    chain.sockets.add(socket);
    socket.on('close', () => chain.sockets.delete(socket));
    // Matched on a config replaced meanwhile by a filter-chain-only update that kept this chain: it belongs to the new one.
    if (gen !== this.#current && gen.sockets.has(socket) && this.#current.serves(chain)) {
      gen.sockets.delete(socket);
      this.#current.sockets.add(socket);
    }
    if (!chain.tls) return this.#serve(gen, chain, socket, undefined, input.serverName, local, remote, direct);
    chain.tls.secure(socket).then(
      (secured) => {
        if (!secured || socket.destroyed) return; // counted under ssl.* / server_ssl_socket_factory.*
        this.#serve(gen, chain, secured.socket, secured.info, input.serverName, local, remote, direct);
      },
      (e: unknown) => {
        log.debug(`TLS set-up for ${hostKey(remote.address, remote.port)} failed: ${String(e)}`);
        socket.destroy();
      },
    );
  }

  /** Runs the chain's network filters on `conn` (the TLS socket, after a handshake). */
  #serve(gen: ListenerGeneration, chain: ChainRuntime, conn: Socket, downstreamTls: TlsConnectionInfo | undefined, sniffedName: string | undefined, local: AddressInfo, remote: AddressInfo, direct: AddressInfo): void {
    // With TLS, SNI comes from the handshake (the same name tls_inspector saw, when it ran).
    const serverName = downstreamTls?.sni ?? sniffedName;
    const streamInfo = newStreamInfo({
      downstreamRemote: remote,
      downstreamDirectRemote: direct,
      downstreamLocal: local,
      connectionId: nextConnectionId++,
      ...(serverName ? { requestedServerName: serverName } : {}),
      ...(downstreamTls ? { downstreamTls } : {}),
    });
    const callbacks: NetworkFilterCallbacks = {
      socket: conn,
      streamInfo,
      bufferLimitBytes: gen.config.perConnectionBufferLimitBytes,
      continueReading: () => conn.resume(),
      close: (mode) => (mode === 'flush' ? conn.end() : conn.destroy()),
      dataFilters: [],
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
        if (filter && (filter.onData || filter.onWrite || filter.onClose)) callbacks.dataFilters?.push(filter);
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
    this.#bound = false;
    if (this.#server.listening) this.#server.close();
    return Promise.resolve();
  }

  /** Asks the terminal filters to wind down their connections gracefully. */
  drain(): void {
    this.#current.drain();
    for (const g of this.#draining) g.drain();
  }

  async closeAll(): Promise<void> {
    const gens = [this.#current, ...this.#draining];
    this.#draining.clear();
    await Promise.all(gens.map((g) => g.close()));
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
