// Incremental TLS ClientHello parsing from the bytes a client sent first (record layer, handshake
// possibly split across records and reads). Never throws: malformed input is 'not_tls'.

/** Envoy's TLS_MAX_CLIENT_HELLO: a larger ClientHello closes the connection. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024; // 64 KiB

export type ClientHelloResult =
  | { readonly kind: 'more' }
  | { readonly kind: 'not_tls' }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'tls'; readonly serverName: string | undefined; readonly alpn: readonly string[] };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const MAX_RECORD_PAYLOAD = (1 << 14) + 2048; // TLSCiphertext limit

const MORE = { kind: 'more' } as const;
const NOT_TLS = { kind: 'not_tls' } as const;
const TOO_LARGE = { kind: 'too_large' } as const;

/** Inspects what the client sent so far. */
export function parseClientHello(data: Buffer): ClientHelloResult {
  // Gather handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let handshakeBytes = 0;
  let off = 0;
  let needed = -1; // total handshake bytes wanted (4-byte header + body), once known
  while (needed < 0 || handshakeBytes < needed) {
    if (data.length - off < 1) return MORE;
    if (data[off] !== RECORD_HANDSHAKE) return NOT_TLS;
    if (data.length - off < 2) return MORE;
    if (data[off + 1] !== 3) return NOT_TLS;
    if (data.length - off < 5) return MORE;
    const recordLen = data.readUInt16BE(off + 3);
    if (recordLen === 0 || recordLen > MAX_RECORD_PAYLOAD) return NOT_TLS;
    const avail = Math.min(recordLen, data.length - off - 5);
    parts.push(data.subarray(off + 5, off + 5 + avail));
    handshakeBytes += avail;
    if (needed < 0 && handshakeBytes >= 4) {
      const head = Buffer.concat(parts, handshakeBytes);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) return TOO_LARGE;
    }
    if (avail < recordLen) {
      if (needed >= 0 && handshakeBytes >= needed) break;
      return MORE;
    }
    off += 5 + recordLen;
  }
  const hs = Buffer.concat(parts, handshakeBytes).subarray(4, needed);
  return parseBody(hs);
}

function parseBody(b: Buffer): ClientHelloResult {
  let p = 2 + 32; // client_version, random
  if (b.length < p + 1) return NOT_TLS;
  p += 1 + b[p]!; // session_id
  if (b.length < p + 2) return NOT_TLS;
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (b.length < p + 1) return NOT_TLS;
  p += 1 + b[p]!; // compression_methods
  if (p > b.length) return NOT_TLS;
  let serverName: string | undefined;
  const alpn: string[] = [];
  if (p === b.length) return { kind: 'tls', serverName, alpn }; // no extensions
  if (b.length < p + 2) return NOT_TLS;
  const extEnd = p + 2 + b.readUInt16BE(p);
  if (extEnd > b.length) return NOT_TLS;
  p += 2;
  while (p + 4 <= extEnd) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = b.subarray(p + 4, p + 4 + len);
    if (p + 4 + len > extEnd) return NOT_TLS;
    if (type === EXT_SERVER_NAME) serverName = parseSni(body);
    else if (type === EXT_ALPN && !parseAlpn(body, alpn)) return NOT_TLS;
    p += 4 + len;
  }
  return { kind: 'tls', serverName, alpn };
}

function parseSni(b: Buffer): string | undefined {
  if (b.length < 2) return undefined;
  const end = Math.min(b.length, 2 + b.readUInt16BE(0));
  let p = 2;
  while (p + 3 <= end) {
    const nameType = b[p]!;
    const len = b.readUInt16BE(p + 1);
    if (p + 3 + len > end) return undefined;
    if (nameType === 0) return b.toString('latin1', p + 3, p + 3 + len).toLowerCase();
    p += 3 + len;
  }
  return undefined;
}

function parseAlpn(b: Buffer, out: string[]): boolean {
  if (b.length < 2) return false;
  const end = 2 + b.readUInt16BE(0);
  if (end > b.length) return false;
  let p = 2;
  while (p < end) {
    const len = b[p]!;
    if (len === 0 || p + 1 + len > end) return false;
    out.push(b.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  return true;
}
