// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), parsed from the
// first bytes of a connection. Pure and incremental: 'more' until the bytes so far decide it.

import { isIP } from 'node:net';

/** Version 2's 12-byte signature. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** A version 1 line is at most 107 bytes, CRLF included. */
export const V1_MAX_BYTES = 107;
const V2_FIXED = 16;

export interface ProxyAddresses {
  readonly sourceIp: string;
  readonly sourcePort: number;
  readonly destinationIp: string;
  readonly destinationPort: number;
}

export interface Tlv {
  readonly type: number;
  readonly value: Buffer;
}

export type ProxyHeaderResult =
  | { readonly kind: 'more' }
  /** Neither signature: the connection has no PROXY header. */
  | { readonly kind: 'not_found' }
  | { readonly kind: 'error'; readonly version: 1 | 2; readonly reason: string }
  /**
   * A header of `length` bytes. `addresses` undefined: the sender's own connection (v2 LOCAL, v1
   * UNKNOWN, or an address family other than TCP over IPv4/IPv6), whose addresses are kept.
   */
  | { readonly kind: 'header'; readonly version: 1 | 2; readonly length: number; readonly addresses: ProxyAddresses | undefined; readonly tlvs: readonly Tlv[] };

function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

export function parseProxyHeader(data: Buffer): ProxyHeaderResult {
  if (startsLike(data, V2_SIGNATURE)) return data.length < V2_SIGNATURE.length ? { kind: 'more' } : parseV2(data);
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? { kind: 'more' } : parseV1(data);
  return { kind: 'not_found' };
}

function port(text: string): number | undefined {
  // Decimal without leading zeros (0 itself excepted), as the spec writes them.
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV1(data: Buffer): ProxyHeaderResult {
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    return data.length >= V1_MAX_BYTES ? { kind: 'error', version: 1, reason: 'no CRLF within 107 bytes' } : { kind: 'more' };
  }
  const length = end + 2;
  if (length > V1_MAX_BYTES) return { kind: 'error', version: 1, reason: 'header longer than 107 bytes' };
  const fields = data.toString('latin1', 0, end).split(' ');
  const proto = fields[1];
  if (proto === 'UNKNOWN') return { kind: 'header', version: 1, length, addresses: undefined, tlvs: [] };
  if ((proto !== 'TCP4' && proto !== 'TCP6') || fields.length !== 6) return { kind: 'error', version: 1, reason: `malformed header "${data.toString('latin1', 0, end)}"` };
  const family = proto === 'TCP4' ? 4 : 6;
  const [, , src, dst, sp, dp] = fields as [string, string, string, string, string, string];
  const sourcePort = port(sp);
  const destinationPort = port(dp);
  if (isIP(src) !== family || isIP(dst) !== family || sourcePort === undefined || destinationPort === undefined) {
    return { kind: 'error', version: 1, reason: `malformed ${proto} addresses "${fields.slice(2).join(' ')}"` };
  }
  return { kind: 'header', version: 1, length, addresses: { sourceIp: src, sourcePort, destinationIp: dst, destinationPort }, tlvs: [] };
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Node prints the canonical form once parsed back (zero runs compressed).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function parseV2(data: Buffer): ProxyHeaderResult {
  if (data.length < V2_FIXED) return { kind: 'more' };
  const verCmd = data[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'error', version: 2, reason: `unsupported version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: 'error', version: 2, reason: `unsupported command ${command}` };
  const famProto = data[13]!;
  const length = V2_FIXED + data.readUInt16BE(14);
  if (data.length < length) return { kind: 'more' };
  const body = data.subarray(V2_FIXED, length);
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  // LOCAL: the proxy's own connection (a health check, say); the address block is skipped.
  if (command === 0) return { kind: 'header', version: 2, length, addresses: undefined, tlvs: [] };
  let addresses: ProxyAddresses | undefined;
  let tlvStart = 0;
  if (family === 1 || family === 2) {
    const size = family === 1 ? 12 : 36;
    if (body.length < size) return { kind: 'error', version: 2, reason: `address block of ${body.length} bytes is shorter than ${size}` };
    if (transport !== 1 && transport !== 2) return { kind: 'error', version: 2, reason: `unsupported transport protocol ${transport}` };
    // Only STREAM (TCP) carries addresses Envoy uses; DGRAM is an error there too.
    if (transport === 2) return { kind: 'error', version: 2, reason: 'UDP (DGRAM) is not supported' };
    const a = family === 1 ? 4 : 16;
    const ip = (off: number): string => (family === 1 ? [...body.subarray(off, off + 4)].join('.') : ipv6(body.subarray(off, off + 16)));
    addresses = { sourceIp: ip(0), destinationIp: ip(a), sourcePort: body.readUInt16BE(2 * a), destinationPort: body.readUInt16BE(2 * a + 2) };
    tlvStart = size;
  } else if (family === 0) {
    tlvStart = body.length; // UNSPEC: nothing usable, no TLVs either
  } else {
    return { kind: 'error', version: 2, reason: family === 3 ? 'AF_UNIX addresses are not supported' : `unknown address family ${family}` };
  }
  const tlvs: Tlv[] = [];
  for (let i = tlvStart; i < body.length; ) {
    if (i + 3 > body.length) return { kind: 'error', version: 2, reason: 'truncated TLV' };
    const type = body[i]!;
    const len = body.readUInt16BE(i + 1);
    if (i + 3 + len > body.length) return { kind: 'error', version: 2, reason: `TLV 0x${type.toString(16)} runs past the header` };
    tlvs.push({ type, value: body.subarray(i + 3, i + 3 + len) });
    i += 3 + len;
  }
  return { kind: 'header', version: 2, length, addresses, tlvs };
}
