// Registers envoy.filters.http.router: the terminal HTTP filter that forwards requests upstream.
// Config errors are returned (NACK / startup error); run-time failures become local replies.

import type { ExtensionRegistry, RuntimeContext } from '../../registry.ts';
import type { HttpFilterFactory } from '../filter.ts';
import { parseRouter, type RouterConfig } from './config.ts';
import { RouterFilter, type RouterRuntime } from './router.ts';
import { RouterStatsCache } from './stats.ts';
import { ShadowWriter } from './shadow.ts';

export { parseRouter, type RouterConfig } from './config.ts';
export { RouterFilter } from './router.ts';

export const ROUTER_NAME = 'envoy.filters.http.router';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';

/** Builds the per-worker factory; stats objects are cached per worker across streams. */
export function createRouterFactory(config: RouterConfig, ctx: RuntimeContext): HttpFilterFactory<RouterConfig> {
  const shared = { clusterManager: ctx.clusterManager, stats: new RouterStatsCache(ctx.stats) };
  // Route-level overrides are not a thing for the router; `create` receives the same config back.
  const runtimes = new WeakMap<RouterConfig, RouterRuntime>();
  const runtimeFor = (c: RouterConfig): RouterRuntime => {
    let rt = runtimes.get(c);
    if (!rt) runtimes.set(c, (rt = { config: c, ...shared, shadow: new ShadowWriter(c, { clusterManager: ctx.clusterManager, stats: ctx.stats, runtime: ctx.runtime }, shared.stats) }));
    return rt;
  };
  runtimeFor(config);
  return {
    terminal: true,
    create: (c, callbacks) => new RouterFilter(runtimeFor(c ?? config), callbacks),
  };
}

export function register(registry: ExtensionRegistry): void {
  registry.register<RouterConfig, HttpFilterFactory<RouterConfig>>({
    name: ROUTER_NAME,
    aliases: ['envoy.router'],
    protoType: ROUTER_TYPE,
    category: 'http',
    terminal: true,
    status: 'stable',
    securityPosture: 'robust_to_untrusted_downstream',
    parse: parseRouter,
    factory: createRouterFactory,
  });
}
