// proxy_http_call: an HTTP request from a plugin to a cluster (Envoy's AsyncClient), over the same
// upstream request code as the router (HTTP/1.1 pools, HTTP/2 sessions). The call answers once:
// the response (headers, body, trailers), or status 0 when there is no host, the request fails, or
// the timeout fires first. Headers must carry :method, :path and :authority (else BAD_ARGUMENT).

import { Status } from './abi.ts';
import type { HttpCallRequest } from './host-api.ts';
import type { HttpCallResponse } from './vm-api.ts';
import type { Pairs } from './pairs.ts';
import { HeaderMap } from '../http/headers.ts';
import type { ClusterManager } from '../upstream/types.ts';
import type { ProxyError } from '../errors.ts';
import { startHttp1Request } from '../../filters/http/router/upstream-request-http1.ts';
import { startHttp2Request } from '../../filters/http/router/upstream-request-http2.ts';
import type { UpstreamRequest, UpstreamSink } from '../../filters/http/router/upstream-request.ts';
import { setLongTimeout } from '../long-timers.ts';

const failed = (message: string): HttpCallResponse => ({ headers: [], body: Buffer.alloc(0), trailers: [], status: 0, message });

function pairsOf(h: HeaderMap): Pairs {
  const out: Pairs = [];
  h.forEach((k, v) => out.push([k, v]));
  return out;
}

export function startHttpCall(cm: ClusterManager, req: HttpCallRequest): { status: Status; response?: Promise<HttpCallResponse> } {
  const cluster = cm.get(req.cluster);
  if (!cluster) return { status: Status.BAD_ARGUMENT };
  const headers = new HeaderMap();
  for (const [k, v] of req.headers) headers.add(k.toLowerCase(), v);
  if (!headers.get(':method') || !headers.get(':path') || !headers.get(':authority')) return { status: Status.BAD_ARGUMENT };
  if (!headers.get(':scheme')) headers.add(':scheme', 'http');
  if (req.body.length > 0 && !headers.has('content-length')) headers.set('content-length', String(req.body.length));
  const host = cluster.chooseHost({ hashKey: undefined });
  if (!host) return { status: Status.OK, response: Promise.resolve(failed('no healthy upstream')) };
  const response = new Promise<HttpCallResponse>((resolve) => {
    let respHeaders: HeaderMap | undefined;
    const chunks: Buffer[] = [];
    let done = false;
    let upstream: UpstreamRequest | undefined;
    const finish = (r: HttpCallResponse): void => {
      if (done) return;
      done = true;
      timer?.clear();
      host.activeRequests--;
      resolve(r);
    };
    const ok = (trailers: HeaderMap | undefined): void => {
      const status = Number(respHeaders?.get(':status') ?? 0);
      finish({ headers: respHeaders ? pairsOf(respHeaders) : [], body: Buffer.concat(chunks), trailers: trailers ? pairsOf(trailers) : [], status, message: '' });
    };
    const sink: UpstreamSink = {
      onUpstreamHeaders: (h, end) => {
        respHeaders = h;
        if (end) ok(undefined);
      },
      onUpstreamData: (d, end) => {
        chunks.push(d);
        if (end) ok(undefined);
      },
      onUpstreamTrailers: (t) => ok(t),
      onUpstreamError: (e: ProxyError) => finish(failed(e.message)),
      onUpstreamWritable: () => undefined,
      onUpstreamUpgrade: () => finish(failed('unexpected upgrade')),
    };
    const timer = req.timeoutMs > 0 ? setLongTimeout(() => {
      upstream?.abort();
      finish(failed('timeout'));
    }, req.timeoutMs) : undefined;
    timer?.unref();
    host.activeRequests++;
    const end = req.body.length === 0;
    upstream = cluster.info.protocol === 'http2' ? startHttp2Request(() => cluster.http2Session(host), headers, end, sink) : startHttp1Request(cluster.http1Pool(host), headers, end, sink);
    if (!end) upstream.sendData(req.body, true);
  });
  return { status: Status.OK, response };
}
