// tcp_proxy config: TcpProxy (proto-loader form) -> a frozen TcpProxyConfig with Envoy's defaults
// (idle 1 h, one connect attempt). Unsupported features (tunneling, on-demand CDS) are errors.

import type { TcpProxy__Output } from '../../../generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
import { type ConfigError, type Result, deepFreeze, joinPath } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import { Limits } from '../../../proxy/limits.ts';
import { type AccessLogConfig, parseAccessLog } from '../../../proxy/access-log/config.ts';
import type { ParseContext } from '../../registry.ts';

export interface WeightedClusterEntry {
  readonly name: string;
  readonly weight: number;
}

export interface TcpProxyConfig {
  readonly statPrefix: string;
  /** One entry for `cluster`; several for `weighted_clusters`. */
  readonly clusters: readonly WeightedClusterEntry[];
  readonly totalWeight: number;
  /** 0 = disabled. */
  readonly idleTimeoutMs: number;
  readonly maxConnectAttempts: number;
  /** max_downstream_connection_duration; 0 = none. */
  readonly maxDownstreamConnectionDurationMs: number;
  readonly accessLogs: readonly AccessLogConfig[];
}

export const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function checkCluster(name: string, path: string, ctx: ParseContext, errors: ConfigError[]): void {
  if (name === '') errors.push({ path, reason: 'value length must be at least 1 characters' });
  else if (ctx.clusterNames && !ctx.clusterNames.has(name)) errors.push({ path, reason: `unknown cluster '${name}'` });
}

export function parseTcpProxy(message: unknown, ctx: ParseContext): Result<TcpProxyConfig> {
  const m = message as TcpProxy__Output;
  const p = (field: string): string => joinPath(ctx.path, field);
  const errors: ConfigError[] = [];
  const warnings: string[] = [];

  if (!m.stat_prefix) errors.push({ path: p('stat_prefix'), reason: 'value length must be at least 1 characters' });

  const clusters: WeightedClusterEntry[] = [];
  if (m.cluster_specifier === 'cluster') {
    checkCluster(m.cluster ?? '', p('cluster'), ctx, errors);
    clusters.push({ name: m.cluster ?? '', weight: 1 });
  } else if (m.cluster_specifier === 'weighted_clusters') {
    const wc = m.weighted_clusters?.clusters ?? [];
    const base = joinPath(p('weighted_clusters'), 'clusters');
    if (wc.length === 0) errors.push({ path: base, reason: 'value must contain at least 1 item(s)' });
    wc.forEach((c, i) => {
      checkCluster(c.name, joinPath(joinPath(base, `[${i}]`), 'name'), ctx, errors);
      if (c.weight < 1) errors.push({ path: joinPath(joinPath(base, `[${i}]`), 'weight'), reason: 'value must be greater than or equal to 1' });
      clusters.push({ name: c.name, weight: c.weight });
    });
  } else {
    errors.push({ path: p('cluster_specifier'), reason: 'one of cluster, weighted_clusters is required' });
  }

  const attempts = m.max_connect_attempts?.value ?? Limits.tcpProxyMaxConnectAttempts;
  if (attempts < 1) errors.push({ path: p('max_connect_attempts'), reason: 'value must be greater than or equal to 1' });

  if (m.tunneling_config) errors.push({ path: p('tunneling_config'), reason: 'tunneling over HTTP is not supported by legate' });
  if (m.on_demand) errors.push({ path: p('on_demand'), reason: 'on-demand CDS is not supported by legate' });
  if (m.metadata_match) warnings.push(`${p('metadata_match')}: subset load balancing is not supported; ignored`);
  if (m.hash_policy.length > 0) warnings.push(`${p('hash_policy')}: not supported; hosts are chosen without a hash`);
  if (m.access_log_options || m.access_log_flush_interval || m.flush_access_log_on_connected) {
    warnings.push(`${p('access_log_options')}: periodic access log flushing is not supported; logs are written at close`);
  }

  const accessLogs: AccessLogConfig[] = [];
  m.access_log.forEach((al, i) => {
    const r = parseAccessLog(al, joinPath(p('access_log'), `[${i}]`));
    if (r.ok) accessLogs.push(r.value);
    else errors.push(...r.errors);
  });

  if (errors.length > 0) return { ok: false, errors };
  const value = deepFreeze<TcpProxyConfig>({
    statPrefix: m.stat_prefix,
    clusters,
    totalWeight: clusters.reduce((s, c) => s + c.weight, 0),
    // Envoy: unset -> 1 h; 0s disables.
    idleTimeoutMs: durationMs(m.idle_timeout, Limits.tcpProxyIdleTimeoutMs),
    maxConnectAttempts: attempts,
    maxDownstreamConnectionDurationMs: durationMs(m.max_downstream_connection_duration, 0),
    accessLogs,
  });
  return warnings.length > 0 ? { ok: true, value, warnings } : { ok: true, value };
}

/** Picks a cluster by weight (`random` in [0, 1)). */
export function pickCluster(config: TcpProxyConfig, random: number = Math.random()): string {
  if (config.clusters.length === 1) return config.clusters[0]!.name;
  let point = Math.floor(random * config.totalWeight);
  for (const c of config.clusters) {
    if (point < c.weight) return c.name;
    point -= c.weight;
  }
  return config.clusters[config.clusters.length - 1]!.name;
}
