// Applies the main thread's XdsWorkerUpdate on one worker, in the contract's order: routes ->
// clusters -> endpoints -> listeners -> removeListeners -> removeClusters -> removeRoutes. Routes swap
// the live tables HCMs read per request; clusters go to the DynamicClusterManager (warmed, then
// swapped; old ones finish their in-flight requests); listeners are added (bound), replaced in
// place (same address: new chains, old connections drained), rebound (new address: bind the new,
// then drain and close the old) or removed (drained for the drain time, then closed). Updates are
// applied one at a time, in the order they arrive. Whatever cannot be applied is reported, never thrown.

import type { RuntimeContext, ParseContext } from '../../filters/registry.ts';
import { formatErrors, type ConfigError, type Result } from '../../config/result.ts';
import type { TlsSecret } from '../tls/types.ts';
import type { DynamicClusterManager } from '../upstream/cluster-manager.ts';
import { parseCluster } from '../upstream/config.ts';
import { parseListener, type ListenerConfig, type SocketAddr } from '../listener/listener-config.ts';
import { ActiveListener } from '../listener/listener-runtime.ts';
import type { AddressInfo } from '../http/stream-info.ts';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import { logger } from '../log.ts';
import type { XdsWorkerUpdate } from './messages.ts';
import { RouteRegistry } from './route-registry.ts';

const log = logger('config');

export interface DynamicConfigContext {
  /** The worker's runtime context; its clusterManager is `clusterManager`. */
  readonly rt: RuntimeContext;
  readonly clusterManager: DynamicClusterManager;
  /** `static_resources.secrets`, resolved (TLS contexts of dynamic listeners and clusters may name them). */
  readonly staticSecrets: ReadonlyMap<string, TlsSecret>;
  /** --drain-time-s, ms: how long replaced or removed listeners' connections may drain. */
  readonly drainTimeMs: number;
  /** The worker's RDS tables (the bootstrap's listeners may already refer to them). */
  readonly routes?: RouteRegistry;
}

export interface ApplyResult {
  /** The bound port of every listener the worker now has, by name (the configured port for bind_to_port false). */
  readonly listeners: Record<string, number>;
  /** What could not be applied (the main thread validated it, so this should stay empty). */
  readonly errors: readonly string[];
}

/** An IPv6 address in one spelling (`0:0::1` and `::1` are the same listener address). */
function normalizeV6(a: string): string {
  return SocketAddress.parse(`[${a}]:0`)?.address ?? a;
}

function sameAddress(a: SocketAddr, b: SocketAddr): boolean {
  return a.host === b.host && a.port === b.port && a.ipv4Compat === b.ipv4Compat;
}

export class DynamicConfig {
  readonly routes: RouteRegistry;
  readonly #ctx: DynamicConfigContext;
  readonly #listeners = new Map<string, ActiveListener>();
  /** Listeners removed or rebound whose connections are still draining. */
  readonly #removing = new Set<ActiveListener>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: DynamicConfigContext) {
    this.#ctx = ctx;
    this.routes = ctx.routes ?? new RouteRegistry();
  }

  /** What parsers get on this worker: no cluster validation (CDS), TLS static secrets, RDS from the registry. */
  parseContext(path: string): ParseContext {
    return {
      path,
      clusterNames: undefined,
      // SDS subscriptions are the main thread's; the worker's SecretStore gets their secrets.
      tls: { staticSecrets: this.#ctx.staticSecrets, sds: () => {} },
      rds: this.routes.rdsHook,
    };
  }

  /** Starts serving a listener (the bootstrap's, or one LDS added): binds it unless bind_to_port is false. */
  async addListener(config: ListenerConfig, port: number): Promise<ActiveListener> {
    const l = new ActiveListener(config, this.#ctx.rt, { drainTimeMs: this.#ctx.drainTimeMs, listenerFor: (d) => this.#listenerFor(d) });
    try {
      await l.listen(port);
    } catch (e) {
      await l.closeAll();
      throw e;
    }
    this.#listeners.set(config.name, l);
    return l;
  }

  /**
   * The listener a use_original_dst listener hands a connection for `d` to (Envoy's
   * getBalancedHandlerByAddress): one whose address is exactly `d`, else one on the wildcard
   * address of `d`'s family (or `::` with ipv4_compat for IPv4) with `d`'s port. Bound or not
   * (bind_to_port false listeners exist for this), but not one being removed.
   */
  #listenerFor(d: AddressInfo): ActiveListener | undefined {
    const v4 = isIPv4(d.address);
    let wildcard: ActiveListener | undefined;
    for (const l of this.#listeners.values()) {
      if (l.port !== d.port) continue;
      const { host, ipv4Compat } = l.config.address;
      if (host === d.address || (!v4 && isIPv6(host) && normalizeV6(host) === normalizeV6(d.address))) return l;
      if (!wildcard && (v4 ? host === '0.0.0.0' || (host === '::' && ipv4Compat) : host === '::')) wildcard = l;
    }
    return wildcard;
  }

  get(name: string): ActiveListener | undefined {
    return this.#listeners.get(name);
  }

  /** Every listener, serving or draining (for stop_accepting, drain, shutdown and connection counts). */
  all(): ActiveListener[] {
    return [...this.#listeners.values(), ...this.#removing];
  }

  /** Bound port by listener name. */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, l] of this.#listeners) out[name] = l.port;
    return out;
  }

  /** Applies one update after those before it; never rejects. */
  apply(update: XdsWorkerUpdate): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(update));
    this.#queue = run.catch(() => undefined);
    return run.catch((e: unknown) => ({ listeners: this.ports(), errors: [`update failed: ${e instanceof Error ? e.message : String(e)}`] }));
  }

  async #apply(u: XdsWorkerUpdate): Promise<ApplyResult> {
    const errors: string[] = [];
    const report = (r: Result<unknown>): boolean => {
      if (r.ok) return true;
      errors.push(formatErrors(r.errors as ConfigError[]));
      return false;
    };
    const cm = this.#ctx.clusterManager;
    for (const rc of u.routes ?? []) report(this.routes.apply(rc));
    await Promise.all(
      (u.clusters ?? []).map(async ({ cluster, endpoints }) => {
        const path = `Cluster ${cluster.name}`;
        const parsed = parseCluster(cluster, path, this.parseContext(path));
        if (!report(parsed) || !parsed.ok) return;
        report(await cm.addOrUpdateCluster(parsed.value, endpoints));
      }),
    );
    for (const e of u.endpoints ?? []) report(cm.setEndpoints(e.clusterName, e.assignment));
    for (const l of u.listeners ?? []) {
      const path = `Listener ${l.name}`;
      const parsed = parseListener(l, path, this.parseContext(path));
      if (!report(parsed) || !parsed.ok) continue;
      await this.#putListener(parsed.value, u.ports?.[parsed.value.name]).catch((e: unknown) => errors.push(`${path}: cannot bind: ${e instanceof Error ? e.message : String(e)}`));
    }
    for (const name of u.removeListeners ?? []) this.#removeListener(name);
    for (const name of u.removeClusters ?? []) cm.removeCluster(name);
    for (const name of u.removeRoutes ?? []) this.routes.remove(name);
    if (errors.length > 0) log.warn(`worker ${this.#ctx.rt.workerId}: xDS update partly failed:\n${errors.join('\n')}`);
    return { listeners: this.ports(), errors };
  }

  async #putListener(config: ListenerConfig, reserved: number | undefined): Promise<void> {
    const old = this.#listeners.get(config.name);
    const bind = config.raw.bind_to_port?.value ?? true;
    if (old && sameAddress(old.config.address, config.address) && old.bindToPort === bind) {
      old.update(config);
      return;
    }
    // New, or a new address: bind the new one first, then drain and close the old.
    const port = config.address.port === 0 ? (reserved ?? 0) : config.address.port;
    await this.addListener(config, port);
    if (old) this.#retire(old);
  }

  #removeListener(name: string): void {
    const l = this.#listeners.get(name);
    if (!l) return;
    this.#listeners.delete(name);
    this.#retire(l);
  }

  #retire(l: ActiveListener): void {
    this.#removing.add(l);
    void l.remove().finally(() => this.#removing.delete(l));
  }

  /** Shutdown: closes every listener, serving or draining. */
  async closeAll(): Promise<void> {
    await Promise.all(this.all().map((l) => l.closeAll()));
  }
}
