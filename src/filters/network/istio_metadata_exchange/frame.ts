// Istio's TCP metadata exchange frame: a 4-byte magic 0x3D230467 and a 4-byte length (network byte
// order), then a google.protobuf.Any of a Struct holding the sender's metadata
// (`x-envoy-peer-metadata`) and node id (`x-envoy-peer-metadata-id`). Each side sends one first,
// once the connection's ALPN says both run the exchange.

import type { LocalNode } from '../../../proxy/local-info.ts';
import { decodeAny, decodeStruct, encodeAny, encodeStruct, type JsonStruct } from '../../common/istio/struct-codec.ts';
import { workloadFromStruct, workloadToStruct, type WorkloadMetadata } from '../../common/istio/workload.ts';

const MAGIC = 0x3d230467;
const HEADER_BYTES = 8;
/** The largest frame read (Istio's are a few hundred bytes); a larger one is not an exchange. */
const MAX_FRAME = 64 * 1024;
const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
const METADATA_KEY = 'x-envoy-peer-metadata';
const ID_KEY = 'x-envoy-peer-metadata-id';

/** This proxy's frame. */
export function ownFrame(node: LocalNode | undefined): Buffer {
  const data: JsonStruct = { [METADATA_KEY]: workloadToStruct(workloadFromStruct((node?.metadata ?? {}) as JsonStruct)) };
  if (node?.id) data[ID_KEY] = node.id;
  const any = encodeAny(STRUCT_TYPE_URL, encodeStruct(data));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(any.length, 4);
  return Buffer.concat([header, any]);
}

export type FrameRead =
  /** Not all of the frame yet: nothing to pass on. */
  | { readonly kind: 'more' }
  /** The frame read (its peer, when it decoded to one); `rest` follows it. */
  | { readonly kind: 'peer'; readonly peer: WorkloadMetadata | undefined; readonly rest: Buffer }
  /** Not a frame (wrong magic, too large, undecodable): everything passes on, untouched. */
  | { readonly kind: 'none'; readonly rest: Buffer };

/** Reads the peer's frame off the front of a byte stream, across chunks. */
export class FrameReader {
  #held: Buffer = Buffer.alloc(0);

  push(data: Buffer, endStream: boolean): FrameRead {
    const buf = this.#held.length > 0 ? Buffer.concat([this.#held, data]) : data;
    this.#held = Buffer.alloc(0);
    const none = { kind: 'none', rest: buf } as const;
    if (buf.length < HEADER_BYTES) return this.#more(buf, endStream);
    const size = buf.readUInt32BE(4);
    if (buf.readUInt32BE(0) !== MAGIC || size > MAX_FRAME) return none;
    if (buf.length < HEADER_BYTES + size) return this.#more(buf, endStream);
    let peer: WorkloadMetadata | undefined;
    try {
      const md = decodeStruct(decodeAny(buf.subarray(HEADER_BYTES, HEADER_BYTES + size)).value)[METADATA_KEY];
      if (md && typeof md === 'object' && !Array.isArray(md)) peer = workloadFromStruct(md);
    } catch {
      return none;
    }
    return { kind: 'peer', peer, rest: buf.subarray(HEADER_BYTES + size) };
  }

  #more(buf: Buffer, endStream: boolean): FrameRead {
    if (endStream) return { kind: 'none', rest: buf };
    this.#held = buf;
    return { kind: 'more' };
  }
}
