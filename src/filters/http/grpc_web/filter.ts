// The gRPC-Web filter (Envoy's GrpcWebFilter): a gRPC-Web request (application/grpc-web[+proto],
// or -text with a base64 body) goes upstream as gRPC (application/grpc, te: trailers, the text
// body decoded), and its response comes back as gRPC-Web: application/grpc-web+proto (or
// -text+proto, base64 frame by frame, when the client accepts text), the trailers as a trailers
// frame at the end of the body. A response that is not gRPC (a 503 page from somewhere) becomes
// grpc-status from its HTTP status and grpc-message from its body (at most 16 KiB). Calls count
// under `cluster.<route cluster>.grpc-web.<service>.<method>.`.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import { routeCluster } from '../route-cluster.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { isGrpcContentType } from '../../../proxy/http/grpc-content-type.ts';
import { httpToGrpcStatus } from '../../../proxy/http/local-reply.ts';
import { grpcPercentEncode } from '../../../proxy/grpc-message.ts';
import { Base64Decoder, FrameSplitter, trailersFrame } from './frames.ts';
import type { GrpcWebConfig } from './config.ts';
import { serviceAndMethod } from '../../common/grpc-service-method.ts';

const GRPC_WEB = 'application/grpc-web';
const GRPC_WEB_PROTO = 'application/grpc-web+proto';
const GRPC_WEB_TEXT = 'application/grpc-web-text';
const GRPC_WEB_TEXT_PROTO = 'application/grpc-web-text+proto';
const REQUEST_TYPES = new Set([GRPC_WEB, GRPC_WEB_PROTO, GRPC_WEB_TEXT, GRPC_WEB_TEXT_PROTO]);
/** Envoy's MAX_BUFFERED_PLAINTEXT_LENGTH: the most of a non-gRPC body that becomes grpc-message. */
const MAX_MESSAGE_BYTES = 16 * 1024;
/** grpc-accept-encoding's default (Envoy's GrpcAcceptEncodingValues.Default). */
const DEFAULT_ACCEPT_ENCODING = 'identity,deflate,gzip';

/** Already gRPC-Web: 200 with application/grpc-web or grpc-web+proto (parameters ignored). */
function isGrpcWebProtoResponse(headers: HeaderMap): boolean {
  const ct = headers.get('content-type')?.split(';')[0]!.trim().toLowerCase();
  return headers.get(':status') === '200' && (ct === GRPC_WEB || ct === GRPC_WEB_PROTO);
}

export class GrpcWebFactory implements HttpFilterFactory<GrpcWebConfig> {
  readonly rt: RuntimeContext;

  constructor(rt: RuntimeContext) {
    this.rt = rt;
  }

  create(_config: GrpcWebConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    return new GrpcWebFilter(this.rt, callbacks);
  }
}

export class GrpcWebFilter implements HttpFilter {
  readonly #rt: RuntimeContext;
  readonly #cb: HttpFilterCallbacks;
  #web = false;
  /** The request body is base64 (...-text). */
  #textRequest: Base64Decoder | undefined;
  /** The client accepts ...-text: response frames go back base64. */
  #textResponse: FrameSplitter | undefined;
  /** `cluster.<c>.grpc-web.<service>.<method>.` for a call to a known cluster. */
  #prefix: string | undefined;
  /** A non-gRPC response's headers, held until its body becomes grpc-message. */
  #held: HeaderMap | undefined;
  #message: Buffer[] = [];
  #messageBytes = 0;

  constructor(rt: RuntimeContext, callbacks: HttpFilterCallbacks) {
    this.#rt = rt;
    this.#cb = callbacks;
  }

  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const ct = headers.get('content-type');
    if (ct === undefined || !REQUEST_TYPES.has(ct) || headers.get(':path') === undefined) return FilterHeadersStatus.Continue;
    this.#web = true;
    // Its length was the gRPC-Web body's; the upstream gets gRPC framing (and maybe decoded text).
    headers.remove('content-length');
    if (ct === GRPC_WEB_TEXT || ct === GRPC_WEB_TEXT_PROTO) this.#textRequest = new Base64Decoder();
    headers.set('content-type', 'application/grpc');
    const accept = headers.get('accept');
    if (accept === GRPC_WEB_TEXT || accept === GRPC_WEB_TEXT_PROTO) this.#textResponse = new FrameSplitter();
    headers.set('te', 'trailers');
    if (!headers.has('grpc-accept-encoding')) headers.set('grpc-accept-encoding', DEFAULT_ACCEPT_ENCODING);
    const cluster = routeCluster(this.#cb, headers);
    const call = serviceAndMethod(headers.get(':path'));
    if (cluster !== undefined && call && this.#rt.clusterManager.get(cluster)) this.#prefix = `cluster.${cluster}.grpc-web.${call.service}.${call.method}.`;
    return FilterHeadersStatus.Continue;
  }

  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    const text = this.#textRequest;
    if (!text) return FilterDataStatus.Continue;
    const decoded = text.push(data);
    if (decoded === undefined || (endStream && text.pending > 0)) {
      const details = decoded === undefined ? 'grpc_base_64_decode_failed' : 'grpc_base_64_decode_failed_bad_size';
      this.#cb.sendLocalReply(400, 'Bad gRPC-web request, invalid base64 data.', { details });
      return FilterDataStatus.StopIterationNoBuffer;
    }
    this.#cb.replaceBody?.(decoded);
    return FilterDataStatus.Continue;
  }

  onResponseHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    if (!this.#web) return FilterHeadersStatus.Continue;
    this.#charge(headers.get('grpc-status'));
    // Envoy's isGrpcResponseHeaders: trailers-only (grpc-status), or 200 with a gRPC content type.
    const grpc = endStream ? headers.has('grpc-status') : headers.get(':status') === '200' && isGrpcContentType(headers.get('content-type'));
    const transform = !grpc && !isGrpcWebProtoResponse(headers);
    headers.remove('content-length');
    headers.set('content-type', this.#textResponse ? GRPC_WEB_TEXT_PROTO : GRPC_WEB_PROTO);
    if (endStream || !transform) return FilterHeadersStatus.Continue;
    this.#held = headers;
    return FilterHeadersStatus.StopIteration;
  }

  onResponseBody(data: Buffer, endStream: boolean): FilterDataStatus {
    if (!this.#web) return FilterDataStatus.Continue;
    if (this.#held) {
      if (this.#messageBytes < MAX_MESSAGE_BYTES) {
        const part = data.subarray(0, MAX_MESSAGE_BYTES - this.#messageBytes);
        this.#message.push(Buffer.from(part));
        this.#messageBytes += part.length;
      }
      if (!endStream) return FilterDataStatus.StopIterationNoBuffer;
      this.#releaseAsGrpcStatus();
      this.#cb.replaceBody?.(Buffer.alloc(0));
      return FilterDataStatus.Continue;
    }
    const frames = this.#textResponse;
    if (!frames) return FilterDataStatus.Continue;
    // Each whole frame on its own, base64 with its padding, as gRPC-Web text clients read them.
    this.#cb.replaceBody?.(Buffer.from(frames.push(data).map((f) => f.toString('base64')).join(''), 'latin1'));
    return FilterDataStatus.Continue;
  }

  onResponseTrailers(trailers: HeaderMap): FilterTrailersStatus {
    if (!this.#web) return FilterTrailersStatus.Continue;
    this.#charge(trailers.get('grpc-status'));
    if (this.#held) {
      this.#releaseAsGrpcStatus();
      return FilterTrailersStatus.Continue;
    }
    // The trailers travel in the body; the response itself ends with none.
    const frame = trailersFrame(trailers);
    const names: string[] = [];
    trailers.forEach((name) => names.push(name));
    for (const name of names) trailers.remove(name);
    this.#cb.injectEncodedData?.(this.#textResponse ? Buffer.from(frame.toString('base64'), 'latin1') : frame, false);
    return FilterTrailersStatus.Continue;
  }

  /** The held non-gRPC response: grpc-status from its HTTP status, grpc-message from its body, no body. */
  #releaseAsGrpcStatus(): void {
    const h = this.#held!;
    this.#held = undefined;
    h.set('grpc-message', grpcPercentEncode(Buffer.concat(this.#message).toString('latin1')));
    h.set('grpc-status', String(httpToGrpcStatus(Number(h.get(':status')))));
    h.set('content-length', '0');
    this.#message = [];
  }

  /** Envoy's Grpc::Context::chargeStat for gRPC-Web: nothing without a grpc-status. */
  #charge(status: string | undefined): void {
    const p = this.#prefix;
    if (p === undefined || status === undefined) return;
    const stats = this.#rt.stats;
    stats.counter(`${p}${/^(?:[0-9]|1[0-6])$/.test(status) ? status : 'other'}`).inc();
    stats.counter(`${p}${status === '0' ? 'success' : 'failure'}`).inc();
    stats.counter(`${p}total`).inc();
  }
}
