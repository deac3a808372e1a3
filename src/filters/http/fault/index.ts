// Registers envoy.filters.http.fault: delay and abort injection with Envoy's config, headers,
// runtime keys and stats. Bad filter config is a config error; a bad per-route override (it is
// parsed on first use) is logged once and the route then gets no fault.

import type { ExtensionRegistry, RuntimeContext } from '../../registry.ts';
import type { HttpFilterCallbacks, HttpFilterFactory } from '../filter.ts';
import { FILTER_DISABLED } from '../../../proxy/http/route-table.ts';
import { formatErrors } from '../../../config/result.ts';
import { logger } from '../../../proxy/log.ts';
import { parseFault, type FaultConfig } from './config.ts';
import { FaultFilter, FaultStatsCache, type FaultRuntime } from './filter.ts';

export { parseFault, FaultRuntimeKeys, FaultHeaders, type FaultConfig } from './config.ts';
export { FaultFilter, FAULT_ABORT_BODY, FAULT_ABORT_DETAILS } from './filter.ts';

export const FAULT_NAME = 'envoy.filters.http.fault';
export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const FAULT_ALIASES = ['envoy.fault'] as const;

const log = logger('config');

/**
 * typed_per_filter_config keys the fault filter answers to. Envoy keys them by the filter's
 * configured name; the callbacks do not carry that name yet, so the well-known names are used.
 */
const PER_ROUTE_KEYS: readonly string[] = [FAULT_NAME, ...FAULT_ALIASES];

/** Per-route messages are frozen and shared by the route table: parse each once. */
const parsedOverrides = new WeakMap<object, FaultConfig | null>();

function overrideFor(message: unknown): FaultConfig | undefined {
  if (!message || typeof message !== 'object') return undefined;
  const cached = parsedOverrides.get(message);
  if (cached !== undefined) return cached ?? undefined;
  const r = parseFault(message, { path: 'typed_per_filter_config', clusterNames: undefined });
  if (!r.ok) log.warn(`ignoring invalid per-route ${FAULT_NAME} config: ${formatErrors(r.errors)}`);
  parsedOverrides.set(message, r.ok ? r.value : null);
  return r.ok ? r.value : undefined;
}

/** The most specific per-route settings (route over virtual host over route configuration). */
export function routeSettings(callbacks: HttpFilterCallbacks): FaultConfig | 'disabled' | undefined {
  const per = callbacks.route()?.perFilterConfig;
  if (!per || per.size === 0) return undefined;
  for (const k of PER_ROUTE_KEYS) {
    const v = per.get(k);
    if (v === undefined) continue;
    if (v === FILTER_DISABLED) return 'disabled';
    return overrideFor(v);
  }
  return undefined;
}

/** Builds the per-worker factory; stats objects are cached per worker across streams. */
export function createFaultFactory(config: FaultConfig, ctx: RuntimeContext, random: () => number = Math.random): HttpFilterFactory<FaultConfig> {
  const stats = new FaultStatsCache(ctx.stats);
  const runtimes = new WeakMap<FaultConfig, FaultRuntime>();
  const runtimeFor = (c: FaultConfig): FaultRuntime => {
    let rt = runtimes.get(c);
    if (!rt) runtimes.set(c, (rt = { config: c, runtime: ctx.runtime, shared: ctx.shared, stats, routeSettings, random }));
    return rt;
  };
  return { create: (c, callbacks) => new FaultFilter(runtimeFor(c ?? config), callbacks) };
}

export function register(registry: ExtensionRegistry): void {
  registry.register<FaultConfig, HttpFilterFactory<FaultConfig>>({
    name: FAULT_NAME,
    aliases: FAULT_ALIASES,
    protoType: FAULT_TYPE,
    category: 'http',
    status: 'stable',
    securityPosture: 'unknown',
    parse: parseFault,
    factory: (config, ctx) => createFaultFactory(config, ctx),
  });
}
