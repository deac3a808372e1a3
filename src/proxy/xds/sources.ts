// Where each xDS resource type comes from: the bootstrap's `dynamic_resources` (ads_config,
// lds_config, cds_config) and the ConfigSources inside resources (an HCM's `rds.config_source`, an
// EDS cluster's `eds_cluster_config.eds_config`), checked at config time with field paths and
// resolved to one of: the ADS stream, a per-type gRPC stream, or a file. Forms legate does not
// speak (REST, xdstp locators, `self`) are config errors that say so.

import type { Bootstrap__Output } from '../../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { ConfigSource__Output } from '../../generated/envoy/config/core/v3/ConfigSource.ts';
import type { ClusterConfig } from '../upstream/types.ts';
import { fail, joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { grpcServiceTarget, resolveGrpcTarget, type GrpcApiType, type GrpcTarget } from '../../config/grpc-target.ts';
import { initialFetchTimeoutMs } from '../../xds-client/subscription.ts';

/** The ADS stream of `dynamic_resources.ads_config`. */
export interface AdsPlan {
  readonly target: GrpcTarget;
  readonly apiType: GrpcApiType;
  readonly setNodeOnFirstMessageOnly: boolean;
}

export type XdsSource =
  | { readonly kind: 'ads' }
  | { readonly kind: 'grpc'; readonly target: GrpcTarget; readonly apiType: GrpcApiType; readonly setNodeOnFirstMessageOnly: boolean }
  | { readonly kind: 'file'; readonly path: string; readonly watchedDirectory: string | undefined };

export interface SourceSpec {
  readonly source: XdsSource;
  /** initial_fetch_timeout in ms; 0 = wait forever. */
  readonly initialFetchTimeoutMs: number;
  /** Identity of the source: resources of one type from sources with the same key share a subscription. */
  readonly key: string;
}

/** The bootstrap's dynamic resources, resolved. */
export interface DynamicResourcesPlan {
  readonly ads: AdsPlan | undefined;
  readonly lds: SourceSpec | undefined;
  readonly cds: SourceSpec | undefined;
}

function sourceKey(s: XdsSource): string {
  switch (s.kind) {
    case 'ads':
      return 'ads';
    case 'grpc':
      return `grpc:${s.apiType}:${s.target.target}:${s.target.authority ?? ''}`;
    case 'file':
      return `file:${s.path}`;
  }
}

/**
 * Checks one ConfigSource (`path` names it). `ads`: whether the bootstrap has an ads_config
 * (a source `ads: {}` needs one). `clusters`: the static clusters gRPC services may name.
 */
export function parseConfigSource(cs: ConfigSource__Output, clusters: readonly ClusterConfig[], hasAds: boolean, path: string): Result<SourceSpec> {
  const v = String(cs.resource_api_version);
  if (v !== 'V3' && v !== 'AUTO') return fail(joinPath(path, 'resource_api_version'), `resource_api_version ${v} is not supported: use V3`);
  if (cs.authorities.length > 0) return fail(joinPath(path, 'authorities'), 'xdstp authorities are not supported');
  const timeout = initialFetchTimeoutMs(cs.initial_fetch_timeout);
  const spec = (source: XdsSource): Result<SourceSpec> => ok({ source, initialFetchTimeoutMs: timeout, key: sourceKey(source) });
  switch (cs.config_source_specifier) {
    case 'ads':
      if (!hasAds) return fail(joinPath(path, 'ads'), 'an ads config source needs dynamic_resources.ads_config in the bootstrap');
      return spec({ kind: 'ads' });
    case 'self':
      return fail(joinPath(path, 'self'), 'self config sources are not supported: use ads or api_config_source');
    case 'api_config_source': {
      const r = resolveGrpcTarget(cs, clusters, path);
      if (!r.ok) return r;
      return spec({ kind: 'grpc', target: r.value.target, apiType: r.value.apiType, setNodeOnFirstMessageOnly: cs.api_config_source!.set_node_on_first_message_only });
    }
    case 'path_config_source': {
      const p = cs.path_config_source!;
      if (!p.path) return fail(joinPath(path, 'path_config_source.path'), 'value length must be at least 1 characters');
      const wd = p.watched_directory?.path;
      if (p.watched_directory && !wd) return fail(joinPath(path, 'path_config_source.watched_directory.path'), 'value length must be at least 1 characters');
      return spec({ kind: 'file', path: p.path, watchedDirectory: wd || undefined });
    }
    case 'path':
      if (!cs.path) return fail(joinPath(path, 'path'), 'value length must be at least 1 characters');
      return spec({ kind: 'file', path: cs.path, watchedDirectory: undefined });
    default:
      return fail(path, 'config_source_specifier is required (ads, api_config_source or path_config_source)');
  }
}

/** Checks `dynamic_resources`; undefined when the bootstrap has none. */
export function parseDynamicResources(b: Bootstrap__Output, clusters: readonly ClusterConfig[]): Result<DynamicResourcesPlan | undefined> {
  const dr = b.dynamic_resources;
  if (!dr || (!dr.lds_config && !dr.cds_config && !dr.ads_config && !dr.lds_resources_locator && !dr.cds_resources_locator)) return ok(undefined);
  const errors: ConfigError[] = [];
  const path = 'dynamic_resources';
  if (dr.lds_resources_locator) errors.push({ path: joinPath(path, 'lds_resources_locator'), reason: 'xdstp resource locators are not supported: use lds_config' });
  if (dr.cds_resources_locator) errors.push({ path: joinPath(path, 'cds_resources_locator'), reason: 'xdstp resource locators are not supported: use cds_config' });
  let ads: AdsPlan | undefined;
  if (dr.ads_config) {
    const a = dr.ads_config;
    const apath = joinPath(path, 'ads_config');
    const apiType = String(a.api_type);
    if (apiType !== 'GRPC' && apiType !== 'DELTA_GRPC') {
      errors.push({ path: joinPath(apath, 'api_type'), reason: `ads_config api_type ${apiType} is not supported: use GRPC or DELTA_GRPC` });
    } else if (a.cluster_names.length > 0) {
      errors.push({ path: joinPath(apath, 'cluster_names'), reason: 'ads_config cannot use cluster_names: use grpc_services' });
    } else if (a.grpc_services.length !== 1) {
      errors.push({ path: joinPath(apath, 'grpc_services'), reason: `ads_config requires exactly one grpc_services entry (got ${a.grpc_services.length})` });
    } else {
      const t = grpcServiceTarget(a.grpc_services[0]!, clusters, joinPath(apath, 'grpc_services[0]'));
      if (t.ok) ads = { target: t.value, apiType, setNodeOnFirstMessageOnly: a.set_node_on_first_message_only };
      else errors.push(...t.errors);
    }
  }
  const hasAds = dr.ads_config !== null;
  const one = (cs: ConfigSource__Output | null, field: string): SourceSpec | undefined => {
    if (!cs) return undefined;
    const r = parseConfigSource(cs, clusters, hasAds, joinPath(path, field));
    if (r.ok) return r.value;
    errors.push(...r.errors);
    return undefined;
  };
  const lds = one(dr.lds_config, 'lds_config');
  const cds = one(dr.cds_config, 'cds_config');
  if (errors.length > 0) return { ok: false, errors };
  return ok({ ads, lds, cds });
}
