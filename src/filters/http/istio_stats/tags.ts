// Istio's standard metric labels (istio/proxy's istio_stats filter): who the source and the
// destination are, from this proxy's node metadata on its own side and the peer's metadata (or,
// for a client, the endpoint's `istio.workload` metadata) on the other; principals from the TLS
// session; the destination service from the cluster's `istio.services` metadata or the Host header.

import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import type { JsonStruct } from '../../common/istio/struct-codec.ts';
import { workloadFromEndpoint, type WorkloadMetadata } from '../../common/istio/workload.ts';
import type { IstioStatsConfig, MetricOverride } from './config.ts';

export type Tags = Array<readonly [string, string]>;

/** Istio's standard metrics, without the `istio_` prefix. */
export const STANDARD_METRICS: readonly string[] = [
  'requests_total',
  'request_duration_milliseconds',
  'request_bytes',
  'response_bytes',
  'request_messages_total',
  'response_messages_total',
  'tcp_connections_opened_total',
  'tcp_connections_closed_total',
  'tcp_sent_bytes_total',
  'tcp_received_bytes_total',
];

export const STANDARD_TAGS: readonly string[] = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
];

/** Istio's custom stat namespace: `istiocustom.istio_requests_total...`, exported as `istio_requests_total`. */
export const STAT_NAMESPACE = 'istiocustom';

/** This proxy's own workload, from the bootstrap's node metadata. */
export interface LocalWorkload {
  readonly workload: string;
  readonly namespace: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly clusterName: string;
  readonly appName: string;
  readonly appVersion: string;
  readonly istioVersion: string;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

export function localWorkload(metadata: Readonly<JsonStruct> | undefined): LocalWorkload {
  const m = metadata ?? {};
  const l = m.LABELS && typeof m.LABELS === 'object' && !Array.isArray(m.LABELS) ? m.LABELS : {};
  return {
    workload: str(m.WORKLOAD_NAME),
    namespace: str(m.NAMESPACE),
    canonicalName: str(l['service.istio.io/canonical-name']),
    canonicalRevision: str(l['service.istio.io/canonical-revision']),
    clusterName: str(m.CLUSTER_ID),
    appName: str(l.app),
    appVersion: str(l.version),
    istioVersion: str(m.ISTIO_VERSION),
  };
}

/** `<domain>/ns/<namespace>/sa/<account>` -> namespace. */
function namespaceOfPrincipal(principal: string): string {
  const at = principal.indexOf('/ns/');
  if (at < 0) return '';
  const rest = principal.slice(at + 4);
  const end = rest.indexOf('/');
  return end < 0 ? rest : rest.slice(0, end);
}

const PASSTHROUGH_CLUSTERS: ReadonlySet<string> = new Set(['BlackHoleCluster', 'PassthroughCluster', 'InboundPassthroughCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6']);

interface Service {
  readonly host: string;
  readonly name: string;
}

/** The destination service: Host header (unless disabled), then the route's special names or the cluster's `istio.services[0]`. */
function destinationService(info: StreamInfo, config: IstioStatsConfig, clusters: ClusterManager): Service {
  let host = '';
  let name = '';
  if (!config.disableHostHeaderFallback) host = name = info.requestHeaders?.get(':authority') ?? '';
  const cluster = info.clusterName;
  if (info.routeName === 'block_all') name = 'BlackHoleCluster';
  else if (info.routeName === 'allow_any') name = 'PassthroughCluster';
  else if (cluster !== undefined && PASSTHROUGH_CLUSTERS.has(cluster)) name = cluster;
  else if (cluster !== undefined) {
    const services = clusters.get(cluster)?.info.metadata?.istio?.services;
    const first: unknown = Array.isArray(services) ? services[0] : undefined;
    if (first && typeof first === 'object') {
      const s = first as Record<string, unknown>;
      if (typeof s.host === 'string') host = s.host;
      name = typeof s.name === 'string' ? s.name : host.split('.')[0]!;
    }
  }
  return { host, name };
}

/** The client side's fallback peer: the chosen endpoint's `istio.workload` metadata. */
function endpointPeer(info: StreamInfo, clusters: ClusterManager): WorkloadMetadata | undefined {
  const up = info.upstreamHost;
  if (!up || info.clusterName === undefined) return undefined;
  const host = clusters.get(info.clusterName)?.hosts().find((h) => h.address === up.address && h.port === up.port);
  const encoded = host?.metadata?.istio?.workload;
  return typeof encoded === 'string' ? workloadFromEndpoint(encoded) : undefined;
}

export interface PeerTagResult {
  readonly tags: Tags;
  /** Server side: both principals known (connection_security_policy `mutual_tls`, else `none`); client side: undefined (`unknown`). */
  readonly mutualTls: boolean | undefined;
}

/**
 * The 20 peer tags (reporter ... destination_cluster) in Istio's order. `peer` is the other side's
 * workload as metadata exchange found it (downstream for a server, upstream for a client).
 */
export function peerTags(
  info: StreamInfo,
  config: IstioStatsConfig,
  local: LocalWorkload,
  clusters: ClusterManager,
  exchanged: WorkloadMetadata | undefined,
): PeerTagResult {
  const server = config.reporter !== 'source';
  const peer = exchanged ?? (server ? undefined : endpointPeer(info, clusters));
  const tls = server ? info.downstreamTls : info.upstreamTls;
  const peerSan = tls?.peerUriSans[0] ?? '';
  const localSan = tls?.localUriSans[0] ?? '';
  const service = destinationService(info, config, clusters);
  const peerNamespace = namespaceOfPrincipal(peerSan) || (peer?.namespace ?? '');
  const or = (v: string | undefined, fallback: string): string => (v ? v : fallback);
  const tags: Tags = [['reporter', config.reporter]];
  if (server) {
    tags.push(
      ['source_workload', or(peer?.workloadName, 'unknown')],
      ['source_canonical_service', or(peer?.canonicalName, 'unknown')],
      ['source_canonical_revision', or(peer?.canonicalRevision, 'latest')],
      ['source_workload_namespace', or(peerNamespace, 'unknown')],
      ['source_principal', or(peerSan, 'unknown')],
      ['source_app', or(peer?.appName, 'unknown')],
      ['source_version', or(peer?.appVersion, 'unknown')],
      ['source_cluster', or(peer?.clusterName, 'unknown')],
      ['destination_workload', local.workload],
      ['destination_workload_namespace', local.namespace],
      ['destination_principal', or(localSan, 'unknown')],
      ['destination_app', local.appName],
      ['destination_version', local.appVersion],
      ['destination_service', or(service.host, local.canonicalName)],
      ['destination_canonical_service', local.canonicalName],
      ['destination_canonical_revision', local.canonicalRevision],
      ['destination_service_name', or(service.name, local.canonicalName)],
      ['destination_service_namespace', local.namespace],
      ['destination_cluster', local.clusterName],
    );
    return { tags, mutualTls: peerSan !== '' && localSan !== '' };
  }
  tags.push(
    ['source_workload', local.workload],
    ['source_canonical_service', local.canonicalName],
    ['source_canonical_revision', local.canonicalRevision],
    ['source_workload_namespace', local.namespace],
    ['source_principal', or(localSan, 'unknown')],
    ['source_app', local.appName],
    ['source_version', local.appVersion],
    ['source_cluster', local.clusterName],
    ['destination_workload', or(peer?.workloadName, 'unknown')],
    ['destination_workload_namespace', or(peerNamespace, 'unknown')],
    ['destination_principal', or(peerSan, 'unknown')],
    ['destination_app', or(peer?.appName, 'unknown')],
    ['destination_version', or(peer?.appVersion, 'unknown')],
    ['destination_service', or(service.host, 'unknown')],
    ['destination_canonical_service', or(peer?.canonicalName, 'unknown')],
    ['destination_canonical_revision', or(peer?.canonicalRevision, 'latest')],
    ['destination_service_name', or(service.name, 'unknown')],
    ['destination_service_namespace', or(peerNamespace, 'unknown')],
    ['destination_cluster', or(peer?.clusterName, 'unknown')],
  );
  return { tags, mutualTls: undefined };
}

export function securityPolicy(mutualTls: boolean | undefined): string {
  return mutualTls === undefined ? 'unknown' : mutualTls ? 'mutual_tls' : 'none';
}

/** A metric's tags after its overrides: standard tags replaced or removed, then added ones. */
export function overrideTags(tags: Tags, o: MetricOverride | undefined, info: StreamInfo): Tags {
  if (!o) return tags;
  const out: Tags = [];
  for (const [k, v] of tags) {
    const r = o.replaced.get(k);
    if (r === undefined) out.push([k, v]);
    else if (r !== null) out.push([k, r(info) ?? 'unknown']);
  }
  for (const [k, e] of o.added) out.push([k, e(info) ?? 'unknown']);
  return out;
}
