// The connection manager's stats under `http.<stat_prefix>.` with Envoy's names, resolved once per
// manager so the hot path only adds numbers. Codec stats live under `http1.` / `http2.` as in Envoy.

import type { Counter, Gauge, Histogram, StatsStore } from '../stats.ts';

export class HcmStats {
  readonly cxTotal: Counter;
  readonly cxActive: Gauge;
  readonly cxHttp1Total: Counter;
  readonly cxHttp1Active: Gauge;
  readonly cxHttp2Total: Counter;
  readonly cxHttp2Active: Gauge;
  readonly cxSslTotal: Counter;
  readonly cxSslActive: Gauge;
  readonly cxDestroy: Counter;
  readonly cxDestroyRemote: Counter;
  readonly cxDestroyLocal: Counter;
  readonly cxRxBytesTotal: Counter;
  readonly cxTxBytesTotal: Counter;
  readonly cxIdleTimeout: Counter;
  readonly cxMaxDurationReached: Counter;
  readonly cxDrainClose: Counter;
  readonly cxProtocolError: Counter;
  readonly cxLengthMs: Histogram;
  readonly rqTotal: Counter;
  readonly rqActive: Gauge;
  readonly rqHttp1Total: Counter;
  readonly rqHttp2Total: Counter;
  readonly rqXx: readonly Counter[];
  readonly rqCompleted: Counter;
  readonly rqTimeout: Counter;
  readonly rqIdleTimeout: Counter;
  readonly rqHeaderTimeout: Counter;
  readonly rqMaxDurationReached: Counter;
  readonly rqTooLarge: Counter;
  readonly rsTooLarge: Counter;
  readonly rqRxReset: Counter;
  readonly rqTxReset: Counter;
  readonly rqNonRelativePath: Counter;
  readonly rqWsOnNonWsRoute: Counter;
  readonly rqTime: Histogram;
  readonly http1DroppedUnderscores: Counter;
  readonly http1RejectedUnderscores: Counter;
  readonly http2DroppedUnderscores: Counter;
  readonly http2RejectedUnderscores: Counter;
  /** Envoy's HTTP/2 codec stats (legate's own codec, h2/server-session.ts), by codec event. */
  readonly http2Codec: Readonly<Record<'rx_messaging_error' | 'rx_reset' | 'tx_reset' | 'header_overflow' | 'outbound_control_flood' | 'inbound_empty_frames_flood' | 'keepalive_timeout', Counter>>;
  /** downstream_rq_too_many_premature_resets: connections closed by the rapid-reset guard. */
  readonly rqTooManyPrematureResets: Counter;

  constructor(store: StatsStore, statPrefix: string) {
    const p = `http.${statPrefix}.`;
    const c = (n: string): Counter => store.counter(p + n);
    const g = (n: string): Gauge => store.gauge(p + n);
    this.cxTotal = c('downstream_cx_total');
    this.cxActive = g('downstream_cx_active');
    this.cxHttp1Total = c('downstream_cx_http1_total');
    this.cxHttp1Active = g('downstream_cx_http1_active');
    this.cxHttp2Total = c('downstream_cx_http2_total');
    this.cxHttp2Active = g('downstream_cx_http2_active');
    this.cxSslTotal = c('downstream_cx_ssl_total');
    this.cxSslActive = g('downstream_cx_ssl_active');
    this.cxDestroy = c('downstream_cx_destroy');
    this.cxDestroyRemote = c('downstream_cx_destroy_remote');
    this.cxDestroyLocal = c('downstream_cx_destroy_local');
    this.cxRxBytesTotal = c('downstream_cx_rx_bytes_total');
    this.cxTxBytesTotal = c('downstream_cx_tx_bytes_total');
    this.cxIdleTimeout = c('downstream_cx_idle_timeout');
    this.cxMaxDurationReached = c('downstream_cx_max_duration_reached');
    this.cxDrainClose = c('downstream_cx_drain_close');
    this.cxProtocolError = c('downstream_cx_protocol_error');
    this.cxLengthMs = store.histogram(p + 'downstream_cx_length_ms');
    this.rqTotal = c('downstream_rq_total');
    this.rqActive = g('downstream_rq_active');
    this.rqHttp1Total = c('downstream_rq_http1_total');
    this.rqHttp2Total = c('downstream_rq_http2_total');
    this.rqXx = [1, 2, 3, 4, 5].map((n) => c(`downstream_rq_${n}xx`));
    this.rqCompleted = c('downstream_rq_completed');
    this.rqTimeout = c('downstream_rq_timeout');
    this.rqIdleTimeout = c('downstream_rq_idle_timeout');
    this.rqHeaderTimeout = c('downstream_rq_header_timeout');
    this.rqMaxDurationReached = c('downstream_rq_max_duration_reached');
    this.rqTooLarge = c('downstream_rq_too_large');
    this.rsTooLarge = c('rs_too_large');
    this.rqRxReset = c('downstream_rq_rx_reset');
    this.rqTxReset = c('downstream_rq_tx_reset');
    this.rqNonRelativePath = c('downstream_rq_non_relative_path');
    this.rqWsOnNonWsRoute = c('downstream_rq_ws_on_non_ws_route');
    this.rqTime = store.histogram(p + 'downstream_rq_time');
    this.http1DroppedUnderscores = store.counter('http1.dropped_headers_with_underscores');
    this.http1RejectedUnderscores = store.counter('http1.requests_rejected_with_underscores_in_headers');
    this.http2DroppedUnderscores = store.counter('http2.dropped_headers_with_underscores');
    this.http2RejectedUnderscores = store.counter('http2.requests_rejected_with_underscores_in_headers');
    const h2 = (n: string): Counter => store.counter(`http2.${n}`);
    this.http2Codec = {
      rx_messaging_error: h2('rx_messaging_error'),
      rx_reset: h2('rx_reset'),
      tx_reset: h2('tx_reset'),
      header_overflow: h2('header_overflow'),
      outbound_control_flood: h2('outbound_control_flood'),
      inbound_empty_frames_flood: h2('inbound_empty_frames_flood'),
      keepalive_timeout: h2('keepalive_timeout'),
    };
    this.rqTooManyPrematureResets = c('downstream_rq_too_many_premature_resets');
  }

  /** downstream_rq_<N>xx for a response status. */
  chargeStatus(status: number): void {
    const k = Math.floor(status / 100) - 1;
    if (k >= 0 && k < 5) this.rqXx[k]!.inc();
  }
}
