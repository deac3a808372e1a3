// RouteAction.hash_policy compiled into one function giving the 64-bit xxHash64 Envoy feeds
// RING_HASH/MAGLEV. Invalid policies (bad regex, empty names) are Result errors; unknown sources hash nothing.

import { fail, ok, joinPath, type Result } from '../../config/result.ts';
import { xxHash64 } from '../upstream/hash.ts';
import type { HeaderMap } from './headers.ts';
import type { StreamInfo } from './stream-info.ts';
import { compileRegexSubstitution, parseQueryFirst, type RegexSubstitution } from './matchers.ts';
import type { _envoy_config_route_v3_RouteAction_HashPolicy__Output as HashPolicy } from '../../generated/envoy/config/route/v3/RouteAction.ts';

const M64 = (1n << 64n) - 1n;

type HashMethod = (headers: HeaderMap, info: StreamInfo) => bigint | undefined;

export type RouteHash = (headers: HeaderMap, info: StreamInfo) => bigint | undefined;

/** Reads one cookie's value from every `cookie` header (first occurrence wins). */
export function cookieValue(headers: HeaderMap, name: string): string | undefined {
  for (const line of headers.getAll('cookie')) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      if (part.slice(0, eq).trim() !== name) continue;
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

function headerMethod(name: string, rewrite: RegexSubstitution | undefined): HashMethod {
  return (headers) => {
    const values = headers.getAll(name);
    if (values.length === 0) return undefined;
    const vs = rewrite ? values.map((v) => rewrite.replaceAll(v)) : values;
    if (vs.length === 1) return xxHash64(vs[0]!);
    // Same hash whatever the order of repeated values; Envoy chains the seed through the sorted values.
    vs.sort();
    let h = 0n;
    for (const v of vs) h = xxHash64(v, h);
    return h;
  };
}

function compileMethod(p: HashPolicy, path: string): Result<HashMethod | undefined> {
  switch (p.policy_specifier) {
    case 'header': {
      const h = p.header;
      if (!h || !h.header_name) return fail(joinPath(path, 'header.header_name'), 'value length must be at least 1 characters');
      let rewrite: RegexSubstitution | undefined;
      if (h.regex_rewrite) {
        const r = compileRegexSubstitution(h.regex_rewrite, joinPath(path, 'header.regex_rewrite'));
        if (!r.ok) return r;
        rewrite = r.value;
      }
      return ok(headerMethod(h.header_name.toLowerCase(), rewrite));
    }
    case 'cookie': {
      const name = p.cookie?.name ?? '';
      if (!name) return fail(joinPath(path, 'cookie.name'), 'value length must be at least 1 characters');
      // Generating a cookie when absent (ttl set) needs the response path; without it nothing is hashed.
      return ok((headers) => {
        const v = cookieValue(headers, name);
        return v === undefined ? undefined : xxHash64(v);
      });
    }
    case 'connection_properties':
      if (!p.connection_properties?.source_ip) return ok(undefined);
      return ok((_h, info) => (info.downstreamRemote.address ? xxHash64(info.downstreamRemote.address) : undefined));
    case 'query_parameter': {
      const name = p.query_parameter?.name ?? '';
      if (!name) return fail(joinPath(path, 'query_parameter.name'), 'value length must be at least 1 characters');
      return ok((headers) => {
        const v = parseQueryFirst(headers.get(':path') ?? '').get(name);
        return v === undefined ? undefined : xxHash64(v);
      });
    }
    case 'filter_state':
      // No filter state objects in legate yet: this policy never yields a hash.
      return ok(undefined);
    default:
      return fail(joinPath(path, 'policy_specifier'), 'value is required');
  }
}

/** Envoy's HashPolicyImpl::generateHash: rotate-left-by-one and xor each new hash; stop at a terminal policy once hashed. */
export function compileHashPolicy(list: readonly HashPolicy[], path: string): Result<RouteHash | undefined> {
  if (list.length === 0) return ok(undefined);
  const methods: { fn: HashMethod | undefined; terminal: boolean }[] = [];
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!;
    const m = compileMethod(p, `${path}[${i}]`);
    if (!m.ok) return m;
    methods.push({ fn: m.value, terminal: p.terminal });
  }
  return ok((headers, info) => {
    let hash: bigint | undefined;
    for (const m of methods) {
      const h = m.fn ? m.fn(headers, info) : undefined;
      if (h !== undefined) {
        const old = hash === undefined ? 0n : ((hash << 1n) | (hash >> 63n)) & M64;
        hash = old ^ h;
      }
      if (m.terminal && hash !== undefined) break;
    }
    return hash;
  });
}
