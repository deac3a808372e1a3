// The bootstrap's static resources parsed into legate's model: secrets, clusters and listeners
// with every extension resolved, and the SDS secrets their TLS contexts refer to. Fails with one
// error per problem, each naming its field path. Runs on the main thread (validate before serving,
// then subscribe to SDS and xDS) and again on each worker (to build). `dynamic_resources` is
// checked here and resolved to its sources (src/proxy/xds/sources.ts).

import { createRequire } from 'node:module';
import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { ok, joinPath, type ConfigError, type Result } from './result.ts';
import { parseCluster, type ClusterConfig } from '../proxy/upstream/config.ts';
import { parseListener, parseSocketAddress, type ListenerConfig, type SocketAddr } from '../proxy/listener/listener-config.ts';
import type { ParseContext, RdsReference, SdsReference, TlsParseHooks } from '../filters/registry.ts';
import type { TlsSecret } from '../proxy/tls/types.ts';
import type { WasmServiceConfig } from '../proxy/wasm/bootstrap-services.ts';
import { checkSdsConfigSource } from './sds-config-source.ts';
import { parseConfigSource, parseDynamicResources, type DynamicResourcesPlan } from '../proxy/xds/sources.ts';

const lazy = createRequire(import.meta.url);

export interface StaticConfig {
  readonly bootstrap: Bootstrap__Output;
  readonly clusters: readonly ClusterConfig[];
  readonly listeners: readonly ListenerConfig[];
  readonly admin: { readonly address: SocketAddr } | undefined;
  /** `static_resources.secrets`, resolved, by name. */
  readonly secrets: ReadonlyMap<string, TlsSecret>;
  /** SDS secrets the TLS contexts refer to, one per name (the first reference's sds_config). */
  readonly sdsRefs: readonly SdsReference[];
  /** `dynamic_resources` resolved (ADS stream, LDS/CDS sources); undefined without any. */
  readonly dynamic: DynamicResourcesPlan | undefined;
  /** RDS references of static listeners' HCMs (recorded on the main thread; the xDS manager subscribes). */
  readonly staticRds: readonly RdsReference[];
  /** `bootstrap_extensions` of type envoy.bootstrap.wasm (Proxy-Wasm services). */
  readonly wasmServices: readonly WasmServiceConfig[];
  readonly warnings: readonly string[];
}

export interface BuildOptions {
  /**
   * RDS for static listeners' HCMs (a worker passes its live route sources). Without it, and when
   * the bootstrap has dynamic_resources, references are recorded (StaticConfig.staticRds) and
   * answered with an empty source; without dynamic_resources an HCM with `rds` is an error.
   */
  readonly rds?: ParseContext['rds'];
}

export function buildStaticConfig(b: Bootstrap__Output, opts: BuildOptions = {}): Result<StaticConfig> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const sr = b.static_resources;
  const secrets = new Map<string, TlsSecret>();
  (sr?.secrets ?? []).forEach((s, i) => {
    const path = `static_resources.secrets[${i}]`;
    if (secrets.has(s.name)) return void errors.push({ path: joinPath(path, 'name'), reason: `Duplicate static secret name ${s.name}` });
    // Required only for a bootstrap with static secrets: node:tls stays out of a config without TLS.
    const r = (lazy('../proxy/tls/secret-config.ts') as typeof import('../proxy/tls/secret-config.ts')).parseSecret(s, path);
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
    if (r.ok) {
      clusters.push(r.value);
      if (r.warnings) warnings.push(...r.warnings);
    } else errors.push(...r.errors);
  });
  const listeners: ListenerConfig[] = [];
  const staticRds: RdsReference[] = [];
  const dr = b.dynamic_resources;
  const hasDynamic = !!dr && !!(dr.lds_config || dr.cds_config || dr.ads_config);
  const rds: ParseContext['rds'] = opts.rds ?? (hasDynamic ? (ref) => (staticRds.push(ref), { name: ref.routeConfigName, table: undefined }) : undefined);
  const listenerNames = new Set<string>();
  (sr?.listeners ?? []).forEach((l, i) => {
    const path = `static_resources.listeners[${i}]`;
    const r = parseListener(l, path, { path, clusterNames, tls, ...(rds ? { rds } : {}) });
    if (!r.ok) return void errors.push(...r.errors);
    if (r.warnings) warnings.push(...r.warnings);
    if (listenerNames.has(r.value.name)) errors.push({ path: joinPath(path, 'name'), reason: `error adding listener: multiple listeners with name '${r.value.name}'` });
    listenerNames.add(r.value.name);
    listeners.push(r.value);
  });
  const sdsRefs = uniqueSdsRefs(sdsSeen, clusters, errors, warnings, !!b.dynamic_resources?.ads_config);
  const dyn = parseDynamicResources(b, clusters);
  if (!dyn.ok) errors.push(...dyn.errors);
  for (const ref of staticRds) {
    const s = parseConfigSource(ref.configSource, clusters, !!dr?.ads_config, joinPath(ref.path, 'config_source'));
    if (!s.ok) errors.push(...s.errors);
  }
  let admin: StaticConfig['admin'];
  if (b.admin?.address) {
    const a = parseSocketAddress(b.admin.address, 'admin.address');
    if (a.ok) admin = { address: a.value };
    else errors.push(...a.errors);
  }
  if (b.tracing) warnings.push('tracing: ignored (legate does not trace yet)');
  // Required only for a bootstrap with extensions: the Proxy-Wasm modules stay out of the others.
  const services = b.bootstrap_extensions?.length ? (lazy('../proxy/wasm/bootstrap-services.ts') as typeof import('../proxy/wasm/bootstrap-services.ts')).parseBootstrapExtensions(b, warnings) : ok<WasmServiceConfig[]>([]);
  if (!services.ok) errors.push(...services.errors);
  if (errors.length) return { ok: false, errors };
  return ok({ bootstrap: b, clusters, listeners, admin, secrets, sdsRefs, dynamic: dyn.ok ? dyn.value : undefined, staticRds, wasmServices: services.ok ? services.value : [], warnings });
}

/**
 * One reference per secret name (TLS contexts naming the same secret share one subscription, and
 * a worker's SecretStore is keyed by name), each sds_config checked: ADS without ads_config, REST
 * or an unknown cluster is an error at the first reference's path.
 */
function uniqueSdsRefs(refs: readonly SdsReference[], clusters: readonly ClusterConfig[], errors: ConfigError[], warnings: string[], hasAds: boolean): SdsReference[] {
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
    const r = checkSdsConfigSource(ref.configSource, clusters, joinPath(ref.path, 'sds_config'), hasAds);
    if (!r.ok) errors.push(...r.errors);
  }
  return [...byName.values()];
}
