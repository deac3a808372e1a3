// The network (L4) filter interface. A filter is created per downstream connection.

import type { Socket } from 'node:net';
import type { StreamInfo } from '../../proxy/http/stream-info.ts';

export const NetworkFilterStatus = { Continue: 0, StopIteration: 1 } as const;
export type NetworkFilterStatus = (typeof NetworkFilterStatus)[keyof typeof NetworkFilterStatus];

export interface NetworkFilterCallbacks {
  /** The downstream socket (already past listener filters; bytes they peeked are unshifted back). */
  readonly socket: Socket;
  readonly streamInfo: StreamInfo;
  /** The listener's per_connection_buffer_limit_bytes: how much a filter may buffer per connection. */
  readonly bufferLimitBytes: number;
  /** Resumes reading after StopIteration from onNewConnection. */
  continueReading(): void;
  /** Closes the downstream connection ('flush' lets queued writes go first). */
  close(mode: 'flush' | 'reset'): void;
  /**
   * The connection's non-terminal filters that want its bytes (onData/onWrite/onClose), in chain
   * order, filled by the listener; tcp_proxy runs them. (The HTTP connection manager does not.)
   */
  readonly dataFilters?: NetworkFilter[];
}

export interface NetworkFilter {
  onNewConnection?(): NetworkFilterStatus;
  /** Bytes from downstream on their way upstream: returns what to send on now (rewritten, or empty while held). */
  onData?(data: Buffer, endStream: boolean): Buffer;
  /** Bytes from upstream on their way downstream: the same. */
  onWrite?(data: Buffer, endStream: boolean): Buffer;
  /** A side of the connection closed (`peer`: who closed it, as Proxy-Wasm's peer type). */
  onClose?(side: 'downstream' | 'upstream', peer: 'local' | 'remote'): void;
}

/**
 * A cluster's upstream network filter (Envoy's cluster `filters`) on one upstream connection, run by
 * tcp_proxy: it sees the bytes written to the upstream and those read from it, and may rewrite or
 * hold them (return what goes on now; empty while held).
 */
export interface UpstreamNetworkFilter {
  /** Bytes on their way to the upstream. */
  onUpstreamWrite?(data: Buffer, endStream: boolean): Buffer;
  /** Bytes read from the upstream, on their way down. */
  onUpstreamData?(data: Buffer, endStream: boolean): Buffer;
}

/** What an `upstream_network` extension builds: one filter per upstream connection. */
export interface UpstreamNetworkFilterFactory {
  create(upstream: Socket, info: StreamInfo): UpstreamNetworkFilter;
}

/**
 * Network filter factory. A terminal filter (tcp_proxy, http_connection_manager) takes the
 * connection over through `takeOver`, owning the socket from then on.
 */
export interface NetworkFilterFactory<C = unknown> {
  create?(config: C, callbacks: NetworkFilterCallbacks): NetworkFilter;
  readonly terminal?: boolean;
  takeOver?(config: C, callbacks: NetworkFilterCallbacks): void;
  /** Listener drain: stop reusing connections (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY). */
  drain?(): void;
  /** Closes everything this factory still holds (connections, timers). */
  close?(): Promise<void>;
}
