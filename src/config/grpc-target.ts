// A ConfigSource's gRPC service resolved to a target at config time (no grpc-js here, so worker
// threads checking config don't load it): `envoy_grpc.cluster_name` names a bootstrap static
// cluster whose first endpoint is a `pipe` (-> `unix:<path>`, `unix-abstract:` for `@name`) or a
// socket address; `google_grpc.target_uri` is used as is. Failures are config errors with field paths.

import type { ConfigSource__Output } from '../generated/envoy/config/core/v3/ConfigSource.ts';
import type { GrpcService__Output } from '../generated/envoy/config/core/v3/GrpcService.ts';
import type { ClusterConfig } from '../proxy/upstream/types.ts';
import { readDataSource } from './data-source.ts';
import { fail, joinPath, ok, type Result } from './result.ts';

/** Where and how to reach a management server: enough to build (and share) a channel. */
export interface GrpcTarget {
  /** grpc-js target: `unix:./var/run/socket`, `ipv4:127.0.0.1:15010`, `dns:istiod:15012`, ... */
  readonly target: string;
  /** :authority (Envoy sends the cluster name unless `envoy_grpc.authority` is set). */
  readonly authority: string | undefined;
  readonly tls: { readonly rootCerts: string | undefined; readonly privateKey: string | undefined; readonly certChain: string | undefined } | undefined;
  /** `initial_metadata`, sent on every stream. */
  readonly metadata: ReadonlyArray<readonly [string, string]>;
  /** For logs: `cluster sds-grpc (unix:./var/run/...)`. */
  readonly description: string;
}

/** The gRPC ApiConfigSource types legate can stream over. */
export type GrpcApiType = 'GRPC' | 'DELTA_GRPC';

/**
 * Resolves `config.api_config_source` (gRPC) to a target. `clusters` are the bootstrap's static
 * clusters (Envoy requires an xDS cluster to be static). `path` names the ConfigSource in errors.
 */
export function resolveGrpcTarget(config: ConfigSource__Output, clusters: readonly ClusterConfig[], path: string): Result<{ target: GrpcTarget; apiType: GrpcApiType }> {
  const api = config.api_config_source;
  const apath = joinPath(path, 'api_config_source');
  if (!api) return fail(path, 'api_config_source is required');
  const apiType = String(api.api_type);
  if (apiType === 'REST' || apiType === 'UNSUPPORTED_REST_LEGACY') return fail(joinPath(apath, 'api_type'), `api_type ${apiType} is not supported: use GRPC or DELTA_GRPC`);
  if (apiType === 'AGGREGATED_GRPC' || apiType === 'AGGREGATED_DELTA_GRPC') return fail(joinPath(apath, 'api_type'), `api_type ${apiType} is only valid in dynamic_resources.ads_config`);
  if (apiType !== 'GRPC' && apiType !== 'DELTA_GRPC') return fail(joinPath(apath, 'api_type'), `unknown api_type ${apiType}`);
  if (api.cluster_names.length > 0) return fail(joinPath(apath, 'cluster_names'), `${apiType} api_type cannot use cluster_names: use grpc_services`);
  if (api.grpc_services.length !== 1) {
    return fail(joinPath(apath, 'grpc_services'), `${apiType} api_type requires exactly one grpc_services entry (got ${api.grpc_services.length})`);
  }
  const r = grpcServiceTarget(api.grpc_services[0]!, clusters, joinPath(apath, 'grpc_services[0]'));
  return r.ok ? ok({ target: r.value, apiType }) : r;
}

/** Resolves one GrpcService (envoy_grpc or google_grpc) to a target. */
export function grpcServiceTarget(gs: GrpcService__Output, clusters: readonly ClusterConfig[], path: string): Result<GrpcTarget> {
  const metadata = gs.initial_metadata.map((h) => [h.key.toLowerCase(), h.value] as const);
  if (gs.envoy_grpc) {
    const name = gs.envoy_grpc.cluster_name;
    const cpath = joinPath(path, 'envoy_grpc.cluster_name');
    const cluster = clusters.find((c) => c.name === name);
    if (!cluster) return fail(cpath, `unknown gRPC client cluster '${name}': it must be a static cluster defined in static_resources.clusters`);
    const ep = cluster.localities.flatMap((l) => l.endpoints)[0];
    if (!ep) return fail(cpath, `gRPC client cluster '${name}' has no endpoints`);
    if (cluster.tlsContexts.length > 0) {
      return fail(cpath, `gRPC client cluster '${name}' uses a TLS transport socket; TLS to a management server through a cluster is not supported yet (use a pipe, plaintext, or google_grpc with ssl_credentials)`);
    }
    let target: string;
    if (ep.pipe) target = ep.address.startsWith('@') ? `unix-abstract:${ep.address.slice(1)}` : `unix:${ep.address}`;
    else if (cluster.type === 'STATIC') target = ep.address.includes(':') ? `ipv6:[${ep.address}]:${ep.port}` : `ipv4:${ep.address}:${ep.port}`;
    else target = `dns:${ep.address}:${ep.port}`;
    const authority = gs.envoy_grpc.authority || name;
    return ok({ target, authority, tls: undefined, metadata, description: `cluster ${name} (${target})` });
  }
  if (gs.google_grpc) {
    const g = gs.google_grpc;
    const gpath = joinPath(path, 'google_grpc');
    if (!g.target_uri) return fail(joinPath(gpath, 'target_uri'), 'value length must be at least 1 characters');
    if (g.call_credentials.length > 0) return fail(joinPath(gpath, 'call_credentials'), 'call credentials are not supported');
    let tls: GrpcTarget['tls'];
    const cc = g.channel_credentials;
    if (cc?.credential_specifier === 'ssl_credentials' && cc.ssl_credentials) {
      const s = cc.ssl_credentials;
      const spath = joinPath(gpath, 'channel_credentials.ssl_credentials');
      const read = (ds: typeof s.root_certs, field: string): Result<string | undefined> => (ds && ds.specifier ? readDataSource(ds, joinPath(spath, field)) : ok(undefined));
      const root = read(s.root_certs, 'root_certs');
      const key = read(s.private_key, 'private_key');
      const chain = read(s.cert_chain, 'cert_chain');
      const errors = [root, key, chain].flatMap((r) => (r.ok ? [] : r.errors));
      if (errors.length) return { ok: false, errors };
      tls = { rootCerts: root.ok ? root.value : undefined, privateKey: key.ok ? key.value : undefined, certChain: chain.ok ? chain.value : undefined };
    } else if (cc?.credential_specifier) {
      return fail(joinPath(gpath, `channel_credentials.${cc.credential_specifier}`), `${cc.credential_specifier} channel credentials are not supported`);
    }
    return ok({ target: g.target_uri, authority: undefined, tls, metadata, description: `google_grpc ${g.target_uri}` });
  }
  return fail(path, 'one of envoy_grpc or google_grpc is required');
}
