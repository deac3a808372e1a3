// tcp_proxy's session over the C relay (src/native/tcp-relay): the relay's counters carried into
// tcp_proxy's stats and StreamInfo (at the end, and each second for long connections, as Envoy's
// counters move while bytes flow; upstream_flush_* included), and the relay's two directions seen
// as the session's pumps.

import type { Socket } from 'node:net';
import type { StreamInfo } from '../http/stream-info.ts';
import { BufferedGauge, type TcpProxyStats } from './tcp-proxy-stats.ts';
import { type NativeRelay, type RelayEnd, RelaySlot, startRelay, toMono } from '../../native/tcp-relay/index.ts';

/** What the session needs of one direction: the JS Pump or a side of the C relay. */
export interface RelayDirection {
  /** Reads so far (the idle timer's sign of life). */
  readonly reads: number;
  /** Bytes written toward this direction's destination and not yet taken by its kernel. */
  readonly queued: number;
  /** Brings the stats up to date (buffered-bytes gauge; the relay's byte counters). */
  updateGauge(): void;
}

const FLUSH_EVERY_MS = 1000;
const live = new Set<RelayCounters>();
let flushTimer: NodeJS.Timeout | undefined;

function flushAll(): void {
  for (const c of live) c.flush();
  if (live.size === 0 && flushTimer) {
    clearInterval(flushTimer);
    flushTimer = undefined;
  }
}

/** Carries one relay's counters into the stats, by the difference since the last flush. */
class RelayCounters {
  readonly #relay: NativeRelay;
  readonly #stats: TcpProxyStats;
  readonly #info: StreamInfo;
  readonly #stampTimes: boolean;
  readonly #rxGauge: BufferedGauge;
  readonly #txGauge: BufferedGauge;
  #rx = 0;
  #tx = 0;
  #paused = 0;
  #resumed = 0;
  /** The upstream flush was counted (upstream_flush_total). */
  #flushCounted = false;
  /** upstream_flush_active is raised for this connection. */
  #flushActive = false;

  constructor(relay: NativeRelay, stats: TcpProxyStats, info: StreamInfo, stampTimes: boolean) {
    this.#relay = relay;
    this.#stats = stats;
    this.#info = info;
    this.#stampTimes = stampTimes;
    this.#rxGauge = new BufferedGauge(stats.downstreamCxRxBytesBuffered);
    this.#txGauge = new BufferedGauge(stats.downstreamCxTxBytesBuffered);
  }

  get counters(): Float64Array {
    return this.#relay.counters;
  }

  flush(): void {
    const c = this.#relay.counters;
    const s = this.#stats;
    const info = this.#info;
    const rx = c[RelaySlot.ReadDown]! - this.#rx;
    if (rx > 0) {
      s.downstreamCxRxBytesTotal.inc(rx);
      info.bytesReceived += rx;
      this.#rx += rx;
    }
    const tx = c[RelaySlot.ForwardedDown]! - this.#tx;
    if (tx > 0) {
      s.downstreamCxTxBytesTotal.inc(tx);
      info.bytesSent += tx;
      this.#tx += tx;
    }
    const paused = c[RelaySlot.Paused]! - this.#paused;
    if (paused > 0) {
      s.downstreamFlowControlPausedReadingTotal.inc(paused);
      this.#paused += paused;
    }
    const resumed = c[RelaySlot.Resumed]! - this.#resumed;
    if (resumed > 0) {
      s.downstreamFlowControlResumedReadingTotal.inc(resumed);
      this.#resumed += resumed;
    }
    if (info.firstUpstreamRxMono === undefined && c[RelaySlot.FirstUpRxMs]! > 0) info.firstUpstreamRxMono = toMono(c[RelaySlot.FirstUpRxMs]!);
    if (this.#stampTimes && c[RelaySlot.LastDownTxMs]! > 0) info.lastDownstreamTxMono = toMono(c[RelaySlot.LastDownTxMs]!);
    this.#rxGauge.update(c[RelaySlot.QueuedUp]!);
    this.#txGauge.update(c[RelaySlot.QueuedDown]!);
    const flushing = c[RelaySlot.Flushing]! > 0;
    if (flushing && !this.#flushCounted) {
      this.#flushCounted = this.#flushActive = true;
      s.upstreamFlushTotal.inc();
      s.upstreamFlushActive.inc();
    } else if (!flushing && this.#flushActive) {
      this.#flushActive = false;
      s.upstreamFlushActive.dec();
    }
  }

  /** The relay ended: last counts; a flush that began and ended between two flushes still counts. */
  end(flushed: boolean): void {
    this.flush();
    if (flushed && !this.#flushCounted) {
      this.#flushCounted = true;
      this.#stats.upstreamFlushTotal.inc();
    }
    this.track(false);
  }

  track(on: boolean): void {
    if (!on) {
      live.delete(this);
      return;
    }
    live.add(this);
    flushTimer ??= setInterval(flushAll, FLUSH_EVERY_MS).unref();
  }

  abort(): void {
    this.#relay.abort();
  }
}

export interface RelaySessionParts {
  readonly rx: RelayDirection;
  readonly tx: RelayDirection;
  /** Ends the relay now (no flush); `onEnd` still follows. Safe to call more than once. */
  abort(): void;
}

/**
 * Starts the C relay for a session with no data filters; undefined when it cannot take the
 * sockets (the session then runs its JavaScript pumps). `onEnd` runs once, with the stats up to date.
 */
export function startNativeSession(down: Socket, up: Socket, stats: TcpProxyStats, info: StreamInfo, stampTimes: boolean, onEnd: (end: RelayEnd) => void): RelaySessionParts | undefined {
  let counters: RelayCounters | undefined;
  let ended = false;
  const relay = startRelay(down, up, (end) => {
    ended = true;
    counters?.end(end.flushed);
    onEnd(end);
  });
  if (!relay) return undefined;
  const c = (counters = new RelayCounters(relay, stats, info, stampTimes));
  c.track(true);
  const direction = (queuedSlot: number, readsSlot: number | undefined): RelayDirection => ({
    get reads() {
      return readsSlot === undefined ? 0 : c.counters[readsSlot]!;
    },
    get queued() {
      return c.counters[queuedSlot]!;
    },
    updateGauge: () => c.flush(),
  });
  return {
    rx: direction(RelaySlot.QueuedUp, RelaySlot.Reads),
    tx: direction(RelaySlot.QueuedDown, undefined),
    abort: () => {
      if (!ended) c.abort();
    },
  };
}
