// DNS for STRICT_DNS/LOGICAL_DNS clusters: node:dns lookup (getaddrinfo) filtered per dns_lookup_family.
// Rejects when the name does not resolve or leaves no address of the wanted family.

import { lookup } from 'node:dns/promises';
import type { DnsLookupFamily } from './types.ts';

/** Addresses for `name` per Envoy's dns_lookup_family (AUTO: IPv6 if any, else IPv4; V4_PREFERRED the reverse). */
export async function resolveAll(name: string, family: DnsLookupFamily): Promise<string[]> {
  const wanted = family === 'V4_ONLY' ? 4 : family === 'V6_ONLY' ? 6 : 0;
  const results = await lookup(name, { all: true, family: wanted, order: 'verbatim' });
  const v4 = results.filter((r) => r.family === 4).map((r) => r.address);
  const v6 = results.filter((r) => r.family === 6).map((r) => r.address);
  let out: string[];
  switch (family) {
    case 'V4_ONLY':
      out = v4;
      break;
    case 'V6_ONLY':
      out = v6;
      break;
    case 'AUTO':
      out = v6.length > 0 ? v6 : v4;
      break;
    case 'V4_PREFERRED':
      out = v4.length > 0 ? v4 : v6;
      break;
    case 'ALL':
      out = [...v4, ...v6];
      break;
  }
  if (out.length === 0) throw new Error(`${name}: no ${family} address`);
  return [...new Set(out)];
}
