// parseCluster: a decoded envoy.config.cluster.v3.Cluster -> a frozen ClusterConfig (main thread).
// Never throws: every problem is a ConfigError naming its field path; unsupported features fail clearly.
// Transport sockets (transport_socket, transport_socket_matches) are parsed by the TLS extension.

import { isIP } from 'node:net';
import type { Cluster__Output } from '../../generated/envoy/config/cluster/v3/Cluster.ts';
import type { ClusterLoadAssignment__Output } from '../../generated/envoy/config/endpoint/v3/ClusterLoadAssignment.ts';
import type { HttpProtocolOptions__Output as UpstreamHttpProtocolOptions } from '../../generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.ts';
import type { Metadata__Output } from '../../generated/envoy/config/core/v3/Metadata.ts';
import type { _envoy_config_endpoint_v3_Endpoint_HealthCheckConfig__Output as Endpoint_HealthCheckConfig__Output } from '../../generated/envoy/config/endpoint/v3/Endpoint.ts';
import type { UpstreamHttpProtocolOptions__Output } from '../../generated/envoy/config/core/v3/UpstreamHttpProtocolOptions.ts';
import type { Http2ProtocolOptions__Output } from '../../generated/envoy/config/core/v3/Http2ProtocolOptions.ts';
import { registry, type ParseContext } from '../../filters/registry.ts';
import { resolveExtension } from '../../config/extension-config.ts';
import { structToJson } from '../../config/struct-json.ts';
import { parseUpstreamTransportSocket } from '../tls/transport-sockets.ts';
import type { UpstreamTlsConfig } from '../tls/context-config.ts';
import type { ConfigError, Result } from '../../config/result.ts';
import { deepFreeze, joinPath, ok } from '../../config/result.ts';
import { durationMs, int64, wrapped } from '../../config/values.ts';
import { unpackAny } from '../../config/decode.ts';
import { Limits } from '../limits.ts';
import { DEFAULT_CIRCUIT_BREAKERS, parseCircuitBreakers } from './circuit-breakers-config.ts';
import { parseOutlierDetection } from './outlier/config.ts';
import { parseHealthChecks } from './health-check/config.ts';
export type { ClusterConfig } from './types.ts';
import { keepaliveOptions } from '../http/h2/keepalive-config.ts';
import type { ClusterConfig, OriginalDstConfig, SourceAddress, DnsLookupFamily, EndpointConfig, EndpointHealthCheck, EndpointMetadata, HostHealth, LbConfig, LbPolicy, LocalityEndpointsConfig, TransportSocketMatchConfig, UpstreamFilterConfig, UpstreamHttp2Options, UpstreamHttpProtocolOptionsConfig, UpstreamProtocol } from './types.ts';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const MAX_RING_SIZE = 8 * 1024 * 1024; // 8M entries, Envoy's upper bound
const DEFAULT_MAGLEV_TABLE_SIZE = 65537; // prime
const MAX_MAGLEV_TABLE_SIZE = 5000011;
const LB_POLICIES: readonly string[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED'];
const DNS_FAMILIES: readonly string[] = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'];

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

function healthOf(status: string): HostHealth {
  switch (status) {
    case 'UNHEALTHY':
    case 'DRAINING':
    case 'TIMEOUT':
      return 'unhealthy';
    case 'DEGRADED':
      return 'degraded';
    default:
      return 'healthy';
  }
}

/** Endpoint.health_check_config; its address must be an IP socket address (Envoy: a direct IP address). */
function endpointHealthCheck(h: Endpoint_HealthCheckConfig__Output, path: string, errors: ConfigError[]): EndpointHealthCheck {
  let address: string | undefined;
  let addressPort = 0;
  if (h.address) {
    const sa = h.address.address === 'socket_address' ? h.address.socket_address : null;
    const apath = joinPath(path, 'address');
    if (!sa) errors.push({ path: apath, reason: 'only a socket_address is supported as a health check address' });
    else if (isIP(sa.address) === 0) errors.push({ path: joinPath(apath, 'socket_address.address'), reason: `malformed IP address: ${sa.address}` });
    else {
      address = sa.address;
      addressPort = sa.port_value ?? 0;
    }
  }
  return { port: h.port_value, address, addressPort, hostname: h.hostname || undefined, disabled: h.disable_active_health_check };
}

/** filter_metadata with each Struct as plain JSON; undefined when there is none. */
function filterMetadata(m: Metadata__Output | null | undefined): EndpointMetadata | undefined {
  const fm = m?.filter_metadata;
  if (!fm) return undefined;
  const keys = Object.keys(fm);
  if (keys.length === 0) return undefined;
  const out: Record<string, Record<string, unknown>> = {};
  for (const k of keys) out[k] = structToJson(fm[k]);
  return out;
}

/**
 * The cluster's `filters`: upstream network filters legate implements (Istio's TCP metadata
 * exchange) are resolved; others are named in a warning and the cluster serves without them (tcp_proxy
 * runs upstream filters; HTTP connections do not).
 */
function parseUpstreamFilters(c: Cluster__Output, path: string, ctx: ParseContext | undefined, errors: ConfigError[], warnings: string[]): UpstreamFilterConfig[] {
  const out: UpstreamFilterConfig[] = [];
  const skipped: string[] = [];
  (c.filters ?? []).forEach((f, i) => {
    const fpath = joinPath(path, `filters[${i}]`);
    const typeUrl = f.typed_config?.type_url;
    if (!registry.find('upstream_network', typeUrl ? typeUrl : undefined, f.name)) return void skipped.push(f.name);
    const r = resolveExtension('upstream_network', { name: f.name, typed_config: f.typed_config }, { clusterNames: undefined, ...ctx, path: fpath });
    if (!r.ok) errors.push(...r.errors);
    else if (!('skipped' in r.value)) out.push({ name: r.value.name, spec: r.value.spec, config: r.value.config });
  });
  if (skipped.length > 0) warnings.push(`${joinPath(path, 'filters')}: upstream network filters are not run by legate (${skipped.join(', ')})`);
  return out;
}

/**
 * A ClusterLoadAssignment (a cluster's `load_assignment`, or an EDS resource) -> localities with
 * their endpoints, for a cluster of `type` ('EDS' for EDS resources). `path` names it in errors.
 */
export function parseClusterLoadAssignment(la: ClusterLoadAssignment__Output, type: string, path: string): Result<LocalityEndpointsConfig[]> {
  const errors: ConfigError[] = [];
  const localities = parseEndpoints(type, la, path, errors);
  return errors.length > 0 ? { ok: false, errors } : ok(localities);
}

function parseEndpoints(type: string, la: ClusterLoadAssignment__Output, path: string, errors: ConfigError[]): LocalityEndpointsConfig[] {
  const out: LocalityEndpointsConfig[] = [];
  la.endpoints.forEach((lle, li) => {
    const lpath = joinPath(path, `endpoints[${li}]`);
    if (lle.lb_config === 'leds_cluster_locality_config') errors.push({ path: joinPath(lpath, 'leds_cluster_locality_config'), reason: 'LEDS is not supported yet' });
    const lbEndpoints = lle.lb_config === 'load_balancer_endpoints' && lle.load_balancer_endpoints ? lle.load_balancer_endpoints.lb_endpoints : lle.lb_endpoints;
    const lw = wrapped(lle.load_balancing_weight);
    if (lw !== undefined && lw < 1) errors.push({ path: joinPath(lpath, 'load_balancing_weight'), reason: 'value must be greater than or equal to 1' });
    const endpoints: EndpointConfig[] = [];
    lbEndpoints.forEach((lbe, ei) => {
      const epath = joinPath(lpath, `lb_endpoints[${ei}]`);
      const w = wrapped(lbe.load_balancing_weight, 1);
      if (w < 1) errors.push({ path: joinPath(epath, 'load_balancing_weight'), reason: 'value must be greater than or equal to 1' });
      if (lbe.host_identifier === 'endpoint_name') {
        errors.push({ path: joinPath(epath, 'endpoint_name'), reason: 'named endpoints are not supported yet' });
        return;
      }
      const ep = lbe.endpoint;
      const addr = ep?.address;
      const apath = joinPath(epath, 'endpoint.address');
      if (!ep || !addr) {
        errors.push({ path: apath, reason: 'an endpoint address is required' });
        return;
      }
      const hostname = ep.hostname || undefined;
      const health = healthOf(String(lbe.health_status));
      const metadata = filterMetadata(lbe.metadata);
      const healthCheck = ep.health_check_config ? endpointHealthCheck(ep.health_check_config, joinPath(epath, 'endpoint.health_check_config'), errors) : undefined;
      const extra = healthCheck ? { healthCheck } : {};
      if (addr.address === 'pipe' && addr.pipe) {
        if (type !== 'STATIC' && type !== 'EDS') errors.push({ path: joinPath(apath, 'pipe'), reason: `pipe addresses are only valid in STATIC clusters, not ${type}` });
        endpoints.push({ address: addr.pipe.path, port: 0, hostname, weight: w, health, pipe: true, metadata, ...extra });
        return;
      }
      const sa = addr.address === 'socket_address' ? addr.socket_address : null;
      if (!sa) {
        errors.push({ path: apath, reason: 'only socket_address and pipe endpoint addresses are supported' });
        return;
      }
      const spath = joinPath(apath, 'socket_address');
      if (sa.port_specifier === 'named_port') errors.push({ path: joinPath(spath, 'named_port'), reason: 'named ports are not supported' });
      if (sa.protocol !== 'TCP') errors.push({ path: joinPath(spath, 'protocol'), reason: `${sa.protocol} endpoints are not supported` });
      if (sa.resolver_name) errors.push({ path: joinPath(spath, 'resolver_name'), reason: 'custom resolvers are not supported' });
      const port = sa.port_value ?? 0;
      if (port < 0 || port > 65535) errors.push({ path: joinPath(spath, 'port_value'), reason: 'value must be less than or equal to 65535' });
      if (!sa.address) errors.push({ path: joinPath(spath, 'address'), reason: 'value length must be at least 1 characters' });
      else if ((type === 'STATIC' || type === 'EDS') && isIP(sa.address) === 0) errors.push({ path: joinPath(spath, 'address'), reason: `malformed IP address: ${sa.address}` });
      const dns = type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
      endpoints.push({ address: sa.address, port, hostname: hostname ?? (dns ? sa.address : undefined), weight: w, health, pipe: false, metadata, ...extra });
    });
    const loc = lle.locality;
    out.push({
      locality: loc ? { region: loc.region, zone: loc.zone, subZone: loc.sub_zone } : undefined,
      weight: lw,
      priority: lle.priority,
      endpoints,
      metadata: filterMetadata(lle.metadata),
    });
  });
  if (type === 'LOGICAL_DNS') {
    const n = out.reduce((s, l) => s + l.endpoints.length, 0);
    if (out.length !== 1 || n !== 1) errors.push({ path, reason: 'LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint' });
  }
  // Envoy requires priorities to be contiguous from 0 (a gap would leave an empty level).
  const prios = [...new Set(out.map((l) => l.priority))].sort((a, b) => a - b);
  prios.forEach((p, i) => {
    if (p !== i) errors.push({ path: joinPath(path, 'endpoints'), reason: `unexpected non-zero priority or gap in priorities: ${p}` });
  });
  return out;
}

function parseLb(c: Cluster__Output, path: string, errors: ConfigError[]): LbConfig {
  const policy = String(c.lb_policy);
  if (!LB_POLICIES.includes(policy)) errors.push({ path: joinPath(path, 'lb_policy'), reason: `lb_policy ${policy} is not supported` });
  const lr = c.least_request_lb_config ?? null;
  const choiceCount = wrapped(lr?.choice_count, 2);
  if (choiceCount < 2) errors.push({ path: joinPath(path, 'least_request_lb_config.choice_count'), reason: 'value must be greater than or equal to 2' });
  const rh = c.ring_hash_lb_config ?? null;
  const minRingSize = int64(wrapped(rh?.minimum_ring_size), 1024);
  const maxRingSize = int64(wrapped(rh?.maximum_ring_size), MAX_RING_SIZE);
  if (rh) {
    if (minRingSize > MAX_RING_SIZE) errors.push({ path: joinPath(path, 'ring_hash_lb_config.minimum_ring_size'), reason: `value must be less than or equal to ${MAX_RING_SIZE}` });
    if (maxRingSize > MAX_RING_SIZE) errors.push({ path: joinPath(path, 'ring_hash_lb_config.maximum_ring_size'), reason: `value must be less than or equal to ${MAX_RING_SIZE}` });
    if (minRingSize > maxRingSize) errors.push({ path: joinPath(path, 'ring_hash_lb_config'), reason: `ring hash: minimum_ring_size (${minRingSize}) > maximum_ring_size (${maxRingSize})` });
    if (String(rh.hash_function) !== 'XX_HASH') errors.push({ path: joinPath(path, 'ring_hash_lb_config.hash_function'), reason: `hash function ${rh.hash_function} is not supported (only XX_HASH)` });
  }
  const mg = c.maglev_lb_config ?? null;
  const maglevTableSize = int64(wrapped(mg?.table_size), DEFAULT_MAGLEV_TABLE_SIZE);
  if (maglevTableSize > MAX_MAGLEV_TABLE_SIZE) errors.push({ path: joinPath(path, 'maglev_lb_config.table_size'), reason: `value must be less than or equal to ${MAX_MAGLEV_TABLE_SIZE}` });
  else if (!isPrime(maglevTableSize)) errors.push({ path: joinPath(path, 'maglev_lb_config.table_size'), reason: 'The table size of maglev must be prime number' });
  const common = c.common_lb_config;
  const panic = common?.healthy_panic_threshold ? common.healthy_panic_threshold.value : 50;
  if (panic < 0 || panic > 100) errors.push({ path: joinPath(path, 'common_lb_config.healthy_panic_threshold.value'), reason: 'value must be inside range [0, 100]' });
  if (common?.locality_config_specifier === 'zone_aware_lb_config' && common.zone_aware_lb_config) {
    // Zone-aware routing needs the local cluster; without it Envoy falls back to plain balancing too.
  }
  const op = wrapped(c.load_assignment?.policy?.overprovisioning_factor, 140);
  if (op < 1) errors.push({ path: joinPath(path, 'load_assignment.policy.overprovisioning_factor'), reason: 'value must be greater than 0' });
  return {
    policy: policy as LbPolicy,
    choiceCount,
    activeRequestBias: lr?.active_request_bias ? lr.active_request_bias.default_value : 1.0,
    minRingSize,
    maxRingSize,
    maglevTableSize,
    panicThresholdPercent: panic,
    overprovisioningFactor: op,
    useHostnameForHashing: common?.consistent_hashing_lb_config?.use_hostname_for_hashing ?? false,
    localityWeighted: common?.locality_config_specifier === 'locality_weighted_lb_config',
  };
}

interface ProtocolChoice {
  protocol: UpstreamProtocol | 'downstream';
  idleTimeoutMs: number;
  maxStreamDurationMs: number;
  maxRequestsPerConnection: number;
  upstream: UpstreamHttpProtocolOptionsConfig | undefined;
  http2: UpstreamHttp2Options;
}

/** http2_protocol_options of an HTTP/2 cluster (their ranges are checked when the config is decoded): what legate's HTTP/2 client announces and how many streams it opens per connection. */
function http2Options(o: Http2ProtocolOptions__Output | null | undefined): UpstreamHttp2Options {
  const keepalive = keepaliveOptions(o?.connection_keepalive);
  return {
    maxConcurrentStreams: wrapped(o?.max_concurrent_streams, Limits.http2MaxConcurrentStreams),
    initialStreamWindowSize: wrapped(o?.initial_stream_window_size, Limits.http2InitialStreamWindowSize),
    initialConnectionWindowSize: wrapped(o?.initial_connection_window_size, Limits.http2InitialConnectionWindowSize),
    ...(keepalive ? { keepalive } : {}),
  };
}

function upstreamOptions(o: UpstreamHttpProtocolOptions__Output | null | undefined): UpstreamHttpProtocolOptionsConfig | undefined {
  if (!o) return undefined;
  return { autoSni: o.auto_sni, autoSanValidation: o.auto_san_validation, overrideAutoSniHeader: o.override_auto_sni_header.toLowerCase() };
}

function parseProtocol(c: Cluster__Output, path: string, errors: ConfigError[], warnings: string[]): ProtocolChoice {
  let protocol: UpstreamProtocol | 'downstream' = c.http2_protocol_options ? 'http2' : 'http1';
  if (String(c.protocol_selection) === 'USE_DOWNSTREAM_PROTOCOL') protocol = 'downstream';
  let common = c.common_http_protocol_options;
  let maxRequests = wrapped(c.max_requests_per_connection, 0);
  // The deprecated cluster field, unless HttpProtocolOptions carries its own.
  let upstream = upstreamOptions(c.upstream_http_protocol_options);
  let h2o: Http2ProtocolOptions__Output | null | undefined = c.http2_protocol_options;
  for (const [key, any] of Object.entries(c.typed_extension_protocol_options)) {
    const kpath = joinPath(path, `typed_extension_protocol_options["${key}"]`);
    if (key !== HTTP_PROTOCOL_OPTIONS && !any.type_url.endsWith(`/${HTTP_PROTOCOL_OPTIONS}`)) {
      warnings.push(`${kpath}: protocol options ${key} are not supported; ignored`);
      continue;
    }
    const r = unpackAny<UpstreamHttpProtocolOptions>(any, kpath);
    if (!r.ok) {
      errors.push(...r.errors);
      continue;
    }
    if (r.value.typeName !== HTTP_PROTOCOL_OPTIONS) {
      errors.push({ path: kpath, reason: `expected ${HTTP_PROTOCOL_OPTIONS}, got ${r.value.typeName}` });
      continue;
    }
    const o = r.value.message;
    if (o.upstream_protocol_options === 'explicit_http_config' && o.explicit_http_config) {
      const which = o.explicit_http_config.protocol_config;
      if (which === 'http3_protocol_options') errors.push({ path: joinPath(kpath, 'explicit_http_config.http3_protocol_options'), reason: 'HTTP/3 upstreams are not supported' });
      protocol = which === 'http2_protocol_options' ? 'http2' : 'http1';
      if (which === 'http2_protocol_options') h2o = o.explicit_http_config.http2_protocol_options;
    } else if (o.upstream_protocol_options === 'use_downstream_protocol_config') {
      protocol = 'downstream';
    } else if (o.upstream_protocol_options === 'auto_config') {
      // Over plaintext Envoy's auto config speaks HTTP/1.1 too; over TLS legate does not choose by ALPN yet.
      warnings.push(`${joinPath(kpath, 'auto_config')}: protocol selection by ALPN is not supported; using HTTP/1.1`);
      protocol = 'http1';
    } else {
      errors.push({ path: kpath, reason: 'one of explicit_http_config, use_downstream_protocol_config or auto_config is required' });
    }
    if (o.http_filters.length > 0) errors.push({ path: joinPath(kpath, 'http_filters'), reason: 'upstream HTTP filters are not supported yet' });
    if (o.common_http_protocol_options) common = o.common_http_protocol_options;
    if (o.upstream_http_protocol_options) upstream = upstreamOptions(o.upstream_http_protocol_options);
  }
  if (common?.max_requests_per_connection) maxRequests = common.max_requests_per_connection.value;
  return { protocol, idleTimeoutMs: durationMs(common?.idle_timeout, Limits.connectionIdleTimeoutMs), maxStreamDurationMs: durationMs(common?.max_stream_duration, 0), maxRequestsPerConnection: maxRequests, upstream, http2: http2Options(h2o) };
}

interface TransportSockets {
  readonly default: UpstreamTlsConfig | undefined;
  readonly matches: TransportSocketMatchConfig[];
  readonly all: UpstreamTlsConfig[];
}

/** transport_socket and transport_socket_matches, each through the TLS extension (raw_buffer -> undefined). */
function parseTransportSockets(c: Cluster__Output, path: string, ctx: ParseContext | undefined, errors: ConfigError[], warnings: string[]): TransportSockets {
  const all: UpstreamTlsConfig[] = [];
  const one = (ts: Cluster__Output['transport_socket'], p: string): UpstreamTlsConfig | undefined => {
    const r = parseUpstreamTransportSocket(ts, { path: p, clusterNames: ctx?.clusterNames, ...(ctx?.tls ? { tls: ctx.tls } : {}) });
    if (!r.ok) {
      errors.push(...r.errors);
      return undefined;
    }
    if (r.warnings) warnings.push(...r.warnings);
    if (r.value) all.push(r.value);
    return r.value;
  };
  const def = c.transport_socket ? one(c.transport_socket, joinPath(path, 'transport_socket')) : undefined;
  const matches = c.transport_socket_matches.map((m, i): TransportSocketMatchConfig => {
    const mpath = joinPath(path, `transport_socket_matches[${i}]`);
    if (!m.transport_socket) errors.push({ path: joinPath(mpath, 'transport_socket'), reason: 'a transport_socket is required' });
    const tls = m.transport_socket ? one(m.transport_socket, joinPath(mpath, 'transport_socket')) : undefined;
    return { name: m.name, match: m.match ? structToJson(m.match) : {}, tls };
  });
  return { default: def, matches, all };
}

/**
 * upstream_bind_config: the source address (and port, 0 = any) upstream connections are made from,
 * as Istio's inbound passthrough clusters bind 127.0.0.6. What Node's sockets cannot do (freebind,
 * socket options, more source addresses) is refused with its field path.
 */
function parseBindConfig(b: Cluster__Output['upstream_bind_config'], path: string, errors: ConfigError[]): SourceAddress | undefined {
  if (!b) return undefined;
  const unsupported: Array<[boolean, string]> = [
    [b.freebind?.value === true, 'freebind'],
    [b.socket_options.length > 0, 'socket_options'],
    [b.additional_source_addresses.length > 0, 'additional_source_addresses'],
    [b.extra_source_addresses.length > 0, 'extra_source_addresses'],
    [b.local_address_selector !== null, 'local_address_selector'],
  ];
  for (const [set, field] of unsupported) if (set) errors.push({ path: joinPath(path, field), reason: 'not supported (Node sockets cannot set it)' });
  const sa = b.source_address;
  if (!sa) {
    errors.push({ path: joinPath(path, 'source_address'), reason: 'value is required' });
    return undefined;
  }
  if (isIP(sa.address) === 0) errors.push({ path: joinPath(path, 'source_address.address'), reason: `malformed IP address: ${sa.address}` });
  return { address: sa.address, port: sa.port_value ?? 0 };
}

/** Cluster.cleanup_interval's default: how long an ORIGINAL_DST host may go unused. */
const ORIGINAL_DST_CLEANUP_MS = 5_000; // 5 s

/**
 * ORIGINAL_DST's rules (Envoy's): lb_policy CLUSTER_PROVIDED, which no other type may use, no
 * endpoints of its own; original_dst_lb_config (the header, a port override) and cleanup_interval.
 */
function parseOriginalDst(c: Cluster__Output, type: string, path: string, errors: ConfigError[]): OriginalDstConfig | undefined {
  const provided = String(c.lb_policy) === 'CLUSTER_PROVIDED';
  if (type !== 'ORIGINAL_DST') {
    if (provided) errors.push({ path: joinPath(path, 'lb_policy'), reason: `lb_policy CLUSTER_PROVIDED is not valid for cluster type ${type}: only ORIGINAL_DST clusters provide their own load balancer` });
    return undefined;
  }
  if (!provided) errors.push({ path: joinPath(path, 'lb_policy'), reason: `cluster type ORIGINAL_DST may only be used with lb_policy CLUSTER_PROVIDED (got ${String(c.lb_policy)})` });
  if (c.load_assignment && c.load_assignment.endpoints.length > 0) errors.push({ path: joinPath(path, 'load_assignment'), reason: 'ORIGINAL_DST clusters must have no load assignment configured' });
  const o = c.lb_config === 'original_dst_lb_config' ? c.original_dst_lb_config : null;
  const opath = joinPath(path, 'original_dst_lb_config');
  if (o?.metadata_key) errors.push({ path: joinPath(opath, 'metadata_key'), reason: 'taking the destination from metadata is not supported' });
  const port = o?.upstream_port_override?.value; // PGV: lte 65535
  const cleanupIntervalMs = durationMs(c.cleanup_interval, ORIGINAL_DST_CLEANUP_MS);
  if (c.cleanup_interval && cleanupIntervalMs <= 0) errors.push({ path: joinPath(path, 'cleanup_interval'), reason: 'value must be greater than 0s' });
  return {
    useHttpHeader: o?.use_http_header ?? false,
    httpHeaderName: (o?.http_header_name || 'x-envoy-original-dst-host').toLowerCase(),
    upstreamPortOverride: port,
    cleanupIntervalMs,
  };
}

/** The EDS resource name an EDS cluster subscribes to: eds_cluster_config.service_name, else the cluster's name. */
export function edsServiceName(c: Cluster__Output): string {
  return c.eds_cluster_config?.service_name || c.name;
}

/**
 * Validates one Cluster; `path` names it in errors (`static_resources.clusters[0]`). `ctx` brings the
 * TLS hooks (static secrets, SDS references) its transport sockets may use.
 */
export function parseCluster(c: Cluster__Output, path: string, ctx?: ParseContext): Result<ClusterConfig> {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  if (!c.name) errors.push({ path: joinPath(path, 'name'), reason: 'value length must be at least 1 characters' });
  const upstreamFilters = parseUpstreamFilters(c, path, ctx, errors, warnings);
  let type = 'STATIC';
  if (c.cluster_discovery_type === 'cluster_type') {
    errors.push({ path: joinPath(path, 'cluster_type'), reason: `custom cluster type ${c.cluster_type?.name ?? ''} is not supported` });
  } else if (c.type !== undefined) {
    type = String(c.type);
  }
  const originalDst = parseOriginalDst(c, type, path, errors);
  const sourceAddress = parseBindConfig(c.upstream_bind_config, joinPath(path, 'upstream_bind_config'), errors);
  // EDS: the main thread subscribes to eds_config; endpoints arrive later (setEndpoints on each worker).
  if (type === 'EDS') {
    if (!c.eds_cluster_config) errors.push({ path: joinPath(path, 'eds_cluster_config'), reason: 'cannot create an EDS cluster without an EDS config' });
    else if (!c.eds_cluster_config.eds_config) errors.push({ path: joinPath(path, 'eds_cluster_config.eds_config'), reason: 'value is required' });
  }
  const connectTimeoutMs = durationMs(c.connect_timeout, Limits.connectTimeoutMs);
  if (c.connect_timeout && connectTimeoutMs <= 0) errors.push({ path: joinPath(path, 'connect_timeout'), reason: 'value must be greater than 0s' });
  const dnsRefreshRateMs = durationMs(c.dns_refresh_rate, Limits.dnsRefreshRateMs);
  if (c.dns_refresh_rate && dnsRefreshRateMs < 1) errors.push({ path: joinPath(path, 'dns_refresh_rate'), reason: 'value must be greater than 1ms' });
  const family = String(c.dns_lookup_family);
  if (!DNS_FAMILIES.includes(family)) errors.push({ path: joinPath(path, 'dns_lookup_family'), reason: `unknown dns_lookup_family ${family}` });
  const sockets = parseTransportSockets(c, path, ctx, errors, warnings);
  // An EDS cluster's load_assignment is ignored: its endpoints come from the ClusterLoadAssignment resource.
  const localities = c.load_assignment && type !== 'EDS' ? parseEndpoints(type, c.load_assignment, joinPath(path, 'load_assignment'), errors) : [];
  if (type === 'LOGICAL_DNS' && !c.load_assignment) errors.push({ path: joinPath(path, 'load_assignment'), reason: 'LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint' });
  const lb = parseLb(c, path, errors);
  const proto = parseProtocol(c, path, errors, warnings);
  const breakers = parseCircuitBreakers(c.circuit_breakers, joinPath(path, 'circuit_breakers'));
  if (!breakers.ok) errors.push(...breakers.errors);
  else if (breakers.warnings) warnings.push(...breakers.warnings);
  const circuitBreakers = breakers.ok ? breakers.value : DEFAULT_CIRCUIT_BREAKERS;
  const outlierDetection = c.outlier_detection ? parseOutlierDetection(c.outlier_detection, joinPath(path, 'outlier_detection'), errors) : undefined;
  const healthCheck = parseHealthChecks(c.health_checks, joinPath(path, 'health_checks'), errors);
  if (errors.length > 0) return { ok: false, errors };
  const statName = c.alt_stat_name || c.name;
  const config: ClusterConfig = {
    name: c.name,
    type,
    lbPolicy: lb.policy,
    connectTimeoutMs,
    perConnectionBufferLimitBytes: wrapped(c.per_connection_buffer_limit_bytes, Limits.perConnectionBufferLimitBytes),
    protocol: proto.protocol,
    idleTimeoutMs: proto.idleTimeoutMs,
    maxStreamDurationMs: proto.maxStreamDurationMs,
    http2: proto.http2,
    statPrefix: `cluster.${statName}.`,
    ...(type === 'EDS' ? { edsServiceName: edsServiceName(c) } : {}),
    ...(originalDst ? { originalDst } : {}),
    ...(sourceAddress ? { sourceAddress } : {}),
    localities,
    lb,
    dnsLookupFamily: family as DnsLookupFamily,
    dnsRefreshRateMs,
    maxConnections: circuitBreakers.DEFAULT.maxConnections,
    circuitBreakers,
    maxRequestsPerConnection: proto.maxRequestsPerConnection,
    ...(outlierDetection ? { outlierDetection } : {}),
    ...(healthCheck ? { healthCheck } : {}),
    ...(proto.upstream ? { upstreamHttpProtocolOptions: proto.upstream } : {}),
    ...(c.metadata ? { metadata: filterMetadata(c.metadata) } : {}),
    ...(upstreamFilters.length > 0 ? { upstreamFilters } : {}),
    tlsContexts: sockets.all,
    transportSocket: sockets.default,
    transportSocketMatches: sockets.matches,
  };
  return warnings.length > 0 ? { ok: true, value: deepFreeze(config), warnings } : { ok: true, value: deepFreeze(config) };
}
