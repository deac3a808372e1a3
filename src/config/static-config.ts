// The bootstrap's static resources parsed into legate's model: clusters and listeners with
// every extension resolved. Fails with one error per problem, each naming its field path.
// Runs on the main thread (validate before serving) and again on each worker (to build).

import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { ok, joinPath, type ConfigError, type Result } from './result.ts';
import { parseCluster, type ClusterConfig } from '../proxy/upstream/config.ts';
import { parseListener, parseSocketAddress, type ListenerConfig, type SocketAddr } from '../proxy/listener/listener-config.ts';

export interface StaticConfig {
  readonly bootstrap: Bootstrap__Output;
  readonly clusters: readonly ClusterConfig[];
  readonly listeners: readonly ListenerConfig[];
  readonly admin: { readonly address: SocketAddr } | undefined;
  readonly warnings: readonly string[];
}

export function buildStaticConfig(b: Bootstrap__Output): Result<StaticConfig> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const sr = b.static_resources;
  const clusters: ClusterConfig[] = [];
  const clusterNames = new Set<string>();
  (sr?.clusters ?? []).forEach((c, i) => {
    const path = `static_resources.clusters[${i}]`;
    if (clusterNames.has(c.name)) errors.push({ path: joinPath(path, 'name'), reason: `cluster manager: duplicate cluster '${c.name}' found` });
    clusterNames.add(c.name);
    const r = parseCluster(c, path);
    if (r.ok) clusters.push(r.value);
    else errors.push(...r.errors);
  });
  const listeners: ListenerConfig[] = [];
  const listenerNames = new Set<string>();
  (sr?.listeners ?? []).forEach((l, i) => {
    const path = `static_resources.listeners[${i}]`;
    const r = parseListener(l, path, { path, clusterNames });
    if (!r.ok) return void errors.push(...r.errors);
    if (listenerNames.has(r.value.name)) errors.push({ path: joinPath(path, 'name'), reason: `error adding listener: multiple listeners with name '${r.value.name}'` });
    listenerNames.add(r.value.name);
    listeners.push(r.value);
  });
  if ((sr?.secrets ?? []).length > 0) {
    errors.push({ path: 'static_resources.secrets', reason: 'static secrets are not supported yet: SDS and TLS land with the security issue' });
  }
  const dr = b.dynamic_resources;
  if (dr && (dr.lds_config || dr.cds_config || dr.ads_config || dr.lds_resources_locator || dr.cds_resources_locator)) {
    errors.push({ path: 'dynamic_resources', reason: 'dynamic resources (xDS: LDS/CDS/ADS) are not supported yet: they land with the xDS issue' });
  }
  let admin: StaticConfig['admin'];
  if (b.admin?.address) {
    const a = parseSocketAddress(b.admin.address, 'admin.address');
    if (a.ok) admin = { address: a.value };
    else errors.push(...a.errors);
  }
  if (b.tracing) warnings.push('tracing: ignored (legate does not trace yet)');
  if (errors.length) return { ok: false, errors };
  return ok({ bootstrap: b, clusters, listeners, admin, warnings });
}
