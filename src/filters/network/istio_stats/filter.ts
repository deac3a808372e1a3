// Istio's `istio.stats` network filter (before tcp_proxy): istio_tcp_connections_opened_total once
// per connection, istio_tcp_sent_bytes_total / istio_tcp_received_bytes_total as they grow (every
// tcp_reporting_duration and at the end), istio_tcp_connections_closed_total when the downstream
// connection closes; Istio's standard labels with request_protocol `tcp`. The peer is the one the
// TCP metadata exchange found (`downstream_peer`), else, for a client, the endpoint's metadata.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import { responseFlagsString } from '../../../proxy/http/formatter-operators.ts';
import { peerOf } from '../../common/istio/peer-state.ts';
import type { IstioStatsConfig } from '../../http/istio_stats/config.ts';
import { IstioStatsRecorder, type TagSet } from '../../http/istio_stats/recorder.ts';
import { peerTags, securityPolicy } from '../../http/istio_stats/tags.ts';

export class TcpIstioStatsFactory implements NetworkFilterFactory<IstioStatsConfig> {
  readonly recorder: IstioStatsRecorder;

  constructor(config: IstioStatsConfig, rt: RuntimeContext) {
    this.recorder = new IstioStatsRecorder(config, rt);
  }

  create(_config: IstioStatsConfig, callbacks: NetworkFilterCallbacks): NetworkFilter {
    return new TcpIstioStatsFilter(this.recorder, callbacks);
  }
}

export class TcpIstioStatsFilter implements NetworkFilter {
  readonly #r: IstioStatsRecorder;
  readonly #cb: NetworkFilterCallbacks;
  #tags: TagSet | undefined;
  #sent = 0;
  #received = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(recorder: IstioStatsRecorder, callbacks: NetworkFilterCallbacks) {
    this.#r = recorder;
    this.#cb = callbacks;
  }

  onNewConnection(): NetworkFilterStatus {
    const ms = this.#r.config.tcpReportingMs;
    if (ms > 0) {
      this.#timer = setInterval(() => this.#report(), ms);
      this.#timer.unref();
    }
    this.#cb.socket.once('close', () => {
      clearInterval(this.#timer);
      // tcp_proxy's own close handling (upstream flush, byte counts) runs first.
      setImmediate(() => {
        this.#report();
        this.#r.count('tcp_connections_closed_total', this.#tags!, this.#cb.streamInfo);
      });
    });
    return NetworkFilterStatus.Continue;
  }

  /** Opened once (the labels fixed then, as Istio fixes them once the peer is known or at the first report), then the byte deltas. */
  #report(): void {
    const info = this.#cb.streamInfo;
    if (!this.#tags) {
      const c = this.#r.config;
      const { tags, mutualTls } = peerTags(info, c, this.#r.local, this.#r.rt.clusterManager, peerOf(info, c.reporter === 'source' ? 'upstream_peer' : 'downstream_peer'));
      tags.push(['request_protocol', 'tcp'], ['response_flags', responseFlagsString(info) ?? '-'], ['connection_security_policy', securityPolicy(mutualTls)]);
      this.#tags = this.#r.tagSet(tags);
      this.#r.count('tcp_connections_opened_total', this.#tags, info);
    }
    // Sent: to the downstream (Envoy's downstream bytes meter), received: from it.
    this.#r.count('tcp_sent_bytes_total', this.#tags, info, info.bytesSent - this.#sent);
    this.#r.count('tcp_received_bytes_total', this.#tags, info, info.bytesReceived - this.#received);
    this.#sent = info.bytesSent;
    this.#received = info.bytesReceived;
  }
}
