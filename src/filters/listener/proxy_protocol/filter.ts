// proxy_protocol: reads the PROXY header (version 1 or 2) a load balancer put before the client's
// bytes, consumes it, and makes its source the connection's remote address and its destination the
// local one (restored, as Envoy does), for filter-chain matching, RBAC, x-forwarded-for, access logs
// and ORIGINAL_DST clusters; %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% stays the load balancer. A missing
// header closes the connection unless allow_requests_without_proxy_protocol; a malformed or
// disallowed one always does. Counted under proxy_proto.[<stat_prefix>.].

import type { Socket } from 'node:net';
import type { StatsStore } from '../../../proxy/stats.ts';
import { type ListenerFilter, type MutableMatchInput, ListenerFilterRejection, peekSocket } from '../../../proxy/listener/listener-filters.ts';
import { type ProxyHeaderResult, parseProxyHeader } from './header.ts';
import type { ProxyProtocolConfig } from './config.ts';

/** The longest header legate reads: version 2's fixed part and its largest length. */
const MAX_HEADER_BYTES = 16 + 0xffff;

export class ProxyProtocol implements ListenerFilter {
  readonly #config: ProxyProtocolConfig;
  readonly #stats: StatsStore;

  constructor(config: ProxyProtocolConfig, stats: StatsStore) {
    this.#config = config;
    this.#stats = stats;
  }

  #count(name: string): void {
    this.#stats.counter(this.#config.statPrefix + name).inc();
  }

  async onAccept(socket: Socket, input: MutableMatchInput, signal: AbortSignal): Promise<void> {
    let result: ProxyHeaderResult = { kind: 'more' };
    const outcome = await peekSocket(socket, MAX_HEADER_BYTES, signal, (data) => {
      result = parseProxyHeader(data);
      // A header is consumed; anything else is given back whole.
      return result.kind === 'header' ? result.length : result.kind === 'more' ? 'more' : 'done';
    });
    if (outcome === 'aborted') return;
    const r = result as ProxyHeaderResult;
    if (r.kind === 'not_found' || r.kind === 'more') {
      if (this.#config.allowWithout && r.kind === 'not_found') return this.#count('not_found_allowed');
      this.#count('not_found_disallowed');
      throw new ListenerFilterRejection('error', 'proxy_protocol: no PROXY protocol header');
    }
    const v = `versions.v${r.version}.`;
    if (r.kind === 'error') {
      this.#count(`${v}error`);
      throw new ListenerFilterRejection('error', `proxy_protocol: ${r.reason}`);
    }
    if (this.#config.disallowed.has(r.version)) {
      this.#count(`${v}disallowed`);
      throw new ListenerFilterRejection('error', `proxy_protocol: version ${r.version} is disallowed`);
    }
    this.#count(`${v}found`);
    const a = r.addresses;
    if (!a) return;
    input.directSourceIp ??= input.sourceIp;
    input.sourceIp = a.sourceIp;
    input.sourcePort = a.sourcePort;
    input.destinationIp = a.destinationIp;
    input.destinationPort = a.destinationPort;
    input.localAddressRestored = true;
  }
}
