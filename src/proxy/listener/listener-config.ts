// Parses an Envoy Listener into legate's listener config: address, filter-chain matcher,
// listener filters, each chain's network filters (resolved against the registry) and its
// transport socket (plaintext or `envoy.transport_sockets.tls`). Fails with field paths; the same
// parse runs on the main thread (validate) and on workers.

import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { FilterChain__Output } from '../../generated/envoy/config/listener/v3/FilterChain.ts';
import type { Address__Output } from '../../generated/envoy/config/core/v3/Address.ts';
import { fail, ok, joinPath, type ConfigError, type Result } from '../../config/result.ts';
import { durationMs, wrapped } from '../../config/values.ts';
import { resolveExtension, type ResolvedExtension } from '../../config/extension-config.ts';
import { registry, type ParseContext } from '../../filters/registry.ts';
import { compileFilterChainMatcher, type FilterChainMatcher } from './filter-chain-match.ts';
import { compileFilterDisabled, type ListenerFilterDisabled } from './listener-filters.ts';
import { Limits } from '../limits.ts';
import { parseDownstreamTransportSocket, type DownstreamTlsConfig } from '../tls/transport-sockets.ts';
import { ORIGINAL_DST_FILTER } from '../../filters/listener/original_dst/index.ts';

export interface SocketAddr {
  readonly host: string;
  readonly port: number;
  readonly ipv4Compat: boolean;
}

export interface ChainConfig {
  readonly name: string;
  /** Network filters in order; the last is terminal (http_connection_manager, tcp_proxy). */
  readonly filters: readonly ResolvedExtension[];
  /** The chain's DownstreamTlsContext; undefined = plaintext (raw_buffer). */
  readonly tls: DownstreamTlsConfig | undefined;
  /** transport_socket_connect_timeout, ms; 0 = none set (Envoy: no timeout; legate's TLS core bounds handshakes itself). */
  readonly transportSocketConnectTimeoutMs: number;
}

export interface ListenerConfig {
  readonly name: string;
  readonly address: SocketAddr;
  /** `listener.<statPrefix>.` -- Envoy uses `address_port` (e.g. `0.0.0.0_10000`) unless stat_prefix is set. */
  readonly statPrefix: string;
  readonly matcher: FilterChainMatcher;
  readonly chains: ReadonlyMap<FilterChain__Output, ChainConfig>;
  readonly listenerFilters: ReadonlyArray<{ readonly ext: ResolvedExtension; readonly disabled: ListenerFilterDisabled | undefined }>;
  readonly listenerFiltersTimeoutMs: number;
  readonly continueOnListenerFiltersTimeout: boolean;
  readonly perConnectionBufferLimitBytes: number;
  /**
   * use_original_dst: a connection whose original destination was restored is handed to the
   * listener bound (or not bound: bind_to_port false) to that address, when there is one.
   */
  readonly useOriginalDst: boolean;
  readonly raw: Listener__Output;
}

export function parseSocketAddress(a: Address__Output | null, path: string): Result<SocketAddr> {
  if (!a) return fail(path, 'value is required');
  if (a.address !== 'socket_address' || !a.socket_address) {
    return fail(path, `only socket_address is supported (got ${a.address ?? 'nothing'}; pipe listeners come with a later issue)`);
  }
  const s = a.socket_address;
  if (s.protocol && s.protocol !== 'TCP') return fail(joinPath(path, 'socket_address.protocol'), `${s.protocol} listeners are not supported`);
  if (s.port_specifier !== 'port_value') return fail(joinPath(path, 'socket_address'), 'port_value is required (named_port is not supported)');
  return ok({ host: s.address, port: s.port_value ?? 0, ipv4Compat: s.ipv4_compat });
}

export function listenerStatPrefix(l: Listener__Output, addr: SocketAddr): string {
  if (l.stat_prefix) return l.stat_prefix;
  return `${addr.host}_${addr.port}`;
}

export function parseListener(l: Listener__Output, path: string, listenerCtx: ParseContext): Result<ListenerConfig> {
  const errors: ConfigError[] = [];
  const ctx: ParseContext = { ...listenerCtx, trafficDirection: l.traffic_direction };
  const addr = parseSocketAddress(l.address, joinPath(path, 'address'));
  if (!addr.ok) errors.push(...addr.errors);
  const listenerFilters: Array<ListenerConfig['listenerFilters'][number]> = [];
  l.listener_filters.forEach((lf, i) => {
    const p = joinPath(path, `listener_filters[${i}]`);
    const r = resolveExtension('listener', lf, { ...ctx, path: p });
    if (!r.ok) return void errors.push(...r.errors);
    let disabled: ListenerFilterDisabled | undefined;
    if (lf.filter_disabled) {
      const d = compileFilterDisabled(lf.filter_disabled, joinPath(p, 'filter_disabled'));
      if (!d.ok) return void errors.push(...d.errors);
      disabled = d.value;
    }
    listenerFilters.push({ ext: r.value, disabled });
  });
  const useOriginalDst = l.use_original_dst?.value ?? false;
  // As Envoy, use_original_dst brings the original_dst listener filter along (first, unless configured).
  if (useOriginalDst && !listenerFilters.some((f) => 'spec' in f.ext && f.ext.spec.name === ORIGINAL_DST_FILTER)) {
    // Parsed here, not through resolveExtension: a worker must not load protobufjs for an empty message.
    const spec = registry.find('listener', undefined, ORIGINAL_DST_FILTER);
    const r = spec?.parse({}, { ...ctx, path: joinPath(path, 'use_original_dst') });
    if (spec && r?.ok) listenerFilters.unshift({ ext: { spec, config: r.value, name: ORIGINAL_DST_FILTER }, disabled: undefined });
    else errors.push({ path: joinPath(path, 'use_original_dst'), reason: `${ORIGINAL_DST_FILTER} is not registered` });
  }
  const chains = new Map<FilterChain__Output, ChainConfig>();
  const parseChain = (fc: FilterChain__Output, p: string): void => {
    const ts = parseDownstreamTransportSocket(fc.transport_socket, { ...ctx, path: joinPath(p, 'transport_socket') });
    if (!ts.ok) errors.push(...ts.errors);
    if (fc.filters.length === 0) errors.push({ path: joinPath(p, 'filters'), reason: 'a filter chain needs at least one network filter' });
    const filters: ResolvedExtension[] = [];
    fc.filters.forEach((f, i) => {
      const fp = joinPath(p, `filters[${i}]`);
      if (f.config_type === 'config_discovery') {
        errors.push({ path: joinPath(fp, 'config_discovery'), reason: 'extension config discovery (ECDS) is not supported yet' });
        return;
      }
      const r = resolveExtension('network', { name: f.name, typed_config: f.typed_config }, { ...ctx, path: fp });
      if (!r.ok) return void errors.push(...r.errors);
      if ('skipped' in r.value) return;
      const isLast = i === fc.filters.length - 1;
      const terminal = r.value.spec.terminal ?? TERMINAL.has(r.value.spec.name);
      if (isLast && !terminal) errors.push({ path: fp, reason: `the last network filter in a chain must be a terminal filter; "${f.name}" is not` });
      if (!isLast && terminal) errors.push({ path: fp, reason: `terminal filter "${f.name}" must be the last filter in a filter chain` });
      filters.push(r.value);
    });
    chains.set(fc, {
      name: fc.name || p,
      filters,
      tls: ts.ok ? ts.value : undefined,
      transportSocketConnectTimeoutMs: durationMs(fc.transport_socket_connect_timeout, 0),
    });
  };
  l.filter_chains.forEach((fc, i) => parseChain(fc, joinPath(path, `filter_chains[${i}]`)));
  if (l.default_filter_chain) parseChain(l.default_filter_chain, joinPath(path, 'default_filter_chain'));
  if (l.filter_chains.length === 0 && !l.default_filter_chain) {
    errors.push({ path: joinPath(path, 'filter_chains'), reason: 'no filter chains specified' });
  }
  const matcher = compileFilterChainMatcher(l.filter_chains, l.default_filter_chain, joinPath(path, 'filter_chains'));
  if (!matcher.ok) errors.push(...matcher.errors);
  if (errors.length || !addr.ok || !matcher.ok) return { ok: false, errors };
  const warnings = tlsInspectorWarnings(l, listenerFilters, path);
  return withWarnings(warnings, {
    name: l.name || `${addr.value.host}_${addr.value.port}`,
    address: addr.value,
    statPrefix: listenerStatPrefix(l, addr.value),
    matcher: matcher.value,
    chains,
    listenerFilters,
    listenerFiltersTimeoutMs: durationMs(l.listener_filters_timeout, 15_000), // 15 s
    continueOnListenerFiltersTimeout: l.continue_on_listener_filters_timeout,
    perConnectionBufferLimitBytes: wrapped(l.per_connection_buffer_limit_bytes, Limits.perConnectionBufferLimitBytes),
    useOriginalDst,
    raw: l,
  });
}

const TLS_INSPECTOR = 'envoy.filters.listener.tls_inspector';

/**
 * Envoy (v3) no longer injects tls_inspector for chains that match on TLS properties (the runtime
 * guard disable_tls_inspector_injection was removed in 1.22), so without it such chains never
 * match. Say so, as a warning: the config is still valid.
 */
function tlsInspectorWarnings(l: Listener__Output, listenerFilters: ListenerConfig['listenerFilters'], path: string): string[] {
  if (listenerFilters.some((f) => !('skipped' in f.ext) && f.ext.spec.name === TLS_INSPECTOR)) return [];
  const out: string[] = [];
  l.filter_chains.forEach((fc, i) => {
    const m = fc.filter_chain_match;
    if (!m) return;
    const needs = m.transport_protocol === 'tls' || (m.transport_protocol === '' && m.server_names.length > 0);
    if (needs) out.push(`${joinPath(path, `filter_chains[${i}].filter_chain_match`)}: matches on server_names or transport_protocol tls, but the listener has no ${TLS_INSPECTOR} listener filter, so this chain never matches`);
  });
  return out;
}

function withWarnings<T>(warnings: readonly string[], value: T): Result<T> {
  return warnings.length > 0 ? { ok: true, value, warnings } : ok(value);
}

/** Terminal network filters by name, for specs that don't say (Envoy: `isTerminalFilterByProto`). */
const TERMINAL = new Set(['envoy.filters.network.http_connection_manager', 'envoy.filters.network.tcp_proxy']);
