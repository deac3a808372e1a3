// What the SotW and delta streams share: one bidirectional discovery stream to the control plane
// (opened on demand, reopened after a jittered exponential back-off when it ends, the end reported
// once whether 'error' or 'status' comes first), the node on the first request of each stream (or
// on every one unless set_node_on_first_message_only), `control_plane.connected_state`, and each
// subscribed type's stats and initial fetch. SotwStream and DeltaStream add their protocol.

import type * as grpc from '@grpc/grpc-js';
import { logger } from '../proxy/log.ts';
import type { DiscoveryStream } from './grpc-transport.ts';
import type { MessageCodec } from './codec.ts';
import { JitteredBackoff } from './backoff.ts';
import { InitialFetch } from './subscription.ts';
import { SubscriptionStats, label } from './subscription-stats.ts';
import type { StreamOptions, TypeSubscriptionOptions } from './sotw-subscription.ts';

const log = logger('config');

export interface ConnectionHooks<Res> {
  /** A new stream is open: send each type's first request. */
  onOpen(): void;
  onResponse(m: Res): void;
  /** The stream ended (not closed by us): count a failure per type. */
  onFailure(): void;
}

export class DiscoveryConnection<Req extends object, Res> {
  readonly o: StreamOptions;
  readonly #codec: { readonly req: MessageCodec<Req, unknown>; readonly res: MessageCodec<unknown, Res> };
  readonly #hooks: ConnectionHooks<Res>;
  readonly #connectedOnMetadata: boolean;
  readonly #backoff: JitteredBackoff;
  #stream: DiscoveryStream<Req, Res> | undefined;
  #sentNode = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: StreamOptions, codec: { readonly req: MessageCodec<Req, unknown>; readonly res: MessageCodec<unknown, Res> }, hooks: ConnectionHooks<Res>, connectedOnMetadata: boolean) {
    this.o = o;
    this.#codec = codec;
    this.#hooks = hooks;
    this.#connectedOnMetadata = connectedOnMetadata;
    this.#backoff = o.backoff ?? new JitteredBackoff();
  }

  get isOpen(): boolean {
    return this.#stream !== undefined;
  }

  /** Opens the stream unless it is open (or closed for good). */
  open(): void {
    if (this.#closed || this.#stream) return;
    const s = this.o.pool.open(this.o.target, this.o.method, this.#codec.req, this.#codec.res);
    this.#stream = s;
    this.#sentNode = false;
    s.on('data', (m: Res) => {
      if (this.#stream !== s) return;
      this.#backoff.reset();
      this.#connected(true);
      this.#hooks.onResponse(m);
    });
    if (this.#connectedOnMetadata) s.on('metadata', () => this.#connected(true));
    // 'error' carries the status; 'status' always follows. React once, on whichever comes first.
    let ended = false;
    const onEnd = (e: grpc.StatusObject | Error): void => {
      if (ended) return;
      ended = true;
      this.#onEnd(s, e);
    };
    s.on('error', onEnd);
    s.on('status', onEnd);
    this.#hooks.onOpen();
  }

  /** Writes a request on the open stream (nothing when there is none), with the node when due. */
  write(req: Req): void {
    const s = this.#stream;
    if (!s) return;
    const withNode = !this.#sentNode || !this.o.setNodeOnFirstMessageOnly;
    this.#sentNode = true;
    s.write(withNode && this.o.node ? { ...req, node: this.o.node } : req);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const s = this.#stream;
    this.#stream = undefined;
    s?.cancel();
    this.#connected(false);
  }

  #connected(up: boolean): void {
    this.o.stats.gauge('control_plane.connected_state', 'max').set(up ? 1 : 0);
  }

  #onEnd(s: DiscoveryStream<Req, Res>, e: grpc.StatusObject | Error): void {
    if (this.#stream !== s) return;
    this.#stream = undefined;
    this.#connected(false);
    if (this.#closed) return;
    this.#hooks.onFailure();
    const wait = this.#backoff.next();
    log.warn(`${this.o.method.path} stream to ${this.o.target.description} closed: ${'code' in e ? `${e.code} ${e.details}` : e.message}; retrying in ${wait} ms`);
    this.#retryTimer = setTimeout(() => this.open(), wait);
    this.#retryTimer.unref();
  }
}

/** A subscribed type's stats (when it has a prefix) and initial fetch, started. */
export function typeCommon(o: StreamOptions, typeUrl: string, opts: TypeSubscriptionOptions<unknown>): { stats: SubscriptionStats | undefined; init: InitialFetch } {
  const stats = opts.statPrefix === undefined ? undefined : new SubscriptionStats(o.stats, opts.statPrefix);
  const init = new InitialFetch(opts.initialFetchTimeoutMs, () => {
    log.warn(`${label(opts.statPrefix ?? typeUrl)}: initial fetch timed out after ${opts.initialFetchTimeoutMs} ms (${o.target.description})`);
    stats?.outcome('init_fetch_timeout');
  });
  stats?.started();
  return { stats, init };
}
