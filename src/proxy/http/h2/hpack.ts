// HPACK (RFC 7541) for legate's HTTP/2 server codec. The decoder reads every representation, keeps
// the dynamic table the client's encoder builds, and stops at the limits the session gives it. The
// encoder never indexes: it starts the connection's first header block with a table size update to
// 0 (and again after the client changes SETTINGS_HEADER_TABLE_SIZE), then sends static-table
// indexes and literals without indexing, raw (not Huffman-coded): no per-connection state to keep
// and nothing to evict; a response head costs a few bytes more on the wire.

import { huffmanDecode } from './hpack-huffman.ts';

/** RFC 7541 Appendix A: index 1 is STATIC[0]. */
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Each header name's first static index. */
const STATIC_NAME = new Map<string, number>();
STATIC.forEach(([n], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
});
/** `:status` values with a static index of their own. */
const STATUS_INDEX = new Map<string, number>([['200', 8], ['204', 9], ['206', 10], ['304', 11], ['400', 12], ['404', 13], ['500', 14]]);

/** RFC 7541 §4.1: an entry's size is its name's and value's octets plus 32. */
const ENTRY_OVERHEAD = 32;

/** Why a header block could not be decoded: a COMPRESSION_ERROR for the connection. */
export class HpackError extends Error {}

export interface DecodeLimits {
  /** Stop (and report `tooLarge`) once the decoded list passes this many octets (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE counting). */
  readonly maxListSize: number;
}

export interface DecodedBlock {
  /** [name, value, name, value, ...] in order (latin1 strings). */
  readonly raw: string[];
  /** The block decoded past `maxListSize`: `raw` is incomplete, the table is still in step. */
  readonly tooLarge: boolean;
}

export class HpackDecoder {
  /** Dynamic table, oldest first: index 62 is the last entry. */
  readonly #names: string[] = [];
  readonly #values: string[] = [];
  #size = 0;
  /** The table's current maximum (the client's last size update). */
  #max: number;
  /** SETTINGS_HEADER_TABLE_SIZE this side announced: no size update may exceed it. */
  readonly #limit: number;
  #pos = 0;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#max = limit;
  }

  /** Decodes one whole header block; throws HpackError on any coding error. */
  decode(block: Uint8Array, limits: DecodeLimits): DecodedBlock {
    const raw: string[] = [];
    let listSize = 0;
    let tooLarge = false;
    let first = true;
    this.#pos = 0;
    const end = block.length;
    while (this.#pos < end) {
      const b = block[this.#pos]!;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed header field.
        const idx = this.#int(block, 7);
        [name, value] = this.#entry(idx);
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only before the first field.
        if (!first) throw new HpackError('table size update after a header field');
        const size = this.#int(block, 5);
        if (size > this.#limit) throw new HpackError(`table size update ${size} above the limit ${this.#limit}`);
        this.#max = size;
        this.#evict(0);
        continue;
      } else {
        const indexing = (b & 0xc0) === 0x40;
        const idx = this.#int(block, indexing ? 6 : 4);
        name = idx === 0 ? this.#string(block) : this.#entry(idx)[0];
        value = this.#string(block);
        if (indexing) this.#insert(name, value);
      }
      first = false;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > limits.maxListSize) tooLarge = true;
      if (!tooLarge) raw.push(name, value);
    }
    return { raw, tooLarge };
  }

  #entry(idx: number): readonly [string, string] {
    if (idx === 0) throw new HpackError('index 0');
    if (idx <= STATIC.length) return STATIC[idx - 1]!;
    const d = this.#names.length - (idx - STATIC.length);
    if (d < 0) throw new HpackError(`index ${idx} past the dynamic table`);
    return [this.#names[d]!, this.#values[d]!];
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (size > this.#max) return;
    this.#names.push(name);
    this.#values.push(value);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    let n = 0;
    while (this.#size + room > this.#max && n < this.#names.length) {
      this.#size -= this.#names[n]!.length + this.#values[n]!.length + ENTRY_OVERHEAD;
      n++;
    }
    if (n > 0) {
      this.#names.splice(0, n);
      this.#values.splice(0, n);
    }
  }

  /** An integer with an N-bit prefix at #pos (RFC 7541 §5.1). */
  #int(block: Uint8Array, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let v = block[this.#pos++]! & mask;
    if (v < mask) return v;
    let m = 0;
    for (;;) {
      if (this.#pos >= block.length) throw new HpackError('truncated integer');
      const b = block[this.#pos++]!;
      v += (b & 0x7f) * 2 ** m;
      m += 7;
      if ((b & 0x80) === 0) break;
      if (m > 28) throw new HpackError('integer too large');
    }
    return v;
  }

  /** A string literal at #pos (RFC 7541 §5.2), as latin1. */
  #string(block: Uint8Array): string {
    if (this.#pos >= block.length) throw new HpackError('truncated string');
    const huffman = (block[this.#pos]! & 0x80) !== 0;
    const len = this.#int(block, 7);
    const start = this.#pos;
    const end = start + len;
    if (end > block.length) throw new HpackError('truncated string');
    this.#pos = end;
    if (!huffman) return Buffer.prototype.latin1Slice.call(block, start, end);
    const s = huffmanDecode(block, start, end);
    if (s === undefined) throw new HpackError('invalid Huffman coding');
    return s;
  }
}

/** Bytes an integer takes with an N-bit prefix. */
function intBytes(v: number, prefixBits: number): number {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) return 1;
  let n = 2;
  for (v -= mask; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

function writeInt(out: Buffer, pos: number, v: number, prefixBits: number, flags: number): number {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out[pos] = flags | v;
    return pos + 1;
  }
  out[pos++] = flags | mask;
  for (v -= mask; v >= 0x80; v = Math.floor(v / 0x80)) out[pos++] = (v % 0x80) | 0x80;
  out[pos] = v;
  return pos + 1;
}

export class HpackEncoder {
  #sizeUpdate = true;

  /** The client changed SETTINGS_HEADER_TABLE_SIZE: the next block says again that the table is empty. */
  tableSizeChanged(): void {
    this.#sizeUpdate = true;
  }

  /** One header block for [name, value, ...] (names lowercase; values latin1). */
  encode(raw: readonly string[]): Buffer {
    let size = this.#sizeUpdate ? 1 : 0;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      const v = raw[i + 1]!;
      size += 1 + (STATIC_NAME.has(n) ? 1 : intBytes(n.length, 7) + n.length) + intBytes(v.length, 7) + v.length + 1;
    }
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    if (this.#sizeUpdate) {
      out[pos++] = 0x20; // dynamic table size update: 0
      this.#sizeUpdate = false;
    }
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      const v = raw[i + 1]!;
      if (n === ':status') {
        const idx = STATUS_INDEX.get(v);
        if (idx !== undefined) {
          out[pos++] = 0x80 | idx;
          continue;
        }
      }
      // Literal header field without indexing (RFC 7541 §6.2.2).
      const nameIdx = STATIC_NAME.get(n);
      if (nameIdx !== undefined) pos = writeInt(out, pos, nameIdx, 4, 0);
      else {
        out[pos++] = 0;
        pos = writeInt(out, pos, n.length, 7, 0);
        pos += out.write(n, pos, 'latin1');
      }
      pos = writeInt(out, pos, v.length, 7, 0);
      pos += out.write(v, pos, 'latin1');
    }
    return pos === size ? out : out.subarray(0, pos);
  }
}
