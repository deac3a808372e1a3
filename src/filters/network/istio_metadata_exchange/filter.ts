// Istio's TCP metadata exchange (`istio.metadata_exchange`), both sides. When the connection's
// negotiated ALPN is the configured protocol (`istio-peer-exchange`), this proxy's frame (frame.ts)
// goes before any other byte it sends, and the peer's is read off the front of what it receives:
// - server side, a network filter before tcp_proxy in an inbound chain: the client's frame names
//   the peer in filter state `downstream_peer`;
// - client side, a cluster's upstream filter (Envoy's cluster `filters`), run by tcp_proxy on the
//   upstream connection: the server's frame names `upstream_peer`.
// Another ALPN, a wrong magic or a frame that does not decode: the bytes pass on untouched and
// there is no peer, as in Istio. istio.stats reads the peer.

import type { Socket } from 'node:net';
import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory, type UpstreamNetworkFilter, type UpstreamNetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import { localNode } from '../../../proxy/local-info.ts';
import { setPeer, type PeerKey } from '../../common/istio/peer-state.ts';
import type { TcpMetadataExchangeConfig } from './config.ts';
import { FrameReader, ownFrame } from './frame.ts';

/** One connection's exchange, from this proxy's side: sends its frame once, reads the peer's. */
class Exchange {
  readonly #frame: Buffer;
  readonly #info: StreamInfo;
  readonly #key: PeerKey;
  readonly #matches: () => boolean;
  readonly #reader = new FrameReader();
  /** Does the connection's ALPN select the exchange? Looked at once, on the first bytes either way. */
  #alpn: boolean | undefined;
  #written = false;
  #read = false;

  constructor(frame: Buffer, info: StreamInfo, key: PeerKey, matches: () => boolean) {
    this.#frame = frame;
    this.#info = info;
    this.#key = key;
    this.#matches = matches;
  }

  #active(): boolean {
    return (this.#alpn ??= this.#matches());
  }

  /** Bytes this proxy sends to the peer: its frame goes first. */
  outgoing(data: Buffer): Buffer {
    if (this.#written || !this.#active()) return data;
    this.#written = true;
    return Buffer.concat([this.#frame, data]);
  }

  /** Bytes from the peer, its frame taken off; `sendFrame` writes this proxy's if it has not gone yet. */
  incoming(data: Buffer, endStream: boolean, sendFrame: (frame: Buffer) => void): Buffer {
    if (this.#read || !this.#active()) return data;
    if (!this.#written) {
      this.#written = true;
      sendFrame(this.#frame);
    }
    const r = this.#reader.push(data, endStream);
    if (r.kind === 'more') return Buffer.alloc(0);
    this.#read = true;
    if (r.kind === 'peer' && r.peer) setPeer(this.#info, this.#key, r.peer);
    return r.rest;
  }
}

export class TcpMetadataExchangeFactory implements NetworkFilterFactory<TcpMetadataExchangeConfig> {
  readonly config: TcpMetadataExchangeConfig;
  /** This proxy's frame, made once. */
  readonly frame: Buffer;

  constructor(config: TcpMetadataExchangeConfig, _rt: RuntimeContext) {
    this.config = config;
    this.frame = ownFrame(localNode());
  }

  create(_config: TcpMetadataExchangeConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return new TcpMetadataExchangeFilter(this, callbacks);
  }
}

/** The server side: the downstream connection's exchange. */
export class TcpMetadataExchangeFilter implements NetworkFilter {
  readonly #x: Exchange;
  readonly #socket: Socket;
  readonly #info: StreamInfo;

  constructor(factory: TcpMetadataExchangeFactory, callbacks: NetworkFilterCallbacks) {
    const info = callbacks.streamInfo;
    this.#x = new Exchange(factory.frame, info, 'downstream_peer', () => info.downstreamTls?.alpn === factory.config.protocol);
    this.#socket = callbacks.socket;
    this.#info = info;
  }

  onNewConnection(): NetworkFilterStatus {
    return NetworkFilterStatus.Continue;
  }

  onData(data: Buffer, endStream: boolean): Buffer {
    return this.#x.incoming(data, endStream, (frame) => {
      // Bytes sent count what goes on the wire (Envoy's downstream bytes meter), the frame too.
      this.#info.bytesSent += frame.length;
      this.#socket.write(frame);
    });
  }

  onWrite(data: Buffer): Buffer {
    return this.#x.outgoing(data);
  }
}

export class UpstreamMetadataExchangeFactory implements UpstreamNetworkFilterFactory {
  readonly config: TcpMetadataExchangeConfig;
  readonly frame: Buffer;

  constructor(config: TcpMetadataExchangeConfig) {
    this.config = config;
    this.frame = ownFrame(localNode());
  }

  create(upstream: Socket, info: StreamInfo): UpstreamNetworkFilter {
    const x = new Exchange(this.frame, info, 'upstream_peer', () => info.upstreamTls?.alpn === this.config.protocol);
    return {
      onUpstreamWrite: (data) => x.outgoing(data),
      onUpstreamData: (data, endStream) => x.incoming(data, endStream, (frame) => upstream.write(frame)),
    };
  }
}
