// Parses io.istio.http.peer_metadata.Config (Istio's `istio.metadata_exchange` HTTP filter): where
// the downstream and upstream peers' metadata come from and which way this proxy's own goes.
// Legate reads and sends Istio's headers (`istio_headers`); `workload_discovery` needs Istio's
// workload metadata xDS (a bootstrap extension legate lacks) and `baggage` is deprecated by Istio:
// both are accepted and find no peer, as Istio's own methods do when their source is absent.

import { joinPath, type ConfigError, type Result } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export const METADATA_EXCHANGE_NAME = 'istio.metadata_exchange';
export const METADATA_EXCHANGE_TYPE = 'io.istio.http.peer_metadata.Config';

interface IstioHeaders__Output {
  readonly skip_external_clusters: boolean;
}
interface DiscoveryMethod__Output {
  readonly method_specifier?: 'baggage' | 'workload_discovery' | 'istio_headers';
  readonly istio_headers?: IstioHeaders__Output | null;
}
interface PropagationMethod__Output {
  readonly method_specifier?: 'istio_headers';
  readonly istio_headers?: IstioHeaders__Output | null;
}
/** The decoded message (proto-loader object form; src/config/istio-protos). */
interface Config__Output {
  readonly downstream_discovery: readonly DiscoveryMethod__Output[];
  readonly upstream_discovery: readonly DiscoveryMethod__Output[];
  readonly downstream_propagation: readonly PropagationMethod__Output[];
  readonly upstream_propagation: readonly PropagationMethod__Output[];
  readonly shared_with_upstream: boolean;
  readonly additional_labels: readonly string[];
}

/** Sending this proxy's metadata in Istio's headers. */
export interface HeaderPropagation {
  /** Not to clusters with `istio.external` metadata, nor to PassthroughCluster. */
  readonly skipExternalClusters: boolean;
}

export interface MetadataExchangeConfig {
  /** Read the downstream peer from the request's headers. */
  readonly downstreamHeaders: boolean;
  /** Read the upstream peer from the response's headers. */
  readonly upstreamHeaders: boolean;
  /** Send this proxy's metadata in the response (only as far as the request carried the peer's). */
  readonly downstreamPropagation: HeaderPropagation | undefined;
  /** Send this proxy's metadata in the request to the upstream. */
  readonly upstreamPropagation: HeaderPropagation | undefined;
  /** Peer labels kept besides app, version and the canonical ones. */
  readonly additionalLabels: ReadonlySet<string>;
}

function discovery(methods: readonly DiscoveryMethod__Output[], path: string, errors: ConfigError[], warnings: string[]): boolean {
  let headers = false;
  methods.forEach((m, i) => {
    const p = joinPath(path, `[${i}]`);
    if (m.method_specifier === 'istio_headers') headers = true;
    else if (m.method_specifier === 'workload_discovery') warnings.push(`${p}.workload_discovery: legate has no workload metadata xDS; this method finds no peer`);
    else if (m.method_specifier === 'baggage') warnings.push(`${p}.baggage: deprecated by Istio; this method finds no peer`);
    else errors.push({ path: p, reason: 'one of baggage, workload_discovery or istio_headers is required' });
  });
  return headers;
}

function propagation(methods: readonly PropagationMethod__Output[], path: string, errors: ConfigError[]): HeaderPropagation | undefined {
  let out: HeaderPropagation | undefined;
  methods.forEach((m, i) => {
    if (m.method_specifier === 'istio_headers') out = { skipExternalClusters: m.istio_headers?.skip_external_clusters ?? false };
    else errors.push({ path: joinPath(path, `[${i}]`), reason: 'istio_headers is required' });
  });
  return out;
}

export function parseMetadataExchange(message: unknown, ctx: ParseContext): Result<MetadataExchangeConfig> {
  const m = message as Config__Output;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const config: MetadataExchangeConfig = Object.freeze({
    downstreamHeaders: discovery(m.downstream_discovery, joinPath(ctx.path, 'downstream_discovery'), errors, warnings),
    upstreamHeaders: discovery(m.upstream_discovery, joinPath(ctx.path, 'upstream_discovery'), errors, warnings),
    downstreamPropagation: propagation(m.downstream_propagation, joinPath(ctx.path, 'downstream_propagation'), errors),
    upstreamPropagation: propagation(m.upstream_propagation, joinPath(ctx.path, 'upstream_propagation'), errors),
    additionalLabels: new Set(m.additional_labels),
  });
  if (errors.length > 0) return { ok: false, errors };
  return warnings.length > 0 ? { ok: true, value: config, warnings } : { ok: true, value: config };
}
