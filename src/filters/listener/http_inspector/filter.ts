// http_inspector: on plaintext connections, peeks for the HTTP/2 preface or an HTTP/1.x request
// line and sets the application protocol (h2c, http/1.1, http/1.0) for filter-chain matching.
// Never closes a connection itself: undecided or non-HTTP bytes are http_not_found.

import type { Socket } from 'node:net';
import type { StatsStore } from '../../../proxy/stats.ts';
import { type ListenerFilter, type MutableMatchInput, peekSocket } from '../../../proxy/listener/listener-filters.ts';
import { type HttpDetection, detectHttp } from './detect.ts';
import type { HttpInspectorConfig } from './config.ts';

/** Envoy's MAX_INSPECT_SIZE: a request line must show up within this many bytes. */
export const MAX_INSPECT_BYTES = 8 * 1024; // 8 KiB

const FOUND_STAT: Record<string, string> = { 'http/1.0': 'http10_found', 'http/1.1': 'http11_found', h2c: 'http2_found' };

export class HttpInspector implements ListenerFilter {
  readonly #stats: StatsStore;
  readonly #prefix: string;

  constructor(config: HttpInspectorConfig, stats: StatsStore) {
    this.#stats = stats;
    this.#prefix = config.statPrefix;
  }

  async onAccept(socket: Socket, input: MutableMatchInput, signal: AbortSignal): Promise<void> {
    if (input.transportProtocol !== '' && input.transportProtocol !== 'raw_buffer') return;
    let found: HttpDetection = 'more';
    const outcome = await peekSocket(socket, MAX_INSPECT_BYTES, signal, (data) => {
      found = detectHttp(data);
      return found === 'more' ? 'more' : 'done';
    });
    if (outcome === 'aborted') return;
    const stat = FOUND_STAT[found as HttpDetection];
    if (stat === undefined) {
      this.#stats.counter(`${this.#prefix}http_not_found`).inc();
      return;
    }
    this.#stats.counter(this.#prefix + stat).inc();
    input.applicationProtocols = [found];
  }
}
