// What a contestant is: something the suite starts with an upstream, that listens for HTTP/1.1,
// maybe h2c, raw TCP, TLS and the feature listeners, whose processes the suite measures, and that
// it stops afterwards.

import type { BenchPki } from '../lib/pki.ts';

/**
 * Listener kinds, one port each: `h1` plain HTTP/1.1 → upstream; `h2` h2c in; `tcp` a TCP proxy;
 * `tls` HTTPS in (server certificate) → plain upstream; `mtlsUp` plain in → upstream over mTLS
 * (client certificate, upstream verified); `mtls` mTLS in (client certificate required) → mTLS
 * upstream; `filters` plain in, fault + local_ratelimit + header_mutation before the router;
 * `wasm` plain in, the Proxy-Wasm header filter before the router.
 */
export type Listener = 'h1' | 'h2' | 'tcp' | 'tls' | 'mtlsUp' | 'mtls' | 'filters' | 'wasm' | 'istio';

export interface Upstream {
  readonly h1: number;
  readonly h2: number;
  /** HTTPS, server certificate only. */
  readonly tls: number;
  /** HTTPS requiring a client certificate signed by the suite's CA. */
  readonly mtls: number;
}

export interface StartContext {
  readonly upstream: Upstream;
  /** A temp dir for config files, removed by the suite. */
  readonly dir: string;
  /** CPU the proxy is pinned to (when pinning is on). */
  readonly cpu: number;
  /** Certificate files minted for this run (in `dir`). */
  readonly pki: BenchPki;
}

export interface Running {
  /** Port per listener kind it serves; a kind it lacks is absent (its scenarios are skipped). */
  readonly ports: Partial<Record<Listener, number>>;
  /** Why a listener kind is absent (one line each). */
  readonly missing: Partial<Record<Listener, string>>;
  /** Processes to measure (re-read per run: all of the tree); empty for `direct`. */
  pids(): number[];
  readonly version: string;
  /** Anything the suite should say about how it was set up (a fallback it took). */
  readonly note?: string;
  stop(): Promise<void>;
}

export interface Contestant {
  readonly name: string;
  readonly describe: string;
  /** Runs only in scenarios that name it (and is not started when none selected does). */
  readonly listedOnly?: boolean;
  start(ctx: StartContext): Promise<Running>;
}
