// Envoy's tcp_proxy downstream stats, rooted at `tcp.<stat_prefix>.`, and a gauge that follows
// one direction's write queue.

import type { Counter, Gauge, StatsStore } from '../stats.ts';

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

/** Tracks one direction's bytes queued for writing (not yet taken by the kernel) in a gauge. */
export class BufferedGauge {
  readonly #gauge: Gauge;
  #last = 0;
  constructor(gauge: Gauge) {
    this.#gauge = gauge;
  }
  /** `queued`: the bytes queued now (Pump.queued). */
  update(queued: number): void {
    if (queued !== this.#last) this.#gauge.inc(queued - this.#last);
    this.#last = queued;
  }
}
