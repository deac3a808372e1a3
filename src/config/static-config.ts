// The bootstrap's static resources parsed into legate's model: secrets, clusters and listeners
// with every extension resolved, and the SDS secrets their TLS contexts refer to. Fails with one
// error per problem, each naming its field path. Runs on the main thread (validate before serving,
// then subscribe to SDS) and again on each worker (to build).

import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { ok, joinPath, type ConfigError, type Result } from './result.ts';
import { parseCluster, type ClusterConfig } from '../proxy/upstream/config.ts';
import { parseListener, parseSocketAddress, type ListenerConfig, type SocketAddr } from '../proxy/listener/listener-config.ts';
import type { ParseContext, SdsReference, TlsParseHooks } from '../filters/registry.ts';
import type { TlsSecret } from '../proxy/tls/types.ts';
import { parseSecret } from '../proxy/tls/secret-config.ts';
import { checkSdsConfigSource } from '../xds-client/sds-client.ts';

export interface StaticConfig {
  readonly bootstrap: Bootstrap__Output;
  readonly clusters: readonly ClusterConfig[];
  readonly listeners: readonly ListenerConfig[];
  readonly admin: { readonly address: SocketAddr } | undefined;
  /** `static_resources.secrets`, resolved, by name. */
  readonly secrets: ReadonlyMap<string, TlsSecret>;
  /** SDS secrets the TLS contexts refer to, one per name (the first reference's sds_config). */
  readonly sdsRefs: readonly SdsReference[];
  readonly warnings: readonly string[];
}

export function buildStaticConfig(b: Bootstrap__Output): Result<StaticConfig> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const sr = b.static_resources;
  const secrets = new Map<string, TlsSecret>();
  (sr?.secrets ?? []).forEach((s, i) => {
    const path = `static_resources.secrets[${i}]`;
    if (secrets.has(s.name)) return void errors.push({ path: joinPath(path, 'name'), reason: `Duplicate static secret name ${s.name}` });
    const r = parseSecret(s, path);
    if (r.ok) secrets.set(s.name, r.value);
    else errors.push(...r.errors);
  });
  const sdsSeen: SdsReference[] = [];
  const tls: TlsParseHooks = { staticSecrets: secrets, sds: (ref) => void sdsSeen.push(ref) };
  const clusters: ClusterConfig[] = [];
  const clusterNames = new Set<string>((sr?.clusters ?? []).map((c) => c.name));
  const seenClusters = new Set<string>();
  (sr?.clusters ?? []).forEach((c, i) => {
    const path = `static_resources.clusters[${i}]`;
    if (seenClusters.has(c.name)) errors.push({ path: joinPath(path, 'name'), reason: `cluster manager: duplicate cluster '${c.name}' found` });
    seenClusters.add(c.name);
    const ctx: ParseContext = { path, clusterNames, tls };
    const r = parseCluster(c, path, ctx);
    if (r.ok) clusters.push(r.value);
    else errors.push(...r.errors);
  });
  const listeners: ListenerConfig[] = [];
  const listenerNames = new Set<string>();
  (sr?.listeners ?? []).forEach((l, i) => {
    const path = `static_resources.listeners[${i}]`;
    const r = parseListener(l, path, { path, clusterNames, tls });
    if (!r.ok) return void errors.push(...r.errors);
    if (r.warnings) warnings.push(...r.warnings);
    if (listenerNames.has(r.value.name)) errors.push({ path: joinPath(path, 'name'), reason: `error adding listener: multiple listeners with name '${r.value.name}'` });
    listenerNames.add(r.value.name);
    listeners.push(r.value);
  });
  const sdsRefs = uniqueSdsRefs(sdsSeen, clusters, errors, warnings);
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
  return ok({ bootstrap: b, clusters, listeners, admin, secrets, sdsRefs, warnings });
}

/**
 * One reference per secret name (TLS contexts naming the same secret share one subscription, and
 * a worker's SecretStore is keyed by name), each sds_config checked: SDS over ADS, REST or an
 * unknown cluster is an error at the first reference's path.
 */
function uniqueSdsRefs(refs: readonly SdsReference[], clusters: readonly ClusterConfig[], errors: ConfigError[], warnings: string[]): SdsReference[] {
  const byName = new Map<string, SdsReference>();
  for (const ref of refs) {
    const first = byName.get(ref.name);
    if (first) {
      if (JSON.stringify(first.configSource) !== JSON.stringify(ref.configSource)) {
        warnings.push(`${ref.path}: SDS secret '${ref.name}' has a different sds_config than at ${first.path}; using the first`);
      }
      continue;
    }
    byName.set(ref.name, ref);
    const r = checkSdsConfigSource(ref.configSource, clusters, joinPath(ref.path, 'sds_config'));
    if (!r.ok) errors.push(...r.errors);
  }
  return [...byName.values()];
}
