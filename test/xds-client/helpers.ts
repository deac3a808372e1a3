// Shared bits of the xds-client tests: decoded Envoy messages from proto3 JSON, an SDS client
// wired to a fresh stats store with the real secret validation, and polling.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJson } from '../../src/config/decode.ts';
import { formatErrors } from '../../src/config/result.ts';
import type { ConfigSource__Output } from '../../src/generated/envoy/config/core/v3/ConfigSource.ts';
import type { Cluster__Output } from '../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { Node__Output } from '../../src/generated/envoy/config/core/v3/Node.ts';
import { parseCluster } from '../../src/proxy/upstream/config.ts';
import type { ClusterConfig } from '../../src/proxy/upstream/types.ts';
import { StatsStore } from '../../src/proxy/stats.ts';
import { SdsClient } from '../../src/xds-client/sds-client.ts';
import { validateSdsSecret } from '../../src/proxy/tls/secret-manager-main.ts';
import type { TlsSecret } from '../../src/proxy/tls/types.ts';

export function decode<T>(typeName: string, json: unknown): T {
  const r = decodeJson<T>(typeName, json);
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

export function configSource(json: unknown): ConfigSource__Output {
  return decode<ConfigSource__Output>('envoy.config.core.v3.ConfigSource', json);
}

export function node(id = 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local', cluster = 'pod.ns'): Node__Output {
  return decode<Node__Output>('envoy.config.core.v3.Node', { id, cluster, metadata: { ISTIO_VERSION: '1.24.0' } });
}

/** A STATIC cluster with one endpoint: a Unix socket path (`pipe`) or 127.0.0.1:port. */
export function xdsCluster(name: string, at: { pipe: string } | { port: number }): ClusterConfig {
  const address = 'pipe' in at ? { pipe: { path: at.pipe } } : { socket_address: { address: '127.0.0.1', port_value: at.port } };
  const c = decode<Cluster__Output>('envoy.config.cluster.v3.Cluster', {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
    },
  });
  const r = parseCluster(c, 'cluster');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

/** sds_config over gRPC to `cluster` (Istio's shape). */
export function grpcSource(cluster: string, extra: Record<string, unknown> = {}, apiType = 'GRPC'): ConfigSource__Output {
  return configSource({
    api_config_source: { api_type: apiType, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: cluster } }], ...extra },
    resource_api_version: 'V3',
    initial_fetch_timeout: '0s',
  });
}

export interface SdsHarness {
  readonly client: SdsClient<TlsSecret>;
  readonly stats: StatsStore;
  /** Every secret the client accepted, in order. */
  readonly received: Array<{ name: string; secret: TlsSecret; version: string }>;
  counter(name: string): number;
}

export function sdsHarness(clusters: readonly ClusterConfig[], n: Node__Output | null = node()): SdsHarness {
  const stats = new StatsStore();
  const received: SdsHarness['received'] = [];
  const client = new SdsClient<TlsSecret>({ clusters, node: n, stats, validate: validateSdsSecret, onSecret: (name, secret, version) => void received.push({ name, secret, version }) });
  return { client, stats, received, counter: (name) => stats.snapshot().counters[name] ?? 0 };
}

/** Polls `f` (sync or async) until it returns a truthy value. */
export async function until<T>(f: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function tempDir(prefix = 'legate-xds-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A leaf certificate's serial (hex, upper case as node prints it) from a PEM chain. */
export async function serialOf(pem: string): Promise<string> {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(pem).serialNumber;
}
