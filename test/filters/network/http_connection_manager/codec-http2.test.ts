// The HTTP/2 response encoders over real h2c sockets, each test on both downstream codecs: legate's
// own (h2/response-encoder.ts: frames batched to the end of the loop's turn) and node:http2's
// (codec-http2.ts: response headers held to the end of the tick, so a response whose body end or
// trailers arrive in that tick goes out without the trailers handshake). Each shape a filter can
// produce must reach the client intact: body, trailers, END_STREAM, a reset for invalid headers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { registry, type ExtensionSpec } from '../../../../src/filters/registry.ts';
import { FilterDataStatus, FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../../../../src/filters/http/filter.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { startProxy } from './harness.ts';
import { H2_CODECS, withH2Codec, type H2Codec } from '../../../helpers/h2-codec.ts';

const EMPTY = Buffer.alloc(0);
const ok = (): HeaderMap => HeaderMap.fromPairs([[':status', '200'], ['content-type', 'text/plain']]);

/** Answers with the response shape named by `x-shape`. */
class ShapeFilter implements HttpFilter {
  readonly #cb: HttpFilterCallbacks;
  constructor(cb: HttpFilterCallbacks) {
    this.#cb = cb;
  }
  #afterBody = false;
  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    const cb = this.#cb;
    if (headers.get('x-shape') === 'after-body') {
      this.#afterBody = true;
      return FilterHeadersStatus.StopIteration;
    }
    const later = (fn: () => void): void => void setTimeout(fn, 5);
    switch (headers.get('x-shape')) {
      case 'whole': // headers, data, end of data: one tick
        cb.encodeHeaders(ok(), false);
        cb.encodeData(Buffer.from('abc'), false);
        cb.encodeData(EMPTY, true);
        break;
      case 'empty':
        cb.encodeHeaders(ok(), false);
        cb.encodeData(EMPTY, true);
        break;
      case 'trailers-same-tick':
        cb.encodeHeaders(ok(), false);
        cb.encodeData(Buffer.from('abc'), false);
        cb.encodeTrailers(HeaderMap.fromPairs([['x-t', '1']]));
        break;
      case 'trailers-later':
        cb.encodeHeaders(ok(), false);
        cb.encodeData(Buffer.from('abc'), false);
        later(() => cb.encodeTrailers(HeaderMap.fromPairs([['x-t', '2']])));
        break;
      case 'end-later':
        cb.encodeHeaders(ok(), false);
        cb.encodeData(Buffer.from('ab'), false);
        later(() => cb.encodeData(Buffer.from('c'), true));
        break;
      case 'large-same-tick': {
        // More than the encoder holds with a head: it sends the head and writes on.
        cb.encodeHeaders(ok(), false);
        for (let i = 0; i < 5; i++) cb.encodeData(Buffer.alloc(10 * 1024, 0x61 + i), false);
        cb.encodeData(EMPTY, true);
        break;
      }
      case 'invalid-header':
        cb.encodeHeaders(HeaderMap.fromPairs([[':status', '200'], ['bad name', 'x']]), false);
        cb.encodeData(Buffer.from('abc'), true);
        break;
    }
    return FilterHeadersStatus.StopIteration;
  }
  onRequestBody(_data: Buffer, endStream: boolean): FilterDataStatus {
    // The whole response from the request's end: the request side of the stream is done (readableEnded).
    if (this.#afterBody && endStream) {
      this.#cb.encodeHeaders(ok(), false);
      this.#cb.encodeData(Buffer.from('done'), false);
      this.#cb.encodeData(EMPTY, true);
    }
    return FilterDataStatus.StopIterationNoBuffer;
  }
}

let registered = false;
function registerShapeFilter(): void {
  if (registered) return;
  registered = true;
  const factory: HttpFilterFactory = { terminal: true, create: (_c, cb) => new ShapeFilter(cb) };
  registry.register({ name: 'test.h2shape', protoType: 'google.protobuf.Empty', category: 'http', status: 'stable', securityPosture: 'unknown', parse: () => ({ ok: true, value: {} }), factory: () => factory, terminal: true } as ExtensionSpec);
}

interface Got {
  status: number;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** The response headers frame ended the stream. */
  endWithHeaders: boolean;
  rstCode: number;
  error: string | undefined;
}

function get(session: http2.ClientHttp2Session, shape: string, body?: Buffer): Promise<Got> {
  return new Promise((resolve) => {
    const req = session.request({ ':path': '/', ':method': body ? 'POST' : 'GET', 'x-shape': shape }, { endStream: body === undefined });
    if (body) req.end(body);
    const chunks: Buffer[] = [];
    const got: Got = { status: 0, body: EMPTY, trailers: undefined, endWithHeaders: false, rstCode: 0, error: undefined };
    req.on('response', (h, flags) => {
      got.status = Number(h[':status']);
      got.endWithHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    req.on('trailers', (t) => (got.trailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e: Error) => (got.error = e.message));
    req.on('close', () => {
      got.body = Buffer.concat(chunks);
      got.rstCode = req.rstCode ?? 0;
      resolve(got);
    });
  });
}

/** Each test runs on legate's own HTTP/2 codec (h2/) and on node:http2's. */
async function withProxy(codec: H2Codec, fn: (session: http2.ClientHttp2Session, counter: (n: string) => number) => Promise<void>): Promise<void> {
  registerShapeFilter();
  const p = await withH2Codec(codec, () => startProxy({ http_filters: [{ name: 'test.h2shape' }] }));
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  session.on('error', () => {});
  try {
    await fn(session, (n) => p.counter(n));
  } finally {
    session.close();
    await p.close();
  }
}

for (const codec of H2_CODECS) {
  test(`${codec}: a whole response in one tick arrives intact, without trailers`, { timeout: 10_000 }, async () => {
    await withProxy(codec, async (session, counter) => {
      const r = await get(session, 'whole');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'abc');
      assert.equal(r.trailers, undefined);
      assert.equal(r.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(r.error, undefined);
      const e = await get(session, 'empty');
      assert.equal(e.status, 200);
      assert.equal(e.body.length, 0);
      assert.equal(e.endWithHeaders, true, 'an empty body ends the stream with the HEADERS frame');
      assert.equal(counter('downstream_rq_2xx'), 2);
    });
  });

  test(`${codec}: trailers in the tick of the headers, and in a later tick`, { timeout: 10_000 }, async () => {
    await withProxy(codec, async (session) => {
      const same = await get(session, 'trailers-same-tick');
      assert.equal(same.body.toString(), 'abc');
      assert.equal(same.trailers?.['x-t'], '1');
      assert.equal(same.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      const later = await get(session, 'trailers-later');
      assert.equal(later.body.toString(), 'abc');
      assert.equal(later.trailers?.['x-t'], '2');
    });
  });

  test(`${codec}: a response that ends in a later tick, and one larger than what the encoder holds`, { timeout: 10_000 }, async () => {
    await withProxy(codec, async (session) => {
      const r = await get(session, 'end-later');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'abc');
      assert.equal(r.trailers, undefined);
      const big = await get(session, 'large-same-tick');
      assert.equal(big.body.length, 50 * 1024);
      for (let i = 0; i < 5; i++) assert.equal(big.body[i * 10 * 1024], 0x61 + i);
    });
  });

  test(`${codec}: response headers node:http2 refuses reset the stream`, { timeout: 10_000 }, async () => {
    await withProxy(codec, async (session) => {
      const r = await get(session, 'invalid-header');
      assert.equal(r.status, 0);
      assert.equal(r.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
      // The session survives: the next stream is answered.
      const next = await get(session, 'whole');
      assert.equal(next.body.toString(), 'abc');
    });
  });

  test(`${codec}: a response completed after the request body ended arrives whole, without a reset`, { timeout: 10_000 }, async () => {
    await withProxy(codec, async (session, counter) => {
      for (let i = 0; i < 3; i++) {
        const r = await get(session, 'after-body', Buffer.from('hello'));
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'done');
        assert.equal(r.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      }
      assert.equal(counter('downstream_rq_2xx'), 3);
    });
  });
}
