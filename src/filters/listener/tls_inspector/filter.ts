// tls_inspector: peeks the first bytes of a connection; a TLS ClientHello sets transport protocol
// 'tls', the SNI and the ALPN list. Anything else is left to raw_buffer. A ClientHello over 64 KiB
// closes the connection (client_hello_too_large), as in Envoy.

import type { Socket } from 'node:net';
import type { StatsStore } from '../../../proxy/stats.ts';
import { type ListenerFilter, type MutableMatchInput, ListenerFilterRejection, peekSocket } from '../../../proxy/listener/listener-filters.ts';
import { type ClientHelloResult, MAX_CLIENT_HELLO_BYTES, parseClientHello } from './client-hello.ts';
import type { TlsInspectorConfig } from './config.ts';

export class TlsInspector implements ListenerFilter {
  readonly #stats: StatsStore;
  readonly #prefix: string;

  constructor(config: TlsInspectorConfig, stats: StatsStore) {
    this.#stats = stats;
    this.#prefix = config.statPrefix;
  }

  #count(name: string): void {
    this.#stats.counter(this.#prefix + name).inc();
  }

  async onAccept(socket: Socket, input: MutableMatchInput, signal: AbortSignal): Promise<void> {
    let result: ClientHelloResult = { kind: 'more' };
    // Record headers ride on top of the 64 KiB handshake limit; twice the limit bounds the peek.
    const outcome = await peekSocket(socket, 2 * MAX_CLIENT_HELLO_BYTES, signal, (data) => {
      result = parseClientHello(data);
      return result.kind === 'more' ? 'more' : 'done';
    });
    if (outcome === 'aborted') return;
    const r = result as ClientHelloResult;
    if (outcome === 'limit' || r.kind === 'too_large') {
      this.#count('client_hello_too_large');
      throw new ListenerFilterRejection('error', 'tls_inspector: client hello too large');
    }
    if (r.kind !== 'tls') {
      this.#count('tls_not_found');
      return;
    }
    this.#count('tls_found');
    input.transportProtocol = 'tls';
    if (r.serverName) {
      input.serverName = r.serverName;
      this.#count('sni_found');
    } else this.#count('sni_not_found');
    if (r.alpn.length > 0) {
      input.applicationProtocols = [...r.alpn];
      this.#count('alpn_found');
    } else this.#count('alpn_not_found');
  }
}
