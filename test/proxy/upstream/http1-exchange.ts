// Test helper: one request through a cluster's Http1Pool (startHttp1Request), collected.

import type { Duplex } from 'node:stream';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import type { ProxyError } from '../../../src/proxy/errors.ts';
import type { Http1Pool } from '../../../src/proxy/upstream/http1-pool.ts';
import { startHttp1Request, type Http1RequestOptions } from '../../../src/filters/http/router/upstream-request-http1.ts';
import type { UpstreamRequest, UpstreamSink } from '../../../src/filters/http/router/upstream-request.ts';

export interface Exchanged {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: string;
  readonly bytes: Buffer;
  readonly trailers: HeaderMap | undefined;
  readonly upgrade?: { socket: Duplex; head: Buffer };
}

export interface ExchangeInput {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  /** Body chunks, sent one by one after the request starts; none = the request ends with its headers. */
  readonly body?: readonly (string | Buffer)[];
  readonly opts?: Http1RequestOptions;
  /** Called with the request once started (to abort it, pause it…). */
  readonly started?: (req: UpstreamRequest) => void;
}

/** Resolves with the response, rejects with the ProxyError the request failed with. */
export function exchange(pool: Http1Pool, input: ExchangeInput = {}): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    const h = new HeaderMap();
    h.add(':method', input.method ?? 'GET');
    h.add(':path', input.path ?? '/');
    h.add(':authority', 'test.local');
    for (const [k, v] of Object.entries(input.headers ?? {})) h.add(k, v);
    let status = 0;
    let headers = new HeaderMap();
    const chunks: Buffer[] = [];
    const done = (trailers: HeaderMap | undefined): void => {
      const bytes = Buffer.concat(chunks);
      resolve({ status, headers, body: bytes.toString(), bytes, trailers });
    };
    const sink: UpstreamSink = {
      onUpstreamHeaders(hs, end) {
        status = Number(hs.get(':status'));
        headers = hs;
        if (end) done(undefined);
      },
      onUpstreamData(d, end) {
        chunks.push(d);
        if (end) done(undefined);
      },
      onUpstreamTrailers: (t) => done(t),
      onUpstreamError: (e: ProxyError) => reject(e),
      onUpstreamWritable() {},
      onUpstreamUpgrade(hs, socket, head) {
        resolve({ status: Number(hs.get(':status')), headers: hs, body: '', bytes: Buffer.alloc(0), trailers: undefined, upgrade: { socket, head } });
      },
    };
    const body = input.body ?? [];
    const req = startHttp1Request(pool, h, body.length === 0, sink, input.opts);
    body.forEach((c, i) => req.sendData(Buffer.from(c), i === body.length - 1));
    input.started?.(req);
  });
}
