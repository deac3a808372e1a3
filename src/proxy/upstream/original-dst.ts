// An ORIGINAL_DST cluster's hosts (Envoy's original destination cluster and its CLUSTER_PROVIDED
// load balancer): each request or connection goes to where it was headed before iptables sent it
// to legate, the downstream local address original_dst restored, or, with use_http_header, to the
// `IP:port` in x-envoy-original-dst-host (an invalid value counts original_dst_host_invalid and
// falls back to the restored address). Hosts are made on first use and removed after a whole
// cleanup_interval unused. As in Envoy, only a restored address is used: a connection whose
// destination was not restored (no original_dst filter, or no NAT entry) gets no host (503 UH, or
// tcp_proxy's UH) rather than being proxied to the listener's own address.

import { isIP } from 'node:net';
import type { Counter } from '../stats.ts';
import type { Host, LbContext, OriginalDstConfig } from './types.ts';
import { hostKey } from '../host-port.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';

interface Entry<H extends Host> {
  readonly host: H;
  /** Chosen since the last cleanup. */
  used: boolean;
}

/** `IP:port` or `[IPv6]:port`, as Envoy's parseInternetAddressAndPort reads it; undefined when it is neither. */
export function parseAddressAndPort(value: string): { address: string; port: number } | undefined {
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value);
  const m = v6 ?? /^([^:[\]]+):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const address = m[1]!;
  const port = Number(m[2]);
  if (port > 65535 || isIP(address) !== (v6 ? 6 : 4)) return undefined;
  return { address, port };
}

export class OriginalDstHosts<H extends Host> {
  readonly #config: OriginalDstConfig;
  readonly #make: (address: string, port: number) => H;
  readonly #changed: (hosts: H[]) => void;
  readonly #invalid: Counter;
  readonly #entries = new Map<string, Entry<H>>();
  #timer: LongTimer | undefined;

  /** `make` builds a host; `changed` gets the new membership after a host is added or cleaned up. */
  constructor(config: OriginalDstConfig, make: (address: string, port: number) => H, changed: (hosts: H[]) => void, invalid: Counter) {
    this.#config = config;
    this.#make = make;
    this.#changed = changed;
    this.#invalid = invalid;
  }

  #destination(ctx: LbContext): { address: string; port: number } | undefined {
    if (this.#config.useHttpHeader) {
      const value = ctx.requestHeaders?.get(this.#config.httpHeaderName);
      if (value !== undefined) {
        const d = parseAddressAndPort(value);
        if (d) return d;
        this.#invalid.inc();
      }
    }
    const local = ctx.downstreamLocal;
    return local?.restored ? local : undefined;
  }

  choose(ctx: LbContext): H | undefined {
    const d = this.#destination(ctx);
    if (!d) return undefined;
    const port = this.#config.upstreamPortOverride ?? d.port;
    const key = hostKey(d.address, port);
    const found = this.#entries.get(key);
    if (found) {
      found.used = true;
      return found.host;
    }
    const host = this.#make(d.address, port);
    this.#entries.set(key, { host, used: true });
    this.#changed(this.#hosts());
    this.#schedule();
    return host;
  }

  #hosts(): H[] {
    return [...this.#entries.values()].map((e) => e.host);
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setLongTimeout(() => this.#cleanup(), this.#config.cleanupIntervalMs);
    this.#timer.unref();
  }

  /** Envoy's cleanup: a host used since the last one is kept (and marked unused), the others go. */
  #cleanup(): void {
    this.#timer = undefined;
    let removed = false;
    for (const [key, e] of this.#entries) {
      if (e.used || e.host.activeRequests > 0) e.used = false;
      else {
        this.#entries.delete(key);
        removed = true;
      }
    }
    if (removed) this.#changed(this.#hosts());
    if (this.#entries.size > 0) this.#schedule();
  }

  close(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }
}
