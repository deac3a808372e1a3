// Which transport socket a host's connections use (Envoy's TransportSocketMatcher): the first
// transport_socket_matches entry whose `match` the endpoint's `envoy.transport_socket_match` metadata
// contains, else the first the locality's contains, else the cluster's transport_socket (`default`).
// One ClientTransportSocket per entry per worker, built up front, so every pool of the cluster shares
// its TLS session cache. Counts `cluster.<name>.<entry>.total_match_count` once per host created, on
// worker 0 only (Envoy resolves hosts once, on the main thread). Never throws after construction.

import { createClientTransportSocket } from '../tls/transport-sockets.ts';
import type { ClientTransportSocket, TransportSocketContext } from '../tls/types.ts';
import type { UpstreamTlsConfig } from '../tls/context-config.ts';
import type { Counter } from '../stats.ts';
import type { ClusterConfig, EndpointMetadata } from './types.ts';

export const TRANSPORT_SOCKET_MATCH_FILTER = 'envoy.transport_socket_match';

/** Deep equality of two JSON values (Envoy's ValueUtil::equal on google.protobuf.Value). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, unknown>;
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => k in bo && jsonEqual((a as Record<string, unknown>)[k], bo[k]));
}

/** Envoy's metadataLabelMatch: every key of `match` is in the metadata's socket-match struct, equal. */
export function labelsMatch(match: Readonly<Record<string, unknown>>, metadata: EndpointMetadata | undefined): boolean {
  const keys = Object.keys(match);
  const fields = metadata?.[TRANSPORT_SOCKET_MATCH_FILTER];
  if (fields === undefined) return keys.length === 0;
  return keys.every((k) => Object.hasOwn(fields, k) && jsonEqual(fields[k], match[k]));
}

interface Entry {
  readonly name: string;
  readonly match: Readonly<Record<string, unknown>>;
  readonly socket: ClientTransportSocket | undefined;
  readonly matched: Counter;
}

export class TransportSocketMatcher {
  readonly #entries: readonly Entry[];
  readonly #default: Entry;
  readonly #count: boolean;
  readonly #sockets: Array<ClientTransportSocket & { close(): void }> = [];

  /** `countMatches`: bump total_match_count (worker 0 only, so the merged counter counts each host once). */
  constructor(config: ClusterConfig, ctx: TransportSocketContext, countMatches: boolean) {
    const opts = { autoSni: config.upstreamHttpProtocolOptions?.autoSni ?? false, autoSanValidation: config.upstreamHttpProtocolOptions?.autoSanValidation ?? false };
    // One socket factory per distinct context (a context listed twice shares its session cache).
    const built = new Map<UpstreamTlsConfig, ClientTransportSocket>();
    const socketFor = (tls: UpstreamTlsConfig | undefined): ClientTransportSocket | undefined => {
      if (tls === undefined) return undefined;
      let s = built.get(tls);
      if (!s) {
        const made = createClientTransportSocket(tls, ctx, opts);
        this.#sockets.push(made);
        built.set(tls, (s = made));
      }
      return s;
    };
    const p = config.statPrefix;
    this.#default = { name: 'default', match: {}, socket: socketFor(config.transportSocket), matched: ctx.stats.counter(`${p}default.total_match_count`) };
    this.#entries = (config.transportSocketMatches ?? []).map((m) => ({ name: m.name, match: m.match, socket: socketFor(m.tls), matched: ctx.stats.counter(`${p}${m.name}.total_match_count`) }));
    this.#count = countMatches;
  }

  /** The transport socket for a host with this endpoint and locality metadata; undefined = plaintext. */
  resolve(endpoint: EndpointMetadata | undefined, locality: EndpointMetadata | undefined): ClientTransportSocket | undefined {
    const e = this.#entries.find((m) => labelsMatch(m.match, endpoint)) ?? this.#entries.find((m) => labelsMatch(m.match, locality)) ?? this.#default;
    if (this.#count) e.matched.inc();
    return e.socket;
  }

  /**
   * The transport socket for these labels as if they were an endpoint's socket-match metadata (a
   * health check's transport_socket_match_criteria); not counted in total_match_count.
   */
  forLabels(labels: Readonly<Record<string, unknown>>): ClientTransportSocket | undefined {
    const metadata = { [TRANSPORT_SOCKET_MATCH_FILTER]: labels };
    return (this.#entries.find((m) => labelsMatch(m.match, metadata)) ?? this.#default).socket;
  }

  /** Stops the transport sockets watching their secrets (the cluster went away). */
  close(): void {
    for (const s of this.#sockets.splice(0)) s.close();
  }

  /** Name of the entry a host with this metadata would use (admin, tests). */
  matchName(endpoint: EndpointMetadata | undefined, locality: EndpointMetadata | undefined): string {
    return (this.#entries.find((m) => labelsMatch(m.match, endpoint)) ?? this.#entries.find((m) => labelsMatch(m.match, locality)) ?? this.#default).name;
  }
}
