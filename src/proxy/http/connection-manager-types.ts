// The connection manager's interface to its listener (ConnectionManager, ConnectionOptions), the
// contracts between a connection (connection-manager.ts) and its streams
// (connection-manager-stream.ts), and the sink through which the filter manager reaches a stream.

import type { Socket } from 'node:net';
import type { HttpFilterFactory } from '../../filters/http/filter.ts';
import type { AccessLogger } from '../access-log/index.ts';
import type { FilterChainSink } from './filter-manager.ts';
import type { HcmConfig } from './hcm-config.ts';
import type { HcmStats } from './hcm-stats.ts';
import type { HeaderMap } from './headers.ts';
import type { AddressInfo } from './stream-info.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';
import type { ActiveStream } from './connection-manager-stream.ts';
import type { Runtime } from '../runtime.ts';

export interface ConnectionOptions {
  readonly connectionId: number;
  /** Defaults to the socket's peer / local address (pass what listener filters decided, e.g. PROXY protocol). */
  readonly remote?: AddressInfo;
  /** The socket's peer when `remote` is another client (proxy_protocol); default `remote`. */
  readonly directRemote?: AddressInfo;
  readonly local?: AddressInfo;
  readonly tls?: boolean;
  readonly requestedServerName?: string;
  /** The downstream TLS session (peer identity for XFCC, RBAC, the access log); undefined for plaintext. */
  readonly downstreamTls?: TlsConnectionInfo;
  /** The listener's per_connection_buffer_limit_bytes (default: the HCM config's, 1 MiB). */
  readonly bufferLimitBytes?: number;
}

export interface ConnectionManager {
  readonly stats: HcmStats;
  handleConnection(socket: Socket, info: ConnectionOptions): void;
  /** HTTP/1.1: `connection: close` on the next responses, idle connections closed; HTTP/2: GOAWAY. */
  drain(): void;
  /** Closes every connection now and releases the access logs. */
  close(): Promise<void>;
}

export interface RuntimeFilter {
  readonly name: string;
  readonly factory: HttpFilterFactory;
  readonly config: unknown;
}

/** What a stream needs from its connection manager and connection. */
export interface StreamOwner {
  readonly cfg: HcmConfig;
  readonly stats: HcmStats;
  readonly filters: readonly RuntimeFilter[];
  readonly upgradeFilters: ReadonlyMap<string, readonly RuntimeFilter[]>;
  readonly accessLoggers: readonly AccessLogger[];
  /** Runtime values (reloadable feature guards). */
  readonly runtime: Runtime;
  /** Drain started, or the connection hit max_requests_per_connection: close after this response. */
  shouldCloseAfterResponse(): boolean;
  streamDone(stream: ActiveStream): void;
}

export interface ConnectionInfo {
  readonly connectionId: number;
  readonly remote: AddressInfo;
  /** The socket's peer (%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%); `remote` unless proxy_protocol gave another. */
  readonly directRemote: AddressInfo;
  readonly local: AddressInfo;
  readonly tls: boolean;
  readonly requestedServerName: string | undefined;
  /** Request/response buffering limit for this connection (per_connection_buffer_limit_bytes). */
  readonly bufferLimitBytes: number;
  /** The connection's TLS session; undefined for plaintext. */
  readonly downstreamTls: TlsConnectionInfo | undefined;
}

/** Routes the filter manager's output to the stream's codec side. */
export class StreamSink implements FilterChainSink {
  readonly #s: ActiveStream;
  constructor(s: ActiveStream) {
    this.#s = s;
  }
  encodeHeaders(h: HeaderMap, end: boolean): void {
    this.#s.encodeHeadersToCodec(h, end);
  }
  encodeData(d: Buffer, end: boolean): void {
    this.#s.encodeDataToCodec(d, end);
  }
  encodeTrailers(t: HeaderMap): void {
    this.#s.encodeTrailersToCodec(t);
  }
  bufferOverflow(decode: boolean): void {
    this.#s.bufferOverflow(decode);
  }
  watermark(decode: boolean, above: boolean): void {
    this.#s.watermark(decode, above);
  }
}
