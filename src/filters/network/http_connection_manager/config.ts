// HttpConnectionManager (envoy.extensions.filters.network.http_connection_manager.v3) -> a frozen
// HcmConfig with Envoy's defaults. Every problem is a ConfigError naming its field path.

import { deepFreeze, fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { decodeJson, unpackAny } from '../../../config/decode.ts';
import { durationMs, wrapped } from '../../../config/values.ts';
import type { HttpConnectionManager__Output } from '../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import type { HttpFilter__Output } from '../../../generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.ts';
import { registry as globalRegistry, type ExtensionRegistry, type ParseContext, type RouteSource } from '../../registry.ts';
import { compileRouteTable } from '../../../proxy/http/route-table.ts';
import { FixedRouteSource } from '../../../proxy/http/route-source.ts';
import { parseAccessLog, type AccessLogConfig } from '../../../proxy/access-log/index.ts';
import { parseLocalReplyConfig } from '../../../proxy/http/local-reply.ts';
import { parseCidr } from '../../../proxy/http/request-headers.ts';
import { parseOriginalIpDetection, type OriginalIpDetector } from '../../../proxy/http/original-ip.ts';
import { Limits } from '../../../proxy/limits.ts';
import { keepaliveOptions } from '../../../proxy/http/h2/keepalive-config.ts';
import { logger } from '../../../proxy/log.ts';
import type { Cidr, ClientCertDetail, EscapedSlashesAction, HcmConfig, HttpFilterEntry, UpgradeConfig } from '../../../proxy/http/hcm-config.ts';

export type { HcmConfig } from '../../../proxy/http/hcm-config.ts';

const log = logger('config');

/** Filters Envoy knows to be terminal, for specs that do not say `terminal: true` themselves. */
const TERMINAL_HTTP_FILTERS = new Set(['envoy.filters.http.router', 'envoy.filters.http.upstream_codec']);

const DEFAULT_H2_WINDOW = 1024 * 1024; // 1 MiB: legate's default (Envoy: 256 MiB), bounds per-stream buffering

function isTerminal(spec: { name: string }): boolean {
  return TERMINAL_HTTP_FILTERS.has(spec.name) || (spec as { terminal?: unknown }).terminal === true;
}

/** http_filters (or an upgrade config's filters) -> entries; checks that the last one, and only it, is terminal. */
export function parseHttpFilters(filters: readonly HttpFilter__Output[], path: string, ctx: ParseContext, reg: ExtensionRegistry = globalRegistry): Result<HttpFilterEntry[]> {
  const errors: ConfigError[] = [];
  const out: HttpFilterEntry[] = [];
  const warnings: string[] = [];
  filters.forEach((f, i) => {
    const p = joinPath(path, `[${i}]`);
    if (f.disabled) {
      // Disabled filters only run where a route enables them; legate has no per-route enabling yet.
      warnings.push(`${p}: filter "${f.name}" is disabled and skipped`);
      return;
    }
    if (f.config_type === 'config_discovery') return void errors.push({ path: joinPath(p, 'config_discovery'), reason: 'extension config discovery (ECDS) is not supported yet' });
    const typeUrl = f.typed_config?.type_url || undefined;
    const spec = reg.find('http', typeUrl, typeUrl ? undefined : f.name);
    if (!spec) {
      if (f.is_optional) {
        const w = `${p}: skipping unknown optional HTTP filter "${f.name}" (${typeUrl ?? ''})`;
        log.warn(w);
        warnings.push(w);
        return;
      }
      return void errors.push({ path: p, reason: `unknown HTTP filter "${f.name}" (${typeUrl ?? ''})` });
    }
    let message: unknown;
    const cfgPath = typeUrl ? joinPath(p, 'typed_config') : p;
    if (f.typed_config && typeUrl) {
      const any = unpackAny(f.typed_config, cfgPath);
      if (!any.ok) return void errors.push(...any.errors);
      message = any.value.message;
    } else {
      const d = decodeJson(spec.protoType, {}, { path: p });
      if (!d.ok) return void errors.push(...d.errors);
      message = d.value;
    }
    const parsed = spec.parse(message, { ...ctx, path: cfgPath });
    if (!parsed.ok) return void errors.push(...parsed.errors);
    if (parsed.warnings) warnings.push(...parsed.warnings);
    out.push({ name: f.name || spec.name, spec, config: parsed.value, terminal: isTerminal(spec) });
  });
  if (errors.length > 0) return { ok: false, errors };
  if (out.length === 0) return fail(path, 'at least one HTTP filter is required, and the last one must be terminal (e.g. envoy.filters.http.router)');
  for (let i = 0; i < out.length; i++) {
    const e = out[i]!;
    const last = i === out.length - 1;
    if (e.terminal && !last) return fail(path, `terminal filter named ${e.name} of type ${e.spec.protoType} must be the last filter in a http filter chain.`);
    if (!e.terminal && last) return fail(path, `non-terminal filter named ${e.name} of type ${e.spec.protoType} is the last filter in a http filter chain.`);
  }
  return warnings.length ? { ok: true, value: out, warnings } : ok(out);
}

export function parseHttpConnectionManager(msg: HttpConnectionManager__Output, ctx: ParseContext): Result<HcmConfig> {
  const path = ctx.path;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const at = (f: string): string => joinPath(path, f);

  if (msg.codec_type === 'HTTP3') errors.push({ path: at('codec_type'), reason: 'HTTP/3 is not supported' });
  const codecType = msg.codec_type === 'HTTP1' || msg.codec_type === 'HTTP2' ? msg.codec_type : 'AUTO';
  if (!msg.stat_prefix) errors.push({ path: at('stat_prefix'), reason: 'value length must be at least 1 characters' });

  let routes: RouteSource | undefined;
  switch (msg.route_specifier) {
    case 'route_config': {
      const rt = compileRouteTable(msg.route_config!, { path: at('route_config'), clusterNames: ctx.clusterNames });
      if (!rt.ok) errors.push(...rt.errors);
      else routes = new FixedRouteSource(msg.route_config!.name, rt.value);
      break;
    }
    case 'rds': {
      const rds = msg.rds!;
      const rpath = at('rds');
      if (!rds.config_source) errors.push({ path: joinPath(rpath, 'config_source'), reason: 'value is required' });
      if (!rds.route_config_name) errors.push({ path: joinPath(rpath, 'route_config_name'), reason: 'value length must be at least 1 characters' });
      else if (!ctx.rds) errors.push({ path: rpath, reason: 'rds is not supported yet in this context: route discovery needs the xDS client (dynamic_resources)' });
      else if (rds.config_source) routes = ctx.rds({ routeConfigName: rds.route_config_name, configSource: rds.config_source, path: rpath });
      break;
    }
    case 'scoped_routes':
      errors.push({ path: at('scoped_routes'), reason: 'scoped_routes is not supported yet' });
      break;
    default:
      errors.push({ path, reason: 'one of rds, route_config, scoped_routes is required' });
  }

  const filters = parseHttpFilters(msg.http_filters, at('http_filters'), ctx);
  if (!filters.ok) errors.push(...filters.errors);
  else if (filters.warnings) warnings.push(...filters.warnings);

  const upgradeConfigs: UpgradeConfig[] = [];
  msg.upgrade_configs.forEach((u, i) => {
    const p = at(`upgrade_configs[${i}]`);
    let uf: HttpFilterEntry[] | undefined;
    if (u.filters.length > 0) {
      const r = parseHttpFilters(u.filters, joinPath(p, 'filters'), ctx);
      if (!r.ok) return void errors.push(...r.errors);
      uf = r.value;
    }
    upgradeConfigs.push({ upgradeType: u.upgrade_type.toLowerCase(), enabled: wrapped(u.enabled, true), filters: uf });
  });

  const localReply = parseLocalReplyConfig(msg.local_reply_config, at('local_reply_config'));
  if (!localReply.ok) errors.push(...localReply.errors);

  const accessLogs: AccessLogConfig[] = [];
  msg.access_log.forEach((al, i) => {
    const r = parseAccessLog(al, at(`access_log[${i}]`));
    if (!r.ok) errors.push(...r.errors);
    else accessLogs.push(r.value);
  });

  let internalAddresses: Cidr[] | undefined;
  const iac = msg.internal_address_config;
  if (iac && iac.cidr_ranges.length > 0) {
    internalAddresses = [];
    iac.cidr_ranges.forEach((c, i) => {
      const cidr = parseCidr(c.address_prefix, wrapped(c.prefix_len, 0));
      if (!cidr) errors.push({ path: at(`internal_address_config.cidr_ranges[${i}]`), reason: `malformed CIDR range ${c.address_prefix}/${wrapped(c.prefix_len, 0)}` });
      else internalAddresses!.push(cidr);
    });
  }

  let originalIpDetection: OriginalIpDetector[] | undefined;
  if (msg.original_ip_detection_extensions.length > 0) {
    const oip = at('original_ip_detection_extensions');
    // Envoy: "Original IP detection extensions and use_remote_address may not be mixed" (nor xff_num_trusted_hops).
    if (wrapped(msg.use_remote_address, false)) errors.push({ path: oip, reason: 'original IP detection extensions and use_remote_address may not be mixed' });
    if (msg.xff_num_trusted_hops > 0) errors.push({ path: oip, reason: 'original IP detection extensions and xff_num_trusted_hops may not be mixed' });
    const d = parseOriginalIpDetection(msg.original_ip_detection_extensions, oip);
    if (d.ok) originalIpDetection = d.value;
    else errors.push(...d.errors);
  }

  const cpo = msg.common_http_protocol_options;
  const h1o = msg.http_protocol_options;
  const h2o = msg.http2_protocol_options;
  const maxKb = wrapped(msg.max_request_headers_kb, Limits.maxRequestHeadersKb);
  if (maxKb < 1 || maxKb > 8192) errors.push({ path: at('max_request_headers_kb'), reason: 'value must be inside range [1, 8192]' });
  const maxHeadersCount = wrapped(cpo?.max_headers_count, Limits.maxHeadersCount);
  if (maxHeadersCount < 1) errors.push({ path: at('common_http_protocol_options.max_headers_count'), reason: 'value must be greater than or equal to 1' });
  if (h1o?.accept_http_10 === false && h1o.default_host_for_http_10) {
    errors.push({ path: at('http_protocol_options.default_host_for_http_10'), reason: 'set without accept_http_10' });
  }
  if (errors.length > 0) return { ok: false, errors };

  // Envoy's order: Cert, Chain, Subject, URI, DNS (HttpConnectionManagerConfig).
  const sccd = msg.set_current_client_cert_details;
  const certDetails: ClientCertDetail[] = [];
  if (sccd?.cert) certDetails.push('Cert');
  if (sccd?.chain) certDetails.push('Chain');
  if (wrapped(sccd?.subject, false)) certDetails.push('Subject');
  if (sccd?.uri) certDetails.push('URI');
  if (sccd?.dns) certDetails.push('DNS');

  const escaped = msg.path_with_escaped_slashes_action;
  const cfg: HcmConfig = {
    statPrefix: msg.stat_prefix,
    codecType,
    routes: routes!,
    httpFilters: filters.ok ? filters.value : [],
    serverName: msg.server_name || 'envoy',
    serverHeaderTransformation: msg.server_header_transformation,
    useRemoteAddress: wrapped(msg.use_remote_address, false),
    xffNumTrustedHops: msg.xff_num_trusted_hops,
    appendXForwardedPort: msg.append_x_forwarded_port,
    schemeToOverwrite: msg.scheme_header_transformation?.scheme_to_overwrite || undefined,
    schemeMatchUpstream: msg.scheme_header_transformation?.match_upstream === true,
    originalIpDetection,
    skipXffAppend: msg.skip_xff_append,
    via: msg.via,
    generateRequestId: wrapped(msg.generate_request_id, true),
    preserveExternalRequestId: msg.preserve_external_request_id,
    alwaysSetRequestIdInResponse: msg.always_set_request_id_in_response,
    idleTimeoutMs: durationMs(cpo?.idle_timeout, Limits.connectionIdleTimeoutMs),
    maxHeadersCount,
    headersWithUnderscoresAction: cpo?.headers_with_underscores_action ?? 'ALLOW',
    maxRequestHeadersKb: maxKb,
    streamIdleTimeoutMs: durationMs(msg.stream_idle_timeout, Limits.streamIdleTimeoutMs),
    requestTimeoutMs: durationMs(msg.request_timeout, Limits.requestTimeoutMs),
    requestHeadersTimeoutMs: durationMs(msg.request_headers_timeout, Limits.requestHeadersTimeoutMs),
    drainTimeoutMs: durationMs(msg.drain_timeout, 5000),
    delayedCloseMs: durationMs(msg.delayed_close_timeout, 1000),
    maxConnectionDurationMs: durationMs(cpo?.max_connection_duration, 0),
    maxStreamDurationMs: durationMs(cpo?.max_stream_duration, 0),
    maxRequestsPerConnection: wrapped(cpo?.max_requests_per_connection, 0),
    normalizePath: wrapped(msg.normalize_path, false),
    mergeSlashes: msg.merge_slashes,
    pathWithEscapedSlashesAction: (escaped === 'IMPLEMENTATION_SPECIFIC_DEFAULT' ? 'KEEP_UNCHANGED' : escaped) as EscapedSlashesAction,
    stripAnyHostPort: msg.strip_port_mode === 'strip_any_host_port' && msg.strip_any_host_port === true,
    stripMatchingHostPort: msg.strip_matching_host_port,
    stripTrailingHostDot: msg.strip_trailing_host_dot,
    upgradeConfigs,
    localReply: localReply.ok ? localReply.value : { mappers: [], bodyFormat: undefined },
    accessLogs,
    http2: {
      maxConcurrentStreams: Math.min(wrapped(h2o?.max_concurrent_streams, Limits.http2MaxConcurrentStreams), 2 ** 32 - 1),
      initialStreamWindowSize: wrapped(h2o?.initial_stream_window_size, DEFAULT_H2_WINDOW),
      initialConnectionWindowSize: wrapped(h2o?.initial_connection_window_size, DEFAULT_H2_WINDOW),
      allowConnect: h2o?.allow_connect ?? false,
      keepalive: keepaliveOptions(h2o?.connection_keepalive),
    },
    http1: {
      acceptHttp10: h1o?.accept_http_10 ?? false,
      defaultHostForHttp10: h1o?.default_host_for_http_10 ?? '',
      enableTrailers: h1o?.enable_trailers ?? false,
      allowAbsoluteUrl: wrapped(h1o?.allow_absolute_url, true),
    },
    internalAddresses,
    bufferLimitBytes: Limits.perConnectionBufferLimitBytes,
    proxy100Continue: msg.proxy_100_continue,
    forwardClientCertDetails: msg.forward_client_cert_details,
    setCurrentClientCertDetails: certDetails,
  };
  const frozen = deepFreezeConfig(cfg);
  return warnings.length ? { ok: true, value: frozen, warnings } : ok(frozen);
}

/** Freezes the config's own data, not the shared registry specs nor the route source (a live RDS entry) inside it. */
function deepFreezeConfig(cfg: HcmConfig): HcmConfig {
  for (const k of ['http2', 'http1'] as const) deepFreeze(cfg[k]);
  Object.freeze(cfg.upgradeConfigs);
  Object.freeze(cfg.httpFilters);
  Object.freeze(cfg.accessLogs);
  Object.freeze(cfg.setCurrentClientCertDetails);
  if (cfg.originalIpDetection) Object.freeze(cfg.originalIpDetection);
  return Object.freeze(cfg);
}
