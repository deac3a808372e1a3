// The compressor filter behind the real connection manager and router: real upstreams stream
// bodies in pieces (HTTP/1.1, and HTTP/2 with trailers), real HTTP/1.1 and h2c clients ask with
// Accept-Encoding, and the bodies they get are decompressed with node:zlib and compared; what is not
// compressed (no Accept-Encoding, small, other type, already encoded, etags, a route that turns the
// filter off) is checked too, with Envoy's compressor stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Client, startProxy, type Downstream, type Proxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';
import { negotiate } from '../../../../src/filters/http/compressor/filter.ts';

const TIMEOUT = { timeout: 20_000 };
const TEXT = Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');

/** Answers by path: /text (in 4 pieces, no content-length), /small, /png, /encoded, /etag. */
async function upstream(): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    switch (req.url) {
      case '/small':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
        return res.end('0123456789');
      case '/png':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(TEXT);
      case '/encoded':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
        return res.end(zlib.gzipSync(TEXT));
      case '/etag':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', etag: '"abc"' });
        return res.end(TEXT);
      default: {
        res.writeHead(200, { 'content-type': 'application/json' });
        const q = TEXT.length / 4;
        for (let i = 0; i < 3; i++) res.write(TEXT.slice(i * q, (i + 1) * q));
        return res.end(TEXT.slice(3 * q));
      }
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server };
}

const hcm = (library: Record<string, unknown>, response: Record<string, unknown> = {}): string =>
  filterHcm(
    { name: 'envoy.filters.http.compressor', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor', compressor_library: library, response_direction_config: response } },
    {
      routes: [
        { match: { prefix: '/off' }, route: { cluster: 'up', prefix_rewrite: '/text' }, typed_per_filter_config: { 'envoy.filters.http.compressor': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute', disabled: true } } },
        { match: { prefix: '/' }, route: { cluster: 'up' } },
      ],
    },
  );

const GZIP = { name: 'text_optimized', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip', memory_level: 3, window_bits: 10, compression_level: 'BEST_COMPRESSION' } };
const BROTLI = { name: 'br_lib', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli', quality: 5 } };

const cluster = (port: number, h2 = false): string => oneHostCluster('up', port, h2);

async function withProxy(yaml: string, run: (p: Proxy) => Promise<void>): Promise<void> {
  const up = await upstream();
  const proxy = await startProxy(yaml, [cluster(up.port)]);
  try {
    await run(proxy);
  } finally {
    await proxy.close();
    up.server.close();
  }
}

const stat = (p: Proxy, lib: string, enc: string, name: string): number => p.counter(`http.ingress_http.compressor.${lib}.${enc}.${name}`);

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: gzip, chunk by chunk; what must not be compressed is passed on as it is`, TIMEOUT, async () => {
    await withProxy(hcm(GZIP), async (p) => {
      const c = new Client(kind, p.port);
      try {
        const r = await c.request({ path: '/text', headers: { 'accept-encoding': 'gzip, deflate' } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.equal(r.headers['content-length'], undefined);
        assert.equal(r.headers['vary'], 'accept-encoding');
        assert.equal(zlib.gunzipSync(r.body).toString(), TEXT, 'the body decompresses to what the upstream sent');
        assert.ok(r.body.length < TEXT.length / 5, `compressed to ${r.body.length} of ${TEXT.length}`);

        const plain = await c.request({ path: '/text' });
        assert.equal(plain.headers['content-encoding'], undefined);
        assert.equal(plain.body.toString(), TEXT);
        assert.equal(plain.headers['vary'], 'accept-encoding', 'the answer varies with Accept-Encoding');

        const small = await c.request({ path: '/small', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(small.body.toString(), '0123456789');
        const png = await c.request({ path: '/png', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(png.headers['content-encoding'], undefined);
        const encoded = await c.request({ path: '/encoded', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(zlib.gunzipSync(encoded.body).toString(), TEXT, 'an encoded body is not encoded twice');
        const etag = await c.request({ path: '/etag', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(etag.headers['etag'], 'W/"abc"', 'a strong etag is weakened');
        assert.equal(zlib.gunzipSync(etag.body).toString(), TEXT);
        const off = await c.request({ path: '/off', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(off.headers['content-encoding'], undefined, 'CompressorPerRoute disabled');
        assert.equal(off.body.toString(), TEXT);

        assert.equal(stat(p, 'text_optimized', 'gzip', 'response.compressed'), 2);
        assert.equal(stat(p, 'text_optimized', 'gzip', 'header_compressor_used'), 2);
        assert.equal(stat(p, 'text_optimized', 'gzip', 'no_accept_header'), 1);
        assert.equal(stat(p, 'text_optimized', 'gzip', 'response.content_length_too_small'), 1);
        assert.equal(stat(p, 'text_optimized', 'gzip', 'response.total_uncompressed_bytes'), 2 * TEXT.length);
        assert.ok(stat(p, 'text_optimized', 'gzip', 'response.total_compressed_bytes') > 0);
      } finally {
        c.close();
      }
    });
  });
}

test('brotli by q-value; identity preferred, wildcard, disable_on_etag_header', TIMEOUT, async () => {
  await withProxy(hcm(BROTLI, { disable_on_etag_header: true }), async (p) => {
    const c = new Client('h1', p.port);
    try {
      const br = await c.request({ path: '/text', headers: { 'accept-encoding': 'gzip;q=0.5, br;q=1' } });
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal(zlib.brotliDecompressSync(br.body).toString(), TEXT);
      const id = await c.request({ path: '/text', headers: { 'accept-encoding': 'identity;q=1, br;q=0.5' } });
      assert.equal(id.headers['content-encoding'], undefined);
      const any = await c.request({ path: '/text', headers: { 'accept-encoding': '*' } });
      assert.equal(any.headers['content-encoding'], 'br');
      const etag = await c.request({ path: '/etag', headers: { 'accept-encoding': 'br' } });
      assert.equal(etag.headers['content-encoding'], undefined);
      assert.equal(etag.headers['etag'], '"abc"');
      assert.equal(stat(p, 'br_lib', 'br', 'header_identity'), 1);
      assert.equal(stat(p, 'br_lib', 'br', 'header_wildcard'), 1);
      assert.equal(stat(p, 'br_lib', 'br', 'not_compressed_etag'), 1);
    } finally {
      c.close();
    }
  });
});

test('HTTP/2 upstream with trailers: the compressed body ends before the trailers go on', TIMEOUT, async () => {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
    stream.write(TEXT.slice(0, 5000));
    stream.end(TEXT.slice(5000));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = await startProxy(hcm(GZIP), [cluster((server.address() as AddressInfo).port, true)]);
  const c = new Client('h2', proxy.port);
  try {
    const r = await c.request({ path: '/t', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(r.body).toString(), TEXT);
    assert.equal(r.trailers['x-checksum'], 'abc');
  } finally {
    c.close();
    await proxy.close();
    server.close();
  }
});

test('config: zstd and request compression are refused with their field paths', TIMEOUT, async () => {
  const zstd = { name: 'z', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd' } };
  await assert.rejects(startProxy(hcm(zstd), [cluster(1)]), /compressor_library\.typed_config.*not supported/);
  const withRequest = hcm(GZIP).replace('response_direction_config: {}', 'request_direction_config: { common_config: { enabled: { default_value: true, runtime_key: rq } } }');
  await assert.rejects(startProxy(withRequest, [cluster(1)]), /request_direction_config\.common_config\.enabled/);
});

test('negotiate: Accept-Encoding against one encoding, with Envoy\'s header stats', () => {
  assert.deepEqual(negotiate(undefined, 'gzip'), { use: false, stat: 'no_accept_header' });
  assert.deepEqual(negotiate('gzip', 'gzip'), { use: true, stat: 'header_compressor_used' });
  assert.deepEqual(negotiate('GZIP;q=0.2', 'gzip'), { use: true, stat: 'header_compressor_used' });
  assert.deepEqual(negotiate('gzip;q=0', 'gzip'), { use: false, stat: 'header_identity' });
  assert.deepEqual(negotiate('*;q=0.5', 'gzip'), { use: true, stat: 'header_wildcard' });
  assert.deepEqual(negotiate('*, gzip;q=0', 'gzip'), { use: false, stat: 'header_identity' }, 'an explicit q=0 wins over the wildcard');
  assert.deepEqual(negotiate('deflate', 'gzip'), { use: false, stat: 'header_identity' });
  assert.deepEqual(negotiate('identity;q=0.9, gzip;q=0.8', 'gzip'), { use: false, stat: 'header_identity' });
  assert.deepEqual(negotiate('gzip;q=2, ;q=x', 'gzip'), { use: false, stat: 'header_not_valid' });
});
