// What a contestant is: something the suite starts with an upstream, that listens for HTTP/1.1,
// maybe h2c and raw TCP, whose processes the suite measures, and that it stops afterwards.

export type Listener = 'h1' | 'h2' | 'tcp';

export interface Upstream {
  readonly h1: number;
  readonly h2: number;
}

export interface StartContext {
  readonly upstream: Upstream;
  /** A temp dir for config files, removed by the suite. */
  readonly dir: string;
  /** CPU the proxy is pinned to (when pinning is on). */
  readonly cpu: number;
}

export interface Running {
  /** Port per listener kind it serves; a kind it lacks is absent (its scenarios are skipped). */
  readonly ports: Partial<Record<Listener, number>>;
  /** Why a listener kind is absent (one line each). */
  readonly missing: Partial<Record<Listener, string>>;
  /** Processes to measure (re-read per run: all of the tree); empty for `direct`. */
  pids(): number[];
  readonly version: string;
  stop(): Promise<void>;
}

export interface Contestant {
  readonly name: string;
  readonly describe: string;
  start(ctx: StartContext): Promise<Running>;
}
