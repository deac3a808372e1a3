// Config-time check of an `sds_config` (no grpc-js or subscriptions here, so worker threads
// checking config don't load them): what legate can subscribe to, or errors with field paths.

import type { ConfigSource__Output } from '../generated/envoy/config/core/v3/ConfigSource.ts';
import type { ClusterConfig } from '../proxy/upstream/types.ts';
import { fail, joinPath, ok, type Result } from './result.ts';
import { resolveGrpcTarget } from './grpc-target.ts';

/** How a secret's sds_config is served. */
export type SdsSource =
  | { readonly kind: 'ads' }
  | { readonly kind: 'grpc'; readonly config: ConfigSource__Output }
  | { readonly kind: 'file'; readonly path: string; readonly watchedDirectory: string | undefined };

/**
 * Checks an `sds_config` at config time: what legate can subscribe to, with field paths
 * (`path` names the sds_config). gRPC sources must name a static cluster; `ads: {}` needs the
 * bootstrap's dynamic_resources.ads_config (`hasAds`).
 */
export function checkSdsConfigSource(config: ConfigSource__Output, clusters: readonly ClusterConfig[], path: string, hasAds = false): Result<SdsSource> {
  const v = String(config.resource_api_version);
  if (v !== 'V3' && v !== 'AUTO') return fail(joinPath(path, 'resource_api_version'), `resource_api_version ${v} is not supported: use V3`);
  switch (config.config_source_specifier) {
    case 'ads':
      if (!hasAds) return fail(joinPath(path, 'ads'), 'SDS over ADS needs dynamic_resources.ads_config in the bootstrap (or use api_config_source or path_config_source)');
      return ok({ kind: 'ads' });
    case 'self':
      return fail(joinPath(path, 'self'), 'self config sources are not supported for SDS');
    case 'api_config_source': {
      const r = resolveGrpcTarget(config, clusters, path);
      return r.ok ? ok({ kind: 'grpc', config }) : r;
    }
    case 'path_config_source': {
      const p = config.path_config_source!;
      if (!p.path) return fail(joinPath(path, 'path_config_source.path'), 'value length must be at least 1 characters');
      const wd = p.watched_directory?.path;
      if (p.watched_directory && !wd) return fail(joinPath(path, 'path_config_source.watched_directory.path'), 'value length must be at least 1 characters');
      return ok({ kind: 'file', path: p.path, watchedDirectory: wd || undefined });
    }
    case 'path':
      if (!config.path) return fail(joinPath(path, 'path'), 'value length must be at least 1 characters');
      return ok({ kind: 'file', path: config.path, watchedDirectory: undefined });
    default:
      return fail(path, 'config_source_specifier is required (api_config_source or path_config_source)');
  }
}
