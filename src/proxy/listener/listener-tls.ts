// Downstream TLS on one listener on one worker: a ServerTransportSocket per TLS filter chain, and
// the step between chain selection and the network filters that turns the accepted socket into a
// secured TLSSocket. Fails closed and never throws: a context still waiting for its SDS secrets
// resets the connection (`server_ssl_socket_factory.downstream_context_secrets_not_ready`), a
// failed handshake was already counted under `ssl.*` by the transport socket, which destroyed it.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Counter } from '../stats.ts';
import { logger } from '../log.ts';
import { createServerTransportSocket } from '../tls/transport-sockets.ts';
import { declareSslStats } from '../tls/tls-stats.ts';
import type { ServerTransportSocket, TlsConnectionInfo, TransportSocketContext } from '../tls/types.ts';
import type { ChainConfig } from './listener-config.ts';
import { setLongTimeout } from '../long-timers.ts';

/** TLS config code, required when a chain with TLS is built (transport-sockets.ts says why). */
const lazy = createRequire(import.meta.url);

const log = logger('conn_handler');

/** Envoy's SslSocketFactoryStats, under `listener.<addr>.server_ssl_socket_factory.`. */
const FACTORY_STATS = ['ssl_context_update_by_sds', 'upstream_context_secrets_not_ready', 'downstream_context_secrets_not_ready'] as const;

/** One TLS filter chain's server side on this worker. */
export class ChainTls {
  readonly #transport: ServerTransportSocket & { close?(): void };
  readonly #ctx: TransportSocketContext;
  readonly #connectTimeoutMs: number;
  readonly #secretNames: readonly string[];
  readonly #unwatch: Array<() => void> = [];
  #prefix = '';
  #connectTimeouts: Counter | undefined;

  constructor(chain: ChainConfig & { tls: NonNullable<ChainConfig['tls']> }, ctx: TransportSocketContext) {
    this.#ctx = ctx;
    this.#transport = createServerTransportSocket(chain.tls, ctx);
    this.#connectTimeoutMs = chain.transportSocketConnectTimeoutMs;
    this.#secretNames = (lazy('../tls/context-config.ts') as typeof import('../tls/context-config.ts')).dynamicSecretNames(chain.tls);
  }

  /**
   * Called once the listener knows its stat prefix (`listener.<addr>.`, after bind): declares the
   * ssl.* and socket-factory counters as Envoy does when it builds the context, and counts SDS
   * updates of the secrets this chain uses. `connectTimeouts` is the listener's
   * downstream_cx_transport_socket_connect_timeout.
   */
  start(prefix: string, connectTimeouts: Counter): void {
    if (this.#prefix) return;
    this.#prefix = prefix;
    this.#connectTimeouts = connectTimeouts;
    const stats = this.#ctx.stats;
    declareSslStats(stats, prefix);
    for (const n of FACTORY_STATS) stats.counter(`${prefix}server_ssl_socket_factory.${n}`);
    const updated = stats.counter(`${prefix}server_ssl_socket_factory.ssl_context_update_by_sds`);
    for (const name of this.#secretNames) this.#unwatch.push(this.#ctx.secrets.watch(name, () => updated.inc()));
  }

  /**
   * Runs the handshake on `socket` (listener filters done). Resolves with the secured socket and
   * what the handshake learnt, or undefined once the connection is gone (reset, timed out or
   * refused; already counted).
   */
  async secure(socket: Socket): Promise<{ socket: TLSSocket; info: TlsConnectionInfo } | undefined> {
    const prefix = this.#prefix;
    const stats = this.#ctx.stats;
    if (!this.#transport.ready()) {
      // Envoy hands such connections a NotReadySslSocket, which closes them at once.
      stats.counter(`${prefix}server_ssl_socket_factory.downstream_context_secrets_not_ready`).inc();
      log.debug(`resetting connection from ${socket.remoteAddress}: TLS secrets not ready (SDS)`);
      socket.resetAndDestroy();
      return undefined;
    }
    const limit = this.#connectTimeoutMs;
    // transport_socket_connect_timeout is the listener's own deadline (its own counter); the
    // transport socket's timeout is the backstop when none is configured.
    const timer =
      limit > 0
        ? setLongTimeout(() => {
            this.#connectTimeouts?.inc();
            log.debug(`closing connection from ${socket.remoteAddress}: transport socket connect timeout (${limit} ms)`);
            socket.destroy();
          }, limit)
        : undefined;
    try {
      const r = await this.#transport.secure(socket, prefix, limit > 0 ? limit + 1000 : 0);
      // A server TLSSocket made without a tls.Server stays `secureConnecting` (tls.Server clears it
      // on 'secure'); node:http2 would wait for a 'secureConnect' that never comes.
      (r.socket as unknown as { secureConnecting: boolean }).secureConnecting = false;
      r.socket.on('error', (e) => log.debug(`downstream TLS ${socket.remoteAddress}: ${e.message}`));
      return r;
    } catch (e) {
      log.debug(`TLS handshake with ${socket.remoteAddress} failed: ${e instanceof Error ? e.message : String(e)}`);
      if (!socket.destroyed) socket.destroy();
      return undefined;
    } finally {
      timer?.clear();
    }
  }

  /** Stops watching secrets (the listener is gone). */
  close(): void {
    for (const u of this.#unwatch.splice(0)) u();
    this.#transport.close?.();
  }
}

export function hasTls(chain: ChainConfig): chain is ChainConfig & { tls: NonNullable<ChainConfig['tls']> } {
  return chain.tls !== undefined;
}
