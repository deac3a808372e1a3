// Istio's TCP metadata exchange, the server side (`istio.metadata_exchange` in an inbound chain,
// before tcp_proxy): when the connection's negotiated ALPN is the configured protocol
// (`istio-peer-exchange`), each side sends one frame first: a 4-byte magic 0x3D230467 and a 4-byte
// length (network byte order), then a google.protobuf.Any of a Struct holding the sender's metadata
// (`x-envoy-peer-metadata`) and node id (`x-envoy-peer-metadata-id`). Legate reads the client's
// frame off the stream (the peer goes to filter state `downstream_peer`, which istio.stats reads),
// writes its own before any other byte it sends, and passes the rest on. Another ALPN, a wrong
// magic or a frame that does not decode: the bytes pass on untouched and there is no peer, as in Istio.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import { localNode } from '../../../proxy/local-info.ts';
import { decodeAny, decodeStruct, encodeAny, encodeStruct, type JsonStruct } from '../../common/istio/struct-codec.ts';
import { workloadFromStruct, workloadToStruct } from '../../common/istio/workload.ts';
import { setPeer } from '../../common/istio/peer-state.ts';
import type { TcpMetadataExchangeConfig } from './config.ts';

const MAGIC = 0x3d230467;
const HEADER_BYTES = 8;
/** The largest frame read (Istio's are a few hundred bytes); a larger one is not an exchange. */
const MAX_FRAME = 64 * 1024;
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
const METADATA_KEY = 'x-envoy-peer-metadata';
const ID_KEY = 'x-envoy-peer-metadata-id';

export class TcpMetadataExchangeFactory implements NetworkFilterFactory<TcpMetadataExchangeConfig> {
  readonly config: TcpMetadataExchangeConfig;
  readonly rt: RuntimeContext;
  /** This proxy's frame (header and Any), made once. */
  readonly frame: Buffer;

  constructor(config: TcpMetadataExchangeConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
    const node = localNode();
    const data: JsonStruct = { [METADATA_KEY]: workloadToStruct(workloadFromStruct((node?.metadata ?? {}) as JsonStruct)) };
    if (node?.id) data[ID_KEY] = node.id;
    const any = encodeAny(STRUCT_TYPE_URL, encodeStruct(data));
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(MAGIC, 0);
    header.writeUInt32BE(any.length, 4);
    this.frame = Buffer.concat([header, any]);
  }

  create(_config: TcpMetadataExchangeConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return new TcpMetadataExchangeFilter(this, callbacks);
  }
}

type State = 'unknown' | 'reading' | 'done';

export class TcpMetadataExchangeFilter implements NetworkFilter {
  readonly #f: TcpMetadataExchangeFactory;
  readonly #cb: NetworkFilterCallbacks;
  #state: State = 'unknown';
  #written = false;
  #held: Buffer = Buffer.alloc(0);

  constructor(factory: TcpMetadataExchangeFactory, callbacks: NetworkFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onNewConnection(): NetworkFilterStatus {
    return NetworkFilterStatus.Continue;
  }

  #exchanging(): boolean {
    if (this.#state === 'unknown') this.#state = this.#cb.streamInfo.downstreamTls?.alpn === this.#f.config.protocol ? 'reading' : 'done';
    return this.#state === 'reading';
  }

  onData(data: Buffer, endStream: boolean): Buffer {
    if (!this.#exchanging()) return data;
    if (!this.#written) {
      this.#written = true;
      this.#cb.socket.write(this.#f.frame);
    }
    const buf = this.#held.length > 0 ? Buffer.concat([this.#held, data]) : data;
    if (buf.length < HEADER_BYTES) return this.#hold(buf, endStream);
    const size = buf.readUInt32BE(4);
    if (buf.readUInt32BE(0) !== MAGIC || size > MAX_FRAME) return this.#passOn(buf);
    if (buf.length < HEADER_BYTES + size) return this.#hold(buf, endStream);
    try {
      const any = decodeAny(buf.subarray(HEADER_BYTES, HEADER_BYTES + size));
      const peer = decodeStruct(any.value)[METADATA_KEY];
      if (peer && typeof peer === 'object' && !Array.isArray(peer)) setPeer(this.#cb.streamInfo, 'downstream_peer', workloadFromStruct(peer));
    } catch {
      return this.#passOn(buf);
    }
    return this.#passOn(buf.subarray(HEADER_BYTES + size));
  }

  onWrite(data: Buffer): Buffer {
    // The upstream spoke first: this proxy's frame still goes before anything else.
    if (!this.#written && this.#exchanging()) {
      this.#written = true;
      return Buffer.concat([this.#f.frame, data]);
    }
    return data;
  }

  #hold(buf: Buffer, endStream: boolean): Buffer {
    if (endStream) return this.#passOn(buf);
    this.#held = buf;
    return Buffer.alloc(0);
  }

  #passOn(buf: Buffer): Buffer {
    this.#state = 'done';
    this.#held = Buffer.alloc(0);
    return buf;
  }
}
