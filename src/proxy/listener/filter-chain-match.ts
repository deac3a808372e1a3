// Filter-chain selection for one listener, with Envoy's algorithm: criteria are applied in a fixed
// order and each narrows the candidates to the most specific match, or to the chains that leave
// the criterion empty; no backtracking. Bad or duplicate matchers are config errors (Result).

import type { FilterChain__Output } from '../../generated/envoy/config/listener/v3/FilterChain.ts';
import type { FilterChainMatch__Output } from '../../generated/envoy/config/listener/v3/FilterChainMatch.ts';
import type { CidrRange__Output } from '../../generated/envoy/config/core/v3/CidrRange.ts';
import { type ConfigError, type Result, joinPath, ok } from '../../config/result.ts';
import { type Cidr, type IpAddress, isLoopback, longestMatch, parseCidr, parseIp } from './filter-chain-match-cidr.ts';

/** What is known about a connection when its filter chain is chosen (after listener filters). */
export interface ConnectionMatchInput {
  readonly destinationPort: number;
  readonly destinationIp: string;
  /** SNI from tls_inspector; undefined when none. */
  readonly serverName: string | undefined;
  /** 'tls' (tls_inspector found a ClientHello) or 'raw_buffer'. */
  readonly transportProtocol: string;
  /** ALPN from tls_inspector, or `http/1.1`/`h2c`... from http_inspector. */
  readonly applicationProtocols: readonly string[];
  readonly sourceIp: string;
  readonly sourcePort: number;
  /** The directly connected peer when a listener filter (proxy_protocol) rewrote sourceIp. */
  readonly directSourceIp?: string;
  /** The destination is the connection's original one (original_dst), not the socket's own. */
  readonly localAddressRestored?: boolean;
}

export interface FilterChainMatcher {
  /** The chosen chain, the default chain when nothing matches, or undefined (close the connection). */
  match(c: ConnectionMatchInput): FilterChain__Output | undefined;
}

type SourceType = 'ANY' | 'SAME_IP_OR_LOOPBACK' | 'EXTERNAL';

interface CompiledChain {
  readonly chain: FilterChain__Output;
  readonly label: string;
  readonly destinationPort: number; // 0 = any
  readonly prefixRanges: readonly Cidr[];
  readonly exactNames: ReadonlySet<string>;
  /** Wildcards stored as their suffix with the leading dot (`*.example.com` -> `.example.com`). */
  readonly wildcardNames: readonly string[];
  readonly transportProtocol: string;
  readonly applicationProtocols: readonly string[];
  readonly directSourceRanges: readonly Cidr[];
  readonly sourceType: SourceType;
  readonly sourceRanges: readonly Cidr[];
  readonly sourcePorts: readonly number[];
}

/** Score of one chain for one criterion: undefined = excluded, -1 = criterion empty (fallback), >=0 = specific. */
type Score = number | undefined;

const EXACT_NAME_SCORE = 1 << 20; // beats any wildcard suffix length

interface Connection {
  readonly port: number;
  readonly dest: IpAddress | undefined;
  readonly sni: string;
  readonly transport: string;
  readonly alpn: readonly string[];
  readonly directSource: IpAddress | undefined;
  readonly local: boolean;
  readonly source: IpAddress | undefined;
  readonly sourcePort: number;
}

/** The criteria in Envoy's order. */
const CRITERIA: readonly ((ch: CompiledChain, c: Connection) => Score)[] = [
  (ch, c) => (ch.destinationPort === 0 ? -1 : ch.destinationPort === c.port ? 1 : undefined),
  (ch, c) => rangeScore(ch.prefixRanges, c.dest),
  (ch, c) => serverNameScore(ch, c.sni),
  (ch, c) => (ch.transportProtocol === '' ? -1 : ch.transportProtocol === c.transport ? 1 : undefined),
  (ch, c) => alpnScore(ch.applicationProtocols, c.alpn),
  (ch, c) => rangeScore(ch.directSourceRanges, c.directSource),
  (ch, c) => (ch.sourceType === 'ANY' ? -1 : (ch.sourceType === 'SAME_IP_OR_LOOPBACK') === c.local ? 1 : undefined),
  (ch, c) => rangeScore(ch.sourceRanges, c.source),
  (ch, c) => (ch.sourcePorts.length === 0 ? -1 : ch.sourcePorts.includes(c.sourcePort) ? 1 : undefined),
];

function rangeScore(ranges: readonly Cidr[], ip: IpAddress | undefined): Score {
  if (ranges.length === 0) return -1;
  const best = longestMatch(ranges, ip);
  return best < 0 ? undefined : best;
}

function serverNameScore(ch: CompiledChain, sni: string): Score {
  if (ch.exactNames.size === 0 && ch.wildcardNames.length === 0) return -1;
  if (sni === '') return undefined;
  if (ch.exactNames.has(sni)) return EXACT_NAME_SCORE;
  let best: Score;
  for (const w of ch.wildcardNames) {
    // `.example.com` matches `www.example.com` and `a.b.example.com`, never `example.com`.
    if (sni.length > w.length && sni.endsWith(w) && (best === undefined || w.length > best)) best = w.length;
  }
  return best;
}

function alpnScore(chainProtocols: readonly string[], offered: readonly string[]): Score {
  if (chainProtocols.length === 0) return -1;
  // Envoy walks the client's list in order and takes the first protocol any chain names.
  for (let i = 0; i < offered.length; i++) if (chainProtocols.includes(offered[i]!)) return offered.length - i;
  return undefined;
}

/** A chain with an empty filter_chain_match: every criterion leaves it in. */
function matchesAll(ch: CompiledChain): boolean {
  return ch.destinationPort === 0 && !usesAddresses(ch) && ch.exactNames.size === 0 && ch.wildcardNames.length === 0 &&
    ch.transportProtocol === '' && ch.applicationProtocols.length === 0 && ch.sourcePorts.length === 0;
}

/** Whether a chain's criteria read the connection's IP addresses. */
function usesAddresses(ch: CompiledChain): boolean {
  return ch.prefixRanges.length > 0 || ch.directSourceRanges.length > 0 || ch.sourceType !== 'ANY' || ch.sourceRanges.length > 0;
}

class CompiledMatcher implements FilterChainMatcher {
  readonly #chains: readonly CompiledChain[];
  readonly #default: FilterChain__Output | undefined;
  /** The one chain, when it matches every connection (the common listener): no per-connection work. */
  readonly #only: FilterChain__Output | undefined;
  /** Whether any chain matches on addresses: if not, they are not parsed per connection. */
  readonly #usesAddresses: boolean;

  constructor(chains: readonly CompiledChain[], defaultChain: FilterChain__Output | undefined) {
    this.#chains = chains;
    this.#default = defaultChain;
    this.#only = chains.length === 1 && matchesAll(chains[0]!) ? chains[0]!.chain : undefined;
    this.#usesAddresses = chains.some(usesAddresses);
  }

  match(c: ConnectionMatchInput): FilterChain__Output | undefined {
    if (this.#only) return this.#only;
    const addresses = this.#usesAddresses;
    const source = addresses ? parseIp(c.sourceIp) : undefined;
    const dest = addresses ? parseIp(c.destinationIp) : undefined;
    const conn: Connection = {
      port: c.destinationPort,
      dest,
      sni: (c.serverName ?? '').toLowerCase(),
      transport: c.transportProtocol,
      alpn: c.applicationProtocols,
      directSource: c.directSourceIp === undefined || !addresses ? source : parseIp(c.directSourceIp),
      local: source !== undefined && (isLoopback(source) || (dest !== undefined && source.family === dest.family && source.value === dest.value)),
      source,
      sourcePort: c.sourcePort,
    };
    let candidates = this.#chains;
    for (const criterion of CRITERIA) {
      let best = -Infinity;
      let next: CompiledChain[] = [];
      for (const ch of candidates) {
        const s = criterion(ch, conn);
        if (s === undefined || s < best) continue;
        if (s > best) {
          best = s;
          next = [];
        }
        next.push(ch);
      }
      if (next.length === 0) return this.#default;
      candidates = next;
    }
    return candidates[0]?.chain ?? this.#default;
  }
}

function compileRanges(ranges: readonly CidrRange__Output[], path: string, errors: ConfigError[]): Cidr[] {
  const out: Cidr[] = [];
  ranges.forEach((r, i) => {
    // An absent prefix_len is 0, as in Envoy (the range then matches its whole address family).
    const c = parseCidr(r.address_prefix, r.prefix_len?.value ?? 0);
    if (typeof c === 'string') errors.push({ path: joinPath(path, `[${i}].address_prefix`), reason: c });
    else out.push(c);
  });
  return out;
}

function compileChain(chain: FilterChain__Output, index: number, path: string, errors: ConfigError[]): CompiledChain {
  const m: FilterChainMatch__Output | null = chain.filter_chain_match;
  const mp = joinPath(path, 'filter_chain_match');
  const label = chain.name || `#${index}`;
  if (!m) {
    return {
      chain, label, destinationPort: 0, prefixRanges: [], exactNames: new Set(), wildcardNames: [], transportProtocol: '',
      applicationProtocols: [], directSourceRanges: [], sourceType: 'ANY', sourceRanges: [], sourcePorts: [],
    };
  }
  if (m.address_suffix !== '' || m.suffix_len !== null) {
    errors.push({ path: mp, reason: 'contains filter chains with unimplemented fields (address_suffix, suffix_len)' });
  }
  const port = m.destination_port?.value ?? 0;
  if (m.destination_port !== null && (port < 1 || port > 65535)) {
    errors.push({ path: joinPath(mp, 'destination_port'), reason: 'value must be inside range [1, 65535]' });
  }
  const exactNames = new Set<string>();
  const wildcardNames: string[] = [];
  m.server_names.forEach((raw, i) => {
    const name = raw.toLowerCase();
    if (name.startsWith('*.') && name.length > 2 && !name.slice(1).includes('*')) wildcardNames.push(name.slice(1));
    else if (name.includes('*')) errors.push({ path: joinPath(mp, `server_names[${i}]`), reason: `partial wildcards are not supported in "server_names": ${raw}` });
    else if (name === '') errors.push({ path: joinPath(mp, `server_names[${i}]`), reason: 'server name must not be empty' });
    else exactNames.add(name);
  });
  m.source_ports.forEach((p, i) => {
    if (p < 1 || p > 65535) errors.push({ path: joinPath(mp, `source_ports[${i}]`), reason: 'value must be inside range [1, 65535]' });
  });
  return {
    chain,
    label,
    destinationPort: port,
    prefixRanges: compileRanges(m.prefix_ranges, joinPath(mp, 'prefix_ranges'), errors),
    exactNames,
    wildcardNames,
    transportProtocol: m.transport_protocol,
    applicationProtocols: [...m.application_protocols],
    directSourceRanges: compileRanges(m.direct_source_prefix_ranges, joinPath(mp, 'direct_source_prefix_ranges'), errors),
    sourceType: m.source_type,
    sourceRanges: compileRanges(m.source_prefix_ranges, joinPath(mp, 'source_prefix_ranges'), errors),
    sourcePorts: [...m.source_ports],
  };
}

/** Every leaf of a chain's match tree, as Envoy builds it: one key per combination of values. */
function leafKeys(ch: CompiledChain): string[] {
  const orEmpty = (xs: readonly string[]): readonly string[] => (xs.length === 0 ? [''] : xs);
  const dims: (readonly string[])[] = [
    [String(ch.destinationPort)],
    orEmpty(ch.prefixRanges.map((r) => r.key)),
    orEmpty([...ch.exactNames, ...ch.wildcardNames.map((w) => `*${w}`)]),
    [ch.transportProtocol],
    orEmpty(ch.applicationProtocols),
    orEmpty(ch.directSourceRanges.map((r) => r.key)),
    [ch.sourceType],
    orEmpty(ch.sourceRanges.map((r) => r.key)),
    orEmpty(ch.sourcePorts.map(String)),
  ];
  let keys = [''];
  for (const d of dims) {
    const next: string[] = [];
    for (const k of keys) for (const v of new Set(d)) next.push(`${k}|${v}`);
    keys = next;
  }
  return keys;
}

function sameRules(a: CompiledChain, b: CompiledChain): boolean {
  const ka = new Set(leafKeys(a));
  const kb = leafKeys(b);
  return kb.length === ka.size && kb.every((k) => ka.has(k));
}

/**
 * Compiles a listener's filter chains. `path` is the listener's field path (`static_resources.listeners[0]`);
 * errors name `filter_chains[i].filter_chain_match....`.
 */
export function compileFilterChainMatcher(
  chains: readonly FilterChain__Output[],
  defaultChain: FilterChain__Output | null,
  path: string,
): Result<FilterChainMatcher> {
  const errors: ConfigError[] = [];
  const compiled = chains.map((ch, i) => compileChain(ch, i, joinPath(path, `filter_chains[${i}]`), errors));
  if (errors.length > 0) return { ok: false, errors };

  const owner = new Map<string, number>();
  compiled.forEach((ch, i) => {
    for (const key of leafKeys(ch)) {
      const prev = owner.get(key);
      if (prev === undefined) {
        owner.set(key, i);
        continue;
      }
      const first = compiled[prev]!;
      const reason = sameRules(first, ch)
        ? `multiple filter chains with the same matching rules are defined: '${ch.label}' has the same matching rules as '${first.label}'`
        : `multiple filter chains with overlapping matching rules are defined: '${ch.label}' overlaps '${first.label}'`;
      errors.push({ path: joinPath(path, `filter_chains[${i}].filter_chain_match`), reason });
      break;
    }
  });
  if (errors.length > 0) return { ok: false, errors };
  return ok(new CompiledMatcher(compiled, defaultChain ?? undefined));
}
