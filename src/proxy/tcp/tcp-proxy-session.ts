// One proxied TCP connection once its upstream is connected: a Pump each way (bytes with
// backpressure, half-close), the idle and max-duration timers, Envoy's upstream flush on close.
// Fails by closing: an error or reset on one side closes the other (flushing what is queued).
// With no data filter and two plain sockets, the C relay (native-relay.ts) moves the bytes
// instead of the pumps, with the same semantics; the session closes the sockets when it ends.

import type { NetworkFilter } from '../../filters/network/filter.ts';
import type { Socket } from 'node:net';
import type { StreamInfo } from '../http/stream-info.ts';
import type { TcpProxyStats } from './tcp-proxy-stats.ts';
import { type ChunkFilter, Pump } from './pump.ts';
import { type RelayDirection, type RelaySessionParts, startNativeSession } from './native-relay.ts';
import { type RelayEnd, RelayOutcome } from '../../native/tcp-relay/index.ts';
import { type LongTimer, setLongTimeout, setLongInterval } from '../long-timers.ts';

/** The idle timer looks this many times per idle_timeout: a connection closes 1-1.25× idle_timeout after its last byte. */
const IDLE_CHECKS = 4;

export interface TcpProxySessionOptions {
  readonly downstream: Socket;
  readonly upstream: Socket;
  /** 0 disables. Idle = no bytes either way. */
  readonly idleTimeoutMs: number;
  /** max_downstream_connection_duration; 0 disables. */
  readonly maxDurationMs: number;
  readonly stats: TcpProxyStats;
  readonly streamInfo: StreamInfo;
  /** Called once, when both sockets are closed. */
  readonly onClose: () => void;
  /** Non-terminal network filters that see (and may rewrite or hold) the bytes each way. */
  readonly dataFilters?: readonly NetworkFilter[];
  /** Stamp StreamInfo's timestamps per chunk (access logs read them; default true). */
  readonly stampTimes?: boolean;
}

function chain(filters: readonly NetworkFilter[], pick: (f: NetworkFilter) => ChunkFilter | undefined): ChunkFilter | undefined {
  const fns = filters.map(pick).filter((f): f is ChunkFilter => f !== undefined);
  if (fns.length === 0) return undefined;
  if (fns.length === 1) return fns[0];
  return (chunk, end) => {
    for (const f of fns) chunk = f(chunk, end);
    return chunk;
  };
}

export class TcpProxySession {
  readonly #down: Socket;
  readonly #up: Socket;
  readonly #opts: TcpProxySessionOptions;
  /** downstream -> upstream */
  readonly #rx: RelayDirection;
  /** upstream -> downstream */
  readonly #tx: RelayDirection;
  /** The C relay, when it moves the bytes. */
  readonly #native: RelaySessionParts | undefined;
  #idleTimer: LongTimer | undefined;
  #idleSeen = 0;
  #idleQuietChecks = 0;
  #durationTimer: LongTimer | undefined;
  #downClosed = false;
  #upClosed = false;
  #flushing = false;
  #finished = false;

  constructor(opts: TcpProxySessionOptions) {
    this.#opts = opts;
    const down = (this.#down = opts.downstream);
    const up = (this.#up = opts.upstream);
    // Half-close needs both sockets to keep their write side open after the peer's FIN.
    down.allowHalfOpen = true;
    up.allowHalfOpen = true;
    const filters = opts.dataFilters ?? [];
    const common = { stats: opts.stats, streamInfo: opts.streamInfo, stampTimes: opts.stampTimes ?? true };
    this.#native = filters.length === 0 ? startNativeSession(down, up, opts.stats, opts.streamInfo, common.stampTimes, (end) => this.#onRelayEnd(end)) : undefined;
    if (this.#native) {
      this.#rx = this.#native.rx;
      this.#tx = this.#native.tx;
      this.#wireClose(filters);
    } else {
      // onData runs in chain order, onWrite in reverse (Envoy's write filters).
      const toUpstream = chain(filters, (f) => (f.onData ? (c, e) => f.onData!(c, e) : undefined));
      const toDownstream = chain([...filters].reverse(), (f) => (f.onWrite ? (c, e) => f.onWrite!(c, e) : undefined));
      const rx = new Pump({ ...common, from: 'downstream', src: down, dst: up, filter: toUpstream });
      const tx = new Pump({ ...common, from: 'upstream', src: up, dst: down, filter: toDownstream });
      this.#rx = rx;
      this.#tx = tx;
      this.#wireClose(filters);
      // A FIN that arrived before the session (while connecting) is forwarded now.
      const downEnded = down.readableEnded;
      const upEnded = up.readableEnded;
      rx.start();
      tx.start();
      if (downEnded && !up.destroyed) up.end();
      if (upEnded && !down.destroyed) down.end();
    }
    if (opts.idleTimeoutMs > 0) {
      const every = Math.max(1, Math.ceil(opts.idleTimeoutMs / IDLE_CHECKS));
      this.#idleTimer = setLongInterval(() => this.#checkIdle(), every);
    }
    if (opts.maxDurationMs > 0) {
      this.#durationTimer = setLongTimeout(() => {
        opts.stats.maxDownstreamConnectionDuration.inc();
        opts.streamInfo.terminationDetails = 'max_downstream_connection_duration_reached';
        this.close();
      }, opts.maxDurationMs);
    }
  }

  /** Closes both sides now, without flushing. */
  close(): void {
    this.#native?.abort();
    this.#down.destroy();
    this.#up.destroy();
  }

  #wireClose(filters: readonly NetworkFilter[]): void {
    const { stats, streamInfo } = this.#opts;
    const down = this.#down;
    const up = this.#up;
    down.on('error', (e) => {
      streamInfo.terminationDetails ??= `downstream: ${e.message}`;
    });
    up.on('error', (e) => {
      streamInfo.upstreamTransportFailureReason ??= e.message;
    });

    down.on('close', () => {
      // Closed from outside (listener drain, shutdown) while the C relay runs: it stops too.
      this.#native?.abort();
      this.#downClosed = true;
      for (const f of filters) f.onClose?.('downstream', this.#upClosed ? 'local' : 'remote');
      this.#tx.updateGauge();
      if (!up.destroyed) {
        if (this.#rx.queued > 0) {
          // Keep the upstream until what the client sent is written (Envoy's upstream flush);
          // 'finish' then destroys it, or the idle timer does if the upstream stops reading.
          this.#flushing = true;
          stats.upstreamFlushTotal.inc();
          stats.upstreamFlushActive.inc();
          if (!up.writableEnded) up.end();
        } else up.destroy();
      }
      this.#maybeFinish();
    });
    up.on('close', () => {
      this.#native?.abort();
      this.#upClosed = true;
      for (const f of filters) f.onClose?.('upstream', this.#downClosed ? 'local' : 'remote');
      this.#rx.updateGauge();
      if (this.#flushing) stats.upstreamFlushActive.dec();
      if (!down.destroyed) {
        // Let queued bytes reach the client, then close.
        if (this.#tx.queued > 0) {
          down.end();
          down.once('finish', () => down.destroy());
        } else down.destroy();
      }
      this.#maybeFinish();
    });
    up.on('finish', () => {
      if (this.#downClosed) up.destroy();
    });
  }

  /** The C relay is done (both FINs through, a side failed, or aborted): the sockets close. */
  #onRelayEnd(end: RelayEnd): void {
    const { streamInfo } = this.#opts;
    if (end.outcome === RelayOutcome.Error) {
      if (end.side === 'downstream') streamInfo.terminationDetails ??= `downstream: ${end.message}`;
      else streamInfo.upstreamTransportFailureReason ??= end.message;
    }
    this.#down.destroy();
    this.#up.destroy();
  }

  /** Traffic only counts reads; the timer closes after IDLE_CHECKS looks in a row saw none. */
  #checkIdle(): void {
    const seen = this.#rx.reads + this.#tx.reads;
    if (seen !== this.#idleSeen) {
      this.#idleSeen = seen;
      this.#idleQuietChecks = 0;
      return;
    }
    if (++this.#idleQuietChecks < IDLE_CHECKS) return;
    this.#opts.stats.idleTimeout.inc();
    this.#opts.streamInfo.terminationDetails = 'idle_timeout';
    this.close();
  }

  #maybeFinish(): void {
    if (this.#finished || !this.#downClosed || !this.#upClosed) return;
    this.#finished = true;
    this.#idleTimer?.clear();
    this.#durationTimer?.clear();
    this.#opts.onClose();
  }
}
