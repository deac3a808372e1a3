// One proxied TCP connection once its upstream is connected: bytes both ways with backpressure,
// half-close in each direction, idle and max-duration timers, Envoy's tcp.<stat_prefix>.* stats.
// Fails by closing: an error or reset on one side closes the other (flushing what is queued).

import type { NetworkFilter } from '../../filters/network/filter.ts';
import type { Socket } from 'node:net';
import type { Counter, Gauge, StatsStore } from '../stats.ts';
import type { StreamInfo } from '../http/stream-info.ts';

/** Envoy's tcp_proxy downstream stats, rooted at `tcp.<stat_prefix>.`. */
export interface TcpProxyStats {
  readonly downstreamCxTotal: Counter;
  readonly downstreamCxNoRoute: Counter;
  readonly downstreamCxRxBytesTotal: Counter;
  readonly downstreamCxRxBytesBuffered: Gauge;
  readonly downstreamCxTxBytesTotal: Counter;
  readonly downstreamCxTxBytesBuffered: Gauge;
  readonly downstreamFlowControlPausedReadingTotal: Counter;
  readonly downstreamFlowControlResumedReadingTotal: Counter;
  readonly idleTimeout: Counter;
  readonly maxDownstreamConnectionDuration: Counter;
  readonly upstreamFlushTotal: Counter;
  readonly upstreamFlushActive: Gauge;
}

export function tcpProxyStats(store: StatsStore, statPrefix: string): TcpProxyStats {
  const p = `tcp.${statPrefix}.`;
  return {
    downstreamCxTotal: store.counter(`${p}downstream_cx_total`),
    downstreamCxNoRoute: store.counter(`${p}downstream_cx_no_route`),
    downstreamCxRxBytesTotal: store.counter(`${p}downstream_cx_rx_bytes_total`),
    downstreamCxRxBytesBuffered: store.gauge(`${p}downstream_cx_rx_bytes_buffered`),
    downstreamCxTxBytesTotal: store.counter(`${p}downstream_cx_tx_bytes_total`),
    downstreamCxTxBytesBuffered: store.gauge(`${p}downstream_cx_tx_bytes_buffered`),
    downstreamFlowControlPausedReadingTotal: store.counter(`${p}downstream_flow_control_paused_reading_total`),
    downstreamFlowControlResumedReadingTotal: store.counter(`${p}downstream_flow_control_resumed_reading_total`),
    idleTimeout: store.counter(`${p}idle_timeout`),
    maxDownstreamConnectionDuration: store.counter(`${p}max_downstream_connection_duration`),
    upstreamFlushTotal: store.counter(`${p}upstream_flush_total`),
    upstreamFlushActive: store.gauge(`${p}upstream_flush_active`),
  };
}

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
}

/** Tracks one socket's write buffer in a gauge (bytes queued in Node, not yet handed to the kernel). */
class BufferedGauge {
  readonly #gauge: Gauge;
  readonly #socket: Socket;
  #last = 0;
  constructor(gauge: Gauge, socket: Socket) {
    this.#gauge = gauge;
    this.#socket = socket;
  }
  update(): void {
    const now = this.#socket.destroyed ? 0 : this.#socket.writableLength;
    if (now !== this.#last) this.#gauge.inc(now - this.#last);
    this.#last = now;
  }
}

export class TcpProxySession {
  readonly #down: Socket;
  readonly #up: Socket;
  readonly #opts: TcpProxySessionOptions;
  readonly #txBuffered: BufferedGauge;
  readonly #rxBuffered: BufferedGauge;
  #lastActivity = performance.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #durationTimer: NodeJS.Timeout | undefined;
  #downClosed = false;
  #upClosed = false;
  #flushing = false;
  #finished = false;

  constructor(opts: TcpProxySessionOptions) {
    this.#opts = opts;
    this.#down = opts.downstream;
    this.#up = opts.upstream;
    // Half-close needs both sockets to keep their write side open after the peer's FIN.
    this.#down.allowHalfOpen = true;
    this.#up.allowHalfOpen = true;
    this.#txBuffered = new BufferedGauge(opts.stats.downstreamCxTxBytesBuffered, this.#down);
    this.#rxBuffered = new BufferedGauge(opts.stats.downstreamCxRxBytesBuffered, this.#up);
    this.#wire();
    // A FIN that arrived before the session (while connecting) is forwarded now.
    if (this.#down.readableEnded && !this.#up.destroyed) this.#up.end();
    if (this.#up.readableEnded && !this.#down.destroyed) this.#down.end();
    this.#down.resume();
    if (opts.idleTimeoutMs > 0) this.#armIdle(opts.idleTimeoutMs);
    if (opts.maxDurationMs > 0) {
      this.#durationTimer = setTimeout(() => {
        opts.stats.maxDownstreamConnectionDuration.inc();
        opts.streamInfo.terminationDetails = 'max_downstream_connection_duration_reached';
        this.close();
      }, opts.maxDurationMs);
    }
  }

  /** Closes both sides now, without flushing. */
  close(): void {
    this.#down.destroy();
    this.#up.destroy();
  }

  #wire(): void {
    const { stats, streamInfo } = this.#opts;
    const down = this.#down;
    const up = this.#up;

    const filters = this.#opts.dataFilters ?? [];
    const reading = filters.filter((f) => f.onData);
    const writing = filters.filter((f) => f.onWrite).reverse();
    const toUpstream = (chunk: Buffer, end: boolean): Buffer => {
      for (const f of reading) chunk = f.onData!(chunk, end);
      return chunk;
    };
    const toDownstream = (chunk: Buffer, end: boolean): Buffer => {
      for (const f of writing) chunk = f.onWrite!(chunk, end);
      return chunk;
    };
    down.on('data', (raw: Buffer) => {
      this.#lastActivity = performance.now();
      stats.downstreamCxRxBytesTotal.inc(raw.length);
      streamInfo.bytesReceived += raw.length;
      if (up.destroyed || up.writableEnded) return;
      const chunk = reading.length > 0 ? toUpstream(raw, false) : raw;
      if (chunk.length > 0 && !up.write(chunk)) {
        down.pause();
        stats.downstreamFlowControlPausedReadingTotal.inc();
      }
      this.#rxBuffered.update();
    });
    up.on('drain', () => {
      this.#rxBuffered.update();
      if (down.isPaused() && !down.destroyed) {
        down.resume();
        stats.downstreamFlowControlResumedReadingTotal.inc();
      }
    });

    up.on('data', (raw: Buffer) => {
      const now = performance.now();
      this.#lastActivity = now;
      streamInfo.firstUpstreamRxMono ??= now;
      if (down.destroyed || down.writableEnded) return;
      const chunk = writing.length > 0 ? toDownstream(raw, false) : raw;
      if (chunk.length === 0) return;
      stats.downstreamCxTxBytesTotal.inc(chunk.length);
      streamInfo.bytesSent += chunk.length;
      streamInfo.lastDownstreamTxMono = now;
      if (!down.write(chunk)) up.pause();
      this.#txBuffered.update();
    });
    down.on('drain', () => {
      this.#txBuffered.update();
      if (up.isPaused() && !up.destroyed) up.resume();
    });

    // FIN from one peer → FIN to the other; each keeps reading until its own peer finishes.
    down.on('end', () => {
      if (up.destroyed) return;
      const rest = reading.length > 0 ? toUpstream(Buffer.alloc(0), true) : undefined;
      if (rest && rest.length > 0) up.end(rest);
      else up.end();
    });
    up.on('end', () => {
      if (down.destroyed) return;
      const rest = writing.length > 0 ? toDownstream(Buffer.alloc(0), true) : undefined;
      if (rest && rest.length > 0) down.end(rest);
      else down.end();
    });

    down.on('error', (e) => {
      streamInfo.terminationDetails ??= `downstream: ${e.message}`;
    });
    up.on('error', (e) => {
      streamInfo.upstreamTransportFailureReason ??= e.message;
    });

    down.on('close', () => {
      this.#downClosed = true;
      for (const f of filters) f.onClose?.('downstream', this.#upClosed ? 'local' : 'remote');
      this.#txBuffered.update();
      if (!up.destroyed) {
        if (up.writableLength > 0) {
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
      this.#upClosed = true;
      for (const f of filters) f.onClose?.('upstream', this.#downClosed ? 'local' : 'remote');
      this.#rxBuffered.update();
      if (this.#flushing) stats.upstreamFlushActive.dec();
      if (!down.destroyed) {
        // Let queued bytes reach the client, then close.
        if (down.writableLength > 0) {
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

  /** One timer per connection, re-armed lazily: traffic only stamps #lastActivity. */
  #armIdle(delayMs: number): void {
    this.#idleTimer = setTimeout(() => {
      const timeout = this.#opts.idleTimeoutMs;
      const idleFor = performance.now() - this.#lastActivity;
      if (idleFor + 1 < timeout) {
        this.#armIdle(timeout - idleFor);
        return;
      }
      this.#opts.stats.idleTimeout.inc();
      this.#opts.streamInfo.terminationDetails = 'idle_timeout';
      this.close();
    }, delayMs);
  }

  #maybeFinish(): void {
    if (this.#finished || !this.#downClosed || !this.#upClosed) return;
    this.#finished = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#durationTimer) clearTimeout(this.#durationTimer);
    this.#opts.onClose();
  }
}
