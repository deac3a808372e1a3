// google.protobuf.Struct in its binary wire form, to and from plain JSON values: the payload of
// Istio's `x-envoy-peer-metadata` header (base64 of a serialized Struct). Hand-written because it
// runs per request on workers, which never load protobufjs (config/protos.ts); the wire format is
// six Value fields and one map. Encoding is deterministic (map keys sorted, as protobuf's
// deterministic serialization writes them). Decoding throws StructDecodeError on malformed input.

export type JsonValue = null | number | string | boolean | JsonValue[] | { [key: string]: JsonValue };
export type JsonStruct = { [key: string]: JsonValue };

export class StructDecodeError extends Error {}

/** Nesting deeper than this is refused (a peer's header must not recurse the decoder without end). */
const MAX_DEPTH = 32;

// ---- encoding ----

class Writer {
  readonly #chunks: number[] = [];
  byte(b: number): void {
    this.#chunks.push(b);
  }
  varint(v: number): void {
    while (v > 0x7f) {
      this.#chunks.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.#chunks.push(v);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.#chunks.push(x);
  }
  done(): Buffer {
    return Buffer.from(this.#chunks);
  }
}

function encodeValue(v: JsonValue): Buffer {
  const w = new Writer();
  if (v === null) {
    w.tag(1, 0);
    w.varint(0);
  } else if (typeof v === 'number') {
    w.tag(2, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    for (const x of b) w.byte(x);
  } else if (typeof v === 'string') w.bytes(3, Buffer.from(v, 'utf8'));
  else if (typeof v === 'boolean') {
    w.tag(4, 0);
    w.varint(v ? 1 : 0);
  } else if (Array.isArray(v)) {
    const list = new Writer();
    for (const x of v) list.bytes(1, encodeValue(x));
    w.bytes(6, list.done());
  } else w.bytes(5, encodeStruct(v));
  return w.done();
}

/** Serializes a Struct: fields in key order, each a map entry {1: key, 2: Value}. */
export function encodeStruct(s: Readonly<JsonStruct>): Buffer {
  const w = new Writer();
  for (const key of Object.keys(s).sort()) {
    const entry = new Writer();
    entry.bytes(1, Buffer.from(key, 'utf8'));
    entry.bytes(2, encodeValue(s[key]!));
    w.bytes(1, entry.done());
  }
  return w.done();
}

// ---- decoding ----

class Reader {
  pos: number;
  readonly end: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }
  get more(): boolean {
    return this.pos < this.end;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new StructDecodeError('truncated varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new StructDecodeError('varint too long');
  }
  /** A length-delimited field's [start, end). */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new StructDecodeError('truncated field');
    this.pos += len;
    return [start, start + len];
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.span();
    else if (wire === 5) this.advance(4);
    else throw new StructDecodeError(`unsupported wire type ${wire}`);
  }
  advance(n: number): void {
    if (this.pos + n > this.end) throw new StructDecodeError('truncated field');
    this.pos += n;
  }
  sub([start, end]: [number, number]): Reader {
    return new Reader(this.buf, start, end);
  }
  text([start, end]: [number, number]): string {
    return this.buf.toString('utf8', start, end);
  }
}

function decodeValue(r: Reader, depth: number): JsonValue {
  if (depth > MAX_DEPTH) throw new StructDecodeError('nested too deep');
  let v: JsonValue = null;
  while (r.more) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 0) {
      r.varint();
      v = null;
    } else if (field === 2 && wire === 1) {
      r.advance(8);
      v = r.buf.readDoubleLE(r.pos - 8);
    } else if (field === 3 && wire === 2) v = r.text(r.span());
    else if (field === 4 && wire === 0) v = r.varint() !== 0;
    else if (field === 5 && wire === 2) v = decodeStructAt(r.sub(r.span()), depth + 1);
    else if (field === 6 && wire === 2) {
      const list = r.sub(r.span());
      const out: JsonValue[] = [];
      while (list.more) {
        const t = list.varint();
        if (t === (1 << 3) + 2) out.push(decodeValue(list.sub(list.span()), depth + 1));
        else list.skip(t & 7);
      }
      v = out;
    } else r.skip(wire);
  }
  return v;
}

function decodeStructAt(r: Reader, depth: number): JsonStruct {
  if (depth > MAX_DEPTH) throw new StructDecodeError('nested too deep');
  const out: JsonStruct = {};
  while (r.more) {
    const tag = r.varint();
    if (tag !== (1 << 3) + 2) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.sub(r.span());
    let key = '';
    let value: JsonValue = null;
    while (entry.more) {
      const t = entry.varint();
      if (t === (1 << 3) + 2) key = entry.text(entry.span());
      else if (t === (2 << 3) + 2) value = decodeValue(entry.sub(entry.span()), depth + 1);
      else entry.skip(t & 7);
    }
    // A map entry repeated on the wire: the last one wins, as protobuf parsers keep it.
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Parses a serialized Struct. Throws StructDecodeError when the bytes are not one. */
export function decodeStruct(buf: Buffer): JsonStruct {
  return decodeStructAt(new Reader(buf), 0);
}

/** A google.protobuf.Any: {1: type_url, 2: value}. */
export function encodeAny(typeUrl: string, value: Buffer): Buffer {
  const w = new Writer();
  w.bytes(1, Buffer.from(typeUrl, 'utf8'));
  w.bytes(2, value);
  return w.done();
}

/** Parses a google.protobuf.Any. Throws StructDecodeError when the bytes are not one. */
export function decodeAny(buf: Buffer): { typeUrl: string; value: Buffer } {
  const r = new Reader(buf);
  let typeUrl = '';
  let value: Buffer = Buffer.alloc(0);
  while (r.more) {
    const tag = r.varint();
    if (tag === (1 << 3) + 2) typeUrl = r.text(r.span());
    else if (tag === (2 << 3) + 2) {
      const [s, e] = r.span();
      value = buf.subarray(s, e);
    } else r.skip(tag & 7);
  }
  return { typeUrl, value };
}
