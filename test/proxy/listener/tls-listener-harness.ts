// Test harness for downstream TLS on a listener, in-process: an Envoy Listener (JSON, as a user
// writes it) parsed and run as one worker's ActiveListener on 127.0.0.1:0, plain upstreams behind
// it, and counter reads. TLS contexts inline the test PKI's PEMs.

import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors, type Result } from '../../../src/config/result.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { Listener__Output } from '../../../src/generated/envoy/config/listener/v3/Listener.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry, type ParseContext, type SdsReference } from '../../../src/filters/registry.ts';
import { parseListener, type ListenerConfig } from '../../../src/proxy/listener/listener-config.ts';
import { ActiveListener } from '../../../src/proxy/listener/listener-runtime.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import type { ClusterManager } from '../../../src/proxy/upstream/types.ts';
import type { Issued } from '../../helpers/certs.ts';
import { cluster } from '../../helpers/config.ts';
import { testRuntime } from '../../helpers/runtime-context.ts';
import type { MemorySecretStore } from '../../../src/proxy/tls/secret-store.ts';

registerBuiltins(registry);

export const TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };

/** A chain's transport_socket with `cert` served, optionally requiring a client certificate from `clientCa`. */
export function downstreamTls(cert: Issued, o: { clientCa?: string; requireClientCert?: boolean; alpn?: string[]; extra?: Record<string, unknown> } = {}): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TLS_TYPE,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { inline_string: cert.certPem }, private_key: { inline_string: cert.keyPem } }],
        ...(o.alpn ? { alpn_protocols: o.alpn } : {}),
        ...(o.clientCa ? { validation_context: { trusted_ca: { inline_string: o.clientCa } } } : {}),
      },
      ...(o.requireClientCert ? { require_client_certificate: true } : {}),
      ...(o.extra ?? {}),
    },
  };
}

export function decodeListener(json: object): Result<Listener__Output> {
  return decodeJson<Listener__Output>('envoy.config.listener.v3.Listener', json, { path: 'listener' });
}

export function parseListenerJson(json: object, clusterNames: readonly string[] = [], sdsRefs: SdsReference[] = []): Result<ListenerConfig> {
  const d = decodeListener(json);
  if (!d.ok) return d;
  const ctx: ParseContext = { path: 'listener', clusterNames: new Set(clusterNames), tls: { staticSecrets: new Map(), sds: (r) => void sdsRefs.push(r) } };
  return parseListener(d.value, 'listener', ctx);
}

export interface ListenerHarness {
  readonly port: number;
  readonly stats: StatsStore;
  readonly secrets: MemorySecretStore;
  readonly cm: ClusterManager;
  readonly listener: ActiveListener;
  /** `listener.127.0.0.1_<port>.` */
  readonly prefix: string;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

/** Starts `listenerJson` (address is forced to 127.0.0.1:0) with STATIC clusters name → ports. */
export async function startListener(listenerJson: Record<string, unknown>, clusters: Record<string, number[]> = {}): Promise<ListenerHarness> {
  const stats = new StatsStore();
  const rt = testRuntime();
  const clusterConfigs = Object.entries(clusters).map(([name, ports]) => {
    const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', cluster(name, { ports }));
    if (!d.ok) throw new Error(formatErrors(d.errors));
    const r = parseCluster(d.value, `clusters.${name}`);
    if (!r.ok) throw new Error(formatErrors(r.errors));
    return r.value;
  });
  const cm = createClusterManager(clusterConfigs, { stats, workerId: 0, shared: rt.shared, secrets: rt.secrets });
  await cm.ready();
  const parsed = parseListenerJson({ name: 'tls', ...listenerJson, address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, Object.keys(clusters));
  if (!parsed.ok) throw new Error(formatErrors(parsed.errors));
  const listener = new ActiveListener(parsed.value, { stats, clusterManager: cm, workerId: 0, ...rt });
  const port = await listener.listen(0);
  const snap = (): ReturnType<StatsStore['snapshot']> => stats.snapshot();
  return {
    port,
    stats,
    secrets: rt.secrets,
    cm,
    listener,
    prefix: `listener.127.0.0.1_${port}.`,
    counter: (n) => snap().counters[n] ?? 0,
    gauge: (n) => snap().gauges[n] ?? 0,
    async close() {
      await listener.closeAll();
      await cm.close();
    },
  };
}
