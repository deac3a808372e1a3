// The gRPC statistics filter's filter state (`emit_filter_state`, Envoy's GrpcStatsObject): a
// call's request and response message counts so far, for filters that report them later (Istio's
// istio_request_messages_total / istio_response_messages_total).

export const GRPC_STATS_FILTER_STATE = 'envoy.filters.http.grpc_stats';

export class GrpcStatsObject {
  requestMessageCount = 0;
  responseMessageCount = 0;
}
