// IP addresses and CIDR ranges for filter-chain matching (IPv4 and IPv6 as bigints).
// Parsing never throws: a bad address is `undefined`, and the caller turns it into a config error.

import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  readonly family: 4 | 6;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly prefixLen: number;
  /** Address with host bits cleared. */
  readonly network: bigint;
  /** Canonical text, `10.0.0.0/8`, `2001:db8::/32` (used for duplicate detection). */
  readonly key: string;
}

function parseV4(s: string): bigint | undefined {
  if (!isIPv4(s)) return undefined;
  let v = 0n;
  for (const part of s.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!isIPv6(s)) return undefined;
  let text = s;
  const groups: number[] = [];
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two 16-bit groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(Number(v4 >> 16n) & 0xffff).toString(16)}:${(Number(v4) & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  for (const h of head) groups.push(parseInt(h, 16));
  for (let i = 0; i < missing; i++) groups.push(0);
  for (const h of rest) groups.push(parseInt(h, 16));
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/**
 * Parses an address as Node reports it (`127.0.0.1`, `::1`, `fe80::1%eth0`). An IPv4-mapped
 * IPv6 address (`::ffff:10.0.0.1`, from a dual-stack socket) is returned as IPv4, so IPv4
 * ranges match it.
 */
export function parseIp(text: string): IpAddress | undefined {
  const s = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === V4_MAPPED_PREFIX >> 32n) return { family: 4, value: v6 & 0xffffffffn };
  return { family: 6, value: v6 };
}

function bits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function formatIp(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join(':');
}

/** Builds a range; the address keeps only its network bits (Envoy accepts `10.1.2.3/8` as `10.0.0.0/8`). */
export function parseCidr(addressPrefix: string, prefixLen: number): Cidr | string {
  const s = addressPrefix.includes('%') ? addressPrefix.slice(0, addressPrefix.indexOf('%')) : addressPrefix;
  const v4 = parseV4(s);
  const family: 4 | 6 = v4 !== undefined ? 4 : 6;
  const value = v4 ?? parseV6(s);
  if (value === undefined) return `malformed IP address: ${addressPrefix}`;
  const width = bits(family);
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > width) {
    return `prefix_len ${prefixLen} is out of range for ${addressPrefix} (0..${width})`;
  }
  const shift = BigInt(width - prefixLen);
  const network = prefixLen === 0 ? 0n : (value >> shift) << shift;
  return { family, prefixLen, network, key: `${formatIp(family, network)}/${prefixLen}` };
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.family !== ip.family) return false;
  if (c.prefixLen === 0) return true;
  const shift = BigInt(bits(c.family) - c.prefixLen);
  return ip.value >> shift === c.network >> shift;
}

/** The longest prefix among `ranges` containing `ip`; -1 when none does. */
export function longestMatch(ranges: readonly Cidr[], ip: IpAddress | undefined): number {
  if (!ip) return -1;
  let best = -1;
  for (const r of ranges) if (r.prefixLen > best && cidrContains(r, ip)) best = r.prefixLen;
  return best;
}

export function isLoopback(ip: IpAddress): boolean {
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}
