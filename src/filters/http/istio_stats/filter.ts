// Istio's `istio.stats` HTTP filter: when a stream ends, istio_requests_total,
// istio_request_duration_milliseconds, istio_request_bytes and istio_response_bytes with Istio's
// standard labels (tags.ts). The peer is the one istio.metadata_exchange found. Bytes are the
// request and response bodies (legate does not meter header bytes; Istio counts wire bytes).

import type { HttpFilter, HttpFilterCallbacks, HttpFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import { isGrpcContentType } from '../../../proxy/http/grpc-content-type.ts';
import { responseFlagsString } from '../../../proxy/http/formatter-operators.ts';
import { httpToGrpcStatus } from '../../../proxy/http/local-reply.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import { peerOf } from '../../common/istio/peer-state.ts';
import { GRPC_STATS_FILTER_STATE, GrpcStatsObject } from '../grpc_stats/filter-state.ts';
import type { IstioStatsConfig } from './config.ts';
import { IstioStatsRecorder } from './recorder.ts';
import { peerTags, securityPolicy } from './tags.ts';

export class IstioStatsFactory implements HttpFilterFactory<IstioStatsConfig> {
  readonly recorder: IstioStatsRecorder;

  constructor(config: IstioStatsConfig, rt: RuntimeContext) {
    this.recorder = new IstioStatsRecorder(config, rt);
  }

  create(_config: IstioStatsConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new IstioStatsFilter(this.recorder, callbacks.streamInfo);
  }
}

/** Envoy's Grpc::Common::getGrpcStatus: trailers, then headers, then inferred from the HTTP status. */
function grpcStatus(info: StreamInfo): string {
  const s = info.responseTrailers?.get('grpc-status') ?? info.responseHeaders?.get('grpc-status');
  if (s !== undefined) return s;
  return info.responseCode === undefined ? '' : String(httpToGrpcStatus(info.responseCode));
}

export class IstioStatsFilter implements HttpFilter {
  readonly #r: IstioStatsRecorder;
  readonly #info: StreamInfo;

  constructor(recorder: IstioStatsRecorder, info: StreamInfo) {
    this.#r = recorder;
    this.#info = info;
  }

  onDestroy(): void {
    const info = this.#info;
    const r = this.#r;
    const c = r.config;
    const exchanged = peerOf(info, c.reporter === 'source' ? 'upstream_peer' : 'downstream_peer');
    const { tags, mutualTls } = peerTags(info, c, r.local, r.rt.clusterManager, exchanged);
    const grpc = isGrpcContentType(info.requestHeaders?.get('content-type'));
    tags.push(
      ['request_protocol', grpc ? 'grpc' : 'http'],
      ['response_code', String(info.responseCode ?? 0)],
      ['grpc_response_status', grpc ? grpcStatus(info) : ''],
      ['response_flags', responseFlagsString(info) ?? '-'],
      ['connection_security_policy', securityPolicy(mutualTls)],
    );
    const set = r.tagSet(tags);
    r.count('requests_total', set, info);
    if (info.durationMs !== undefined) r.record('request_duration_milliseconds', set, info, info.durationMs);
    r.record('request_bytes', set, info, info.bytesReceived);
    r.record('response_bytes', set, info, info.bytesSent);
    // gRPC message counts, when grpc_stats keeps them in filter state (istiod sets emit_filter_state).
    const counts = grpc ? info.filterState?.get(GRPC_STATS_FILTER_STATE) : undefined;
    if (counts instanceof GrpcStatsObject) {
      r.count('request_messages_total', set, info, counts.requestMessageCount);
      r.count('response_messages_total', set, info, counts.responseMessageCount);
    }
  }
}
