// One config of a listener on one worker (the first, or one LDS pushed): its listener filters,
// filter chains (network filter factories, TLS) and the connections accepted while it was current.
// A replaced or removed config drains its connections (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY)
// and closes what is left when the drain time is up, or as soon as none is left. When only the
// filter chains changed (Envoy's filter-chain-only update), a chain that is identical in the new
// config is carried over with its connections, which are not drained.

import type { Socket } from 'node:net';
import type { ListenerConfig, ChainConfig } from './listener-config.ts';
import type { Listener__Output } from '../../generated/envoy/config/listener/v3/Listener.ts';
import type { RuntimeContext } from '../../filters/registry.ts';
import type { NetworkFilterFactory } from '../../filters/network/filter.ts';
import { withFilterDisabled, type ListenerFilter } from './listener-filters.ts';
import type { Counter } from '../stats.ts';
import { ChainTls, hasTls } from './listener-tls.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';

export interface ChainRuntime {
  readonly config: ChainConfig;
  /** Non-terminal filters, in order: each connection gets one of each, which sees onNewConnection before the hand-off. */
  readonly filters: ReadonlyArray<{ factory: NetworkFilterFactory; config: unknown }>;
  readonly terminal: { factory: NetworkFilterFactory; config: unknown };
  /** The chain's TLS server side; undefined for plaintext chains. */
  readonly tls: ChainTls | undefined;
  /** The FilterChain proto as JSON: an identical chain in the next config takes this one over. */
  readonly key: string;
  /** Connections handed to this chain (past listener filters and matching). */
  readonly sockets: Set<Socket>;
}

/** The listener without its filter chains: equal for two configs whose update is filter-chain-only. */
function listenerKey(l: Listener__Output): string {
  return JSON.stringify({ ...l, filter_chains: [], default_filter_chain: null });
}

/**
 * One config of the listener (the first, or one LDS pushed) with what it built on this worker:
 * listener filters, filter chains and the connections accepted while it was current.
 */
export class ListenerGeneration {
  readonly config: ListenerConfig;
  readonly listenerFilters: ListenerFilter[] = [];
  readonly chains = new Map<object, ChainRuntime>();
  /** Accepted (raw) sockets; destroying one also ends the TLSSocket wrapping it. */
  readonly sockets = new Set<Socket>();
  /** Draining: closes what is left when the drain time is up (or as soon as no connection is left). */
  #drainTimer: LongTimer | undefined;
  #retiring = false;
  #closed = false;
  readonly #onClosed: Array<() => void> = [];
  /** Chains carried over from the previous config (already started; not ours to drain or close there). */
  readonly #inherited = new Set<ChainRuntime>();
  /** Chains the next config took over, with their connections. */
  readonly #handedOver = new Set<ChainRuntime>();

  /**
   * `previous`: the config this one replaces; on a filter-chain-only change, its chains that are
   * identical here are taken over with their connections.
   */
  constructor(config: ListenerConfig, rt: RuntimeContext, previous?: ListenerGeneration) {
    this.config = config;
    const reusable = new Map<string, ChainRuntime>();
    if (previous && listenerKey(previous.config.raw) === listenerKey(config.raw)) for (const c of previous.chains.values()) reusable.set(c.key, c);
    for (const { ext, disabled } of config.listenerFilters) {
      if ('skipped' in ext) continue;
      const f = ext.spec.factory(ext.config, rt) as ListenerFilter;
      this.listenerFilters.push(disabled ? withFilterDisabled(f, disabled) : f);
    }
    for (const [raw, chain] of config.chains) {
      const key = JSON.stringify(raw);
      const kept = reusable.get(key);
      if (kept && previous) {
        reusable.delete(key);
        this.chains.set(raw, kept);
        this.#inherited.add(kept);
        previous.#handOver(kept, this);
        continue;
      }
      const last = chain.filters[chain.filters.length - 1];
      if (!last || 'skipped' in last) continue;
      const filters: Array<{ factory: NetworkFilterFactory; config: unknown }> = [];
      for (const f of chain.filters.slice(0, -1)) {
        if (!('skipped' in f)) filters.push({ factory: f.spec.factory(f.config, rt) as NetworkFilterFactory, config: f.config });
      }
      const tls = hasTls(chain) ? new ChainTls(chain, { stats: rt.stats, secrets: rt.secrets }) : undefined;
      const terminal = { factory: last.spec.factory(last.config, rt) as NetworkFilterFactory, config: last.config };
      this.chains.set(raw, { config: chain, filters, terminal, tls, key, sockets: new Set() });
    }
  }

  #handOver(chain: ChainRuntime, next: ListenerGeneration): void {
    this.#handedOver.add(chain);
    for (const s of chain.sockets) {
      this.sockets.delete(s);
      next.sockets.add(s);
    }
  }

  /** Chains this config still owns (not handed over to the next one). */
  #own(): ChainRuntime[] {
    return [...new Set(this.chains.values())].filter((c) => !this.#handedOver.has(c));
  }

  /** Does this config serve `chain` (its own or carried over)? */
  serves(chain: ChainRuntime): boolean {
    return !this.#handedOver.has(chain) && [...this.chains.values()].includes(chain);
  }

  startTls(stats: { readonly prefix: string; readonly transportSocketConnectTimeout: Counter }): void {
    for (const c of this.chains.values()) if (!this.#inherited.has(c)) c.tls?.start(stats.prefix, stats.transportSocketConnectTimeout);
  }

  /** Asks the terminal filters to wind down their connections gracefully. */
  drain(): void {
    for (const c of this.#own()) c.terminal.factory.drain?.();
  }

  /**
   * Drains, then closes whatever is left after `drainTimeMs` (at once when no connection is left);
   * `onClosed` runs then. Retiring again only adds the callback (the first drain time holds).
   */
  retire(drainTimeMs: number, onClosed: () => void): void {
    this.#onClosed.push(onClosed);
    if (this.#retiring) return;
    this.#retiring = true;
    this.drain();
    if (this.sockets.size === 0) return void this.close();
    this.#drainTimer = setLongTimeout(() => void this.close(), drainTimeMs);
    this.#drainTimer.unref();
    const check = (): void => {
      if (this.sockets.size === 0) void this.close();
    };
    for (const s of this.sockets) s.once('close', () => setImmediate(check));
  }

  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#drainTimer?.clear();
      for (const s of this.sockets) s.destroy();
      const own = this.#own();
      for (const c of own) c.tls?.close();
      await Promise.all(own.map((c) => c.terminal.factory.close?.()));
    }
    for (const f of this.#onClosed.splice(0)) f();
  }
}
