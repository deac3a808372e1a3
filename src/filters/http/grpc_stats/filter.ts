// The gRPC statistics filter (Envoy's GrpcStatsFilter): for a gRPC request (application/grpc) whose
// :path names a service and method, counts under the route's cluster, `cluster.<name>.grpc.` or,
// for a method with stats of its own, `cluster.<name>.grpc.<service>.<method>.`: the request and
// response messages (request_message_count, response_message_count) and, once grpc-status is
// known (trailers, or a trailers-only response), `<status>` (0-16, else `other`), success or
// failure, and total. It never changes a request or response.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { routeCluster } from '../route-cluster.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter } from '../../../proxy/stats.ts';
import { isGrpcContentType } from '../../../proxy/http/grpc-content-type.ts';
import { FrameCounter } from './frame-counter.ts';
import { GRPC_STATS_FILTER_STATE, GrpcStatsObject } from './filter-state.ts';
import type { GrpcStatsConfig } from './config.ts';
import { serviceAndMethod } from '../../common/grpc-service-method.ts';

export class GrpcStatsFactory implements HttpFilterFactory<GrpcStatsConfig> {
  readonly config: GrpcStatsConfig;
  readonly rt: RuntimeContext;
  readonly #counters = new Map<string, Counter>();

  constructor(config: GrpcStatsConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
  }

  create(_config: GrpcStatsConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new GrpcStatsFilter(this, callbacks);
  }

  inc(name: string, by = 1): void {
    let c = this.#counters.get(name);
    if (!c) this.#counters.set(name, (c = this.rt.stats.counter(name)));
    c.inc(by);
  }

  /** `cluster.<c>.grpc.` or `cluster.<c>.grpc.<service>.<method>.` for a tracked call. */
  prefix(cluster: string, call: { service: string; method: string }): string {
    const c = this.config;
    const own = c.allMethods || (c.allowlist?.get(call.service)?.has(call.method) ?? false);
    if (!own) return `cluster.${cluster}.grpc.`;
    const service = c.allMethods && c.replaceDots ? call.service.replaceAll('.', '_') : call.service;
    return `cluster.${cluster}.grpc.${service}.${call.method}.`;
  }
}

export class GrpcStatsFilter implements HttpFilter {
  readonly #f: GrpcStatsFactory;
  readonly #cb: HttpFilterCallbacks;
  /** Stat prefix of a tracked call; undefined: not a tracked gRPC call. */
  #prefix: string | undefined;
  #grpcRequest = false;
  #grpcResponse = false;
  #requests: FrameCounter | undefined;
  #responses: FrameCounter | undefined;
  /** emit_filter_state: the counts other filters read. */
  #state: GrpcStatsObject | undefined;

  constructor(factory: GrpcStatsFactory, callbacks: HttpFilterCallbacks) {
    this.#f = factory;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (!isGrpcContentType(headers.get('content-type'))) return FilterHeadersStatus.Continue;
    this.#grpcRequest = true;
    if (this.#f.config.emitFilterState) (this.#cb.streamInfo.filterState ??= new Map()).set(GRPC_STATS_FILTER_STATE, (this.#state = new GrpcStatsObject()));
    const cluster = routeCluster(this.#cb, headers);
    const call = serviceAndMethod(headers.get(':path'));
    // A call whose :path names a service and method, to a cluster that exists (Envoy's clusterInfo()).
    if (cluster !== undefined && this.#f.rt.clusterManager.get(cluster) && call) this.#prefix = this.#f.prefix(cluster, call);
    return FilterHeadersStatus.Continue;
  }

  onRequestBody(data: Buffer): FilterDataStatus {
    if (this.#grpcRequest) {
      const n = (this.#requests ??= new FrameCounter()).inspect(data);
      if (this.#state) this.#state.requestMessageCount += n;
      if (n > 0 && this.#prefix !== undefined) this.#f.inc(`${this.#prefix}request_message_count`, n);
    }
    return FilterDataStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    // Envoy's isGrpcResponseHeader: trailers-only (grpc-status), or 200 with a gRPC content type.
    this.#grpcResponse = endStream ? headers.get('grpc-status') !== undefined : headers.get(':status') === '200' && isGrpcContentType(headers.get('content-type'));
    this.#charge(headers.get('grpc-status'));
    return FilterHeadersStatus.Continue;
  }

  onResponseBody(data: Buffer): FilterDataStatus {
    if (this.#grpcResponse) {
      const n = (this.#responses ??= new FrameCounter()).inspect(data);
      if (this.#state) this.#state.responseMessageCount += n;
      if (n > 0 && this.#prefix !== undefined) this.#f.inc(`${this.#prefix}response_message_count`, n);
    }
    return FilterDataStatus.Continue;
  }

  onResponseTrailers(trailers: HeaderMap): FilterTrailersStatus {
    this.#charge(trailers.get('grpc-status'));
    return FilterTrailersStatus.Continue;
  }

  /** Envoy's Grpc::Context::chargeStat: nothing without a grpc-status. */
  #charge(status: string | undefined): void {
    const p = this.#prefix;
    if (p === undefined || status === undefined) return;
    const known = /^(?:[0-9]|1[0-6])$/.test(status);
    this.#f.inc(`${p}${known ? status : 'other'}`);
    this.#f.inc(`${p}${status === '0' ? 'success' : 'failure'}`);
    this.#f.inc(`${p}total`);
  }
}
