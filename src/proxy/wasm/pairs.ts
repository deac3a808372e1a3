// Proxy-Wasm's serialisation of header maps and gRPC metadata (spec "Serialization"): a
// little-endian u32 count, then a (key length, value length) u32 pair per entry, then each key and
// value followed by a NUL byte. An empty map may be zero bytes or a single 0x00.

export type Pairs = Array<readonly [string, string]>;

export function serializePairs(pairs: Pairs): Uint8Array {
  const encoded = pairs.map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  let size = 4 + encoded.length * 8;
  for (const [k, v] of encoded) size += k.length + v.length + 2;
  const out = Buffer.alloc(size);
  out.writeUInt32LE(encoded.length, 0);
  let lens = 4;
  let data = 4 + encoded.length * 8;
  for (const [k, v] of encoded) {
    out.writeUInt32LE(k.length, lens);
    out.writeUInt32LE(v.length, lens + 4);
    lens += 8;
    k.copy(out, data);
    data += k.length + 1;
    v.copy(out, data);
    data += v.length + 1;
  }
  return out;
}

/** Parses a serialised map; undefined when the bytes are not a well-formed map. */
export function deserializePairs(bytes: Uint8Array): Pairs | undefined {
  if (bytes.length === 0 || (bytes.length === 1 && bytes[0] === 0)) return [];
  if (bytes.length < 4) return undefined;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = b.readUInt32LE(0);
  if (n > (b.length - 4) / 8) return undefined;
  const out: Pairs = [];
  let lens = 4;
  let data = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32LE(lens);
    const vl = b.readUInt32LE(lens + 4);
    lens += 8;
    if (data + kl + vl + 2 > b.length) return undefined;
    const k = b.toString('utf8', data, data + kl);
    data += kl + 1;
    const v = b.toString('utf8', data, data + vl);
    data += vl + 1;
    out.push([k, v]);
  }
  return out;
}
