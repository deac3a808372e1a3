// The buffer filter behind the real connection manager and router, HTTP/1.1 (chunked) and h2c
// clients streaming bodies to a real upstream: the request waits for its whole body and arrives
// with a content-length; more than max_request_bytes is a 413 counted in downstream_rq_too_large;
// BufferPerRoute turns the filter off or raises the limit for one route.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Client, startProxy, type Downstream, type Proxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';

const TIMEOUT = { timeout: 20_000 };
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute';

interface Seen {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

async function upstream(): Promise<{ port: number; seen: Seen[]; server: http.Server }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, seen, server };
}

const hcm = (): string =>
  filterHcm(
    { name: 'envoy.filters.http.buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer', max_request_bytes: 64 } },
    {
      routes: [
        { match: { prefix: '/stream' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.buffer': { '@type': PER_ROUTE, disabled: true } } },
        { match: { prefix: '/upload' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.buffer': { '@type': PER_ROUTE, buffer: { max_request_bytes: 4096 } } } },
        { match: { prefix: '/' }, route: { cluster: 'up' } },
      ],
    },
  );

const cluster = (port: number): string => oneHostCluster('up', port);

/** A body streamed in pieces, with no content-length (chunked over HTTP/1.1). */
const pieces = (...parts: string[]): Readable => Readable.from(parts.map((p) => Buffer.from(p)));

async function withProxy(run: (p: Proxy, seen: Seen[]) => Promise<void>): Promise<void> {
  const up = await upstream();
  const proxy = await startProxy(hcm(), [cluster(up.port)]);
  try {
    await run(proxy, up.seen);
  } finally {
    await proxy.close();
    up.server.close();
  }
}

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: a streamed body arrives whole with a content-length; over max_request_bytes is 413`, TIMEOUT, async () => {
    await withProxy(async (proxy, seen) => {
      const c = new Client(kind, proxy.port);
      try {
        const r = await c.request({ method: 'POST', path: '/form', body: pieces('alpha-', 'beta-', 'gamma') });
        assert.equal(r.status, 200);
        assert.equal(seen[0]!.body, 'alpha-beta-gamma');
        assert.equal(seen[0]!.headers['content-length'], '16');
        assert.equal(seen[0]!.headers['transfer-encoding'], undefined);

        const big = await c.request({ method: 'POST', path: '/form', body: pieces('x'.repeat(40), 'y'.repeat(40)) });
        assert.equal(big.status, 413);
        assert.equal(seen.length, 1, 'the upstream never saw the oversized request');
        assert.equal(proxy.counter('http.ingress_http.downstream_rq_too_large'), 1);
      } finally {
        c.close();
      }
    });
  });
}

test('BufferPerRoute: disabled streams the body through; another max_request_bytes raises the limit', TIMEOUT, async () => {
  await withProxy(async (proxy, seen) => {
    const c = new Client('h1', proxy.port);
    try {
      const streamed = await c.request({ method: 'POST', path: '/stream', body: pieces('a'.repeat(100), 'b'.repeat(100)) });
      assert.equal(streamed.status, 200);
      assert.equal(seen[0]!.body.length, 200);
      assert.equal(seen[0]!.headers['transfer-encoding'], 'chunked', 'not buffered: no content-length added');
      const upload = await c.request({ method: 'POST', path: '/upload', body: pieces('c'.repeat(1000), 'd'.repeat(1000)) });
      assert.equal(upload.status, 200);
      assert.equal(seen[1]!.headers['content-length'], '2000');
      assert.equal(proxy.counter('http.ingress_http.downstream_rq_too_large'), 0);
    } finally {
      c.close();
    }
  });
});
