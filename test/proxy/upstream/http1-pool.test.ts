// The upstream HTTP/1.1 connection and pool (llhttp RESPONSE mode, no undici) against real servers on
// 127.0.0.1: raw net servers where the wire format itself is the point, node:http elsewhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../src/proxy/errors.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import type { Http1Pool } from '../../../src/proxy/upstream/http1-pool.ts';
import { exchange } from './http1-exchange.ts';

const T = { timeout: 15_000 };

async function withPool(server: net.Server, extra: string, fn: (pool: Http1Pool, stats: StatsStore) => Promise<void>): Promise<void> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const d = decodeJson<Cluster__Output>(
    'envoy.config.cluster.v3.Cluster',
    parse(`
name: up
connect_timeout: 1s
${extra}
load_assignment:
  cluster_name: up
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } }`),
  );
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const c = parseCluster(d.value, 'c');
  if (!c.ok) throw new Error(JSON.stringify(c.errors));
  const stats = new StatsStore();
  const cm = createClusterManager([c.value], { stats, workerId: 0 });
  try {
    await cm.ready();
    const cl = cm.get('up')!;
    await fn(cl.http1Pool(cl.chooseHost({ hashKey: undefined })!), stats);
  } finally {
    await cm.close();
    server.close();
    if (server instanceof http.Server) server.closeAllConnections();
  }
}

function stat(stats: StatsStore, name: string): number | undefined {
  const s = stats.snapshot();
  return s.counters[name] ?? s.gauges[name];
}

/** A raw server: each connection's bytes go to `onData`, which may answer. */
function rawServer(onData: (socket: net.Socket, data: string, all: string) => void): net.Server & { seen: string[] } {
  const seen: string[] = [];
  const server = net.createServer((socket) => {
    let all = '';
    const i = seen.push('') - 1;
    socket.on('data', (d) => {
      all += d.toString('latin1');
      seen[i] = all;
      onData(socket, d.toString('latin1'), all);
    });
    socket.on('error', () => {});
  });
  return Object.assign(server, { seen });
}

test('a body without content-length goes chunked; POST without a body gets content-length: 0; one connection', T, async () => {
  const bodies: Array<{ te: string | undefined; cl: string | undefined; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      bodies.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], body });
      res.end('ok');
    });
  });
  await withPool(server, '', async (pool, stats) => {
    assert.equal((await exchange(pool, { method: 'POST', body: ['hello ', 'world'] })).body, 'ok');
    assert.equal((await exchange(pool, { method: 'POST', headers: { 'content-length': '3' }, body: ['abc'] })).body, 'ok');
    assert.equal((await exchange(pool, { method: 'POST' })).body, 'ok');
    assert.deepEqual(bodies, [
      { te: 'chunked', cl: undefined, body: 'hello world' },
      { te: undefined, cl: '3', body: 'abc' },
      { te: undefined, cl: '0', body: '' },
    ]);
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 1);
  });
});

test('HEAD with a content-length, 204, 1xx before the final response, trailers: the connection is reused', T, async () => {
  // Answers each request of a connection in turn.
  let n = 0;
  const server = net.createServer((socket) => {
    n++;
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const req = buf.slice(0, end);
        buf = buf.slice(end + 4);
        if (req.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n');
        else if (req.includes('GET /nc')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
        else if (req.includes('GET /info')) socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi');
        else socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-checksum: 42\r\n\r\n');
      }
    });
    socket.on('error', () => {});
  });
  await withPool(server, '', async (pool) => {
    const head = await exchange(pool, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '1234');
    assert.equal(head.body, '');
    assert.equal((await exchange(pool, { path: '/nc' })).status, 204);
    const info = await exchange(pool, { path: '/info' });
    assert.equal(info.status, 200);
    assert.equal(info.body, 'hi');
    const tr = await exchange(pool, { path: '/tr' });
    assert.equal(tr.body, 'abc');
    assert.equal(tr.trailers?.get('x-checksum'), '42');
    assert.equal(tr.headers.get('transfer-encoding'), undefined, 'hop-by-hop dropped');
    assert.equal(n, 1, 'every response left the connection reusable');
  });
});

test('a close-delimited response ends at the close; connection: close is not reused', T, async () => {
  const server = rawServer((socket, _d, all) => {
    if (all.endsWith('\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end');
  });
  await withPool(server, '', async (pool, stats) => {
    assert.equal((await exchange(pool)).body, 'until the end');
    assert.equal((await exchange(pool)).body, 'until the end');
    assert.equal(server.seen.length, 2);
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 2);
  });
});

test('a response cut short is a retryable reset (UC); a malformed one a protocol error (UPE)', T, async () => {
  const server = rawServer((socket, _d, all) => {
    if (!all.endsWith('\r\n\r\n')) return;
    if (all.includes('/short')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    else socket.end('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab');
  });
  await withPool(server, '', async (pool) => {
    await assert.rejects(exchange(pool, { path: '/short' }), (e: unknown) => {
      assert.ok(e instanceof ProxyError);
      assert.equal(e.code, ErrorCode.UPSTREAM_RESET);
      assert.equal(e.flag, ResponseFlag.UpstreamConnectionTermination);
      assert.equal(e.retryable, true);
      return true;
    });
    await assert.rejects(exchange(pool, { path: '/bad' }), (e: unknown) => {
      assert.ok(e instanceof ProxyError);
      assert.equal(e.code, ErrorCode.UPSTREAM_PROTOCOL_ERROR);
      assert.equal(e.flag, ResponseFlag.UpstreamProtocolError);
      return true;
    });
  });
});

test('a header the wire cannot carry fails the request before it is sent (UPE)', T, async () => {
  const server = rawServer(() => assert.fail('nothing should reach the upstream'));
  await withPool(server, '', async (pool) => {
    await assert.rejects(exchange(pool, { headers: { 'x-bad': 'a\r\nx-injected: 1' } }), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_PROTOCOL_ERROR);
    await assert.rejects(exchange(pool, { path: '/a b' }), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_PROTOCOL_ERROR);
    assert.equal(server.seen.length, 0);
  });
});

test('upgrade: 101 hands over the socket with the bytes read past the head', T, async () => {
  const server = rawServer((socket, d) => {
    if (d.includes('\r\n\r\n')) socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nfirst-frame');
    else socket.write(`echo:${d}`);
  });
  await withPool(server, '', async (pool) => {
    const r = await exchange(pool, { opts: { upgrade: 'websocket' } });
    assert.equal(r.status, 101);
    assert.equal(r.headers.get('upgrade'), 'websocket');
    assert.equal(r.upgrade!.head.toString(), 'first-frame');
    assert.match(server.seen[0]!, /connection: upgrade\r\nupgrade: websocket\r\n/);
    const { socket } = r.upgrade!;
    socket.write('ping');
    const [echo] = (await once(socket, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'echo:ping');
    socket.destroy();
  });
});

test('max_requests_per_connection and idle_timeout close connections', T, async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const extra = `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    common_http_protocol_options: { max_requests_per_connection: 2, idle_timeout: 0.2s }
    explicit_http_config: { http_protocol_options: {} }`;
  await withPool(server, extra, async (pool, stats) => {
    for (let i = 0; i < 3; i++) assert.equal((await exchange(pool)).body, 'ok');
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 2);
    for (let i = 0; i < 100 && stat(stats, 'cluster.up.upstream_cx_active') !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(stat(stats, 'cluster.up.upstream_cx_active'), 0, 'the idle connection closed');
  });
});

test('an aborted request closes its connection; the next request gets a new one', T, async () => {
  const server = rawServer((socket, _d, all) => {
    if (all.includes('/slow')) return; // never answers
    if (all.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  });
  await withPool(server, '', async (pool, stats) => {
    const aborted = exchange(pool, { path: '/slow', started: (req) => setTimeout(() => req.abort(), 50) });
    const outcome = await Promise.race([aborted.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(() => r('silent'), 300))]);
    assert.equal(outcome, 'silent', 'no callback after abort');
    assert.equal((await exchange(pool, { path: '/fast' })).body, 'ok');
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 2);
    assert.equal(stat(stats, 'cluster.up.upstream_cx_destroy'), 1);
  });
});

test("the server's keep-alive hint: a connection is not reused once the server is about to close it", T, async () => {
  const server = rawServer((socket, _d, all) => {
    if (all.endsWith('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nKeep-Alive: timeout=1\r\n\r\nok');
  });
  await withPool(server, '', async (pool, stats) => {
    assert.equal((await exchange(pool)).body, 'ok');
    assert.equal((await exchange(pool)).body, 'ok');
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 1, 'reused within the hint');
    await new Promise((r) => setTimeout(r, 600)); // past timeout=1 s less the margin (here half of it)
    assert.equal((await exchange(pool)).body, 'ok');
    assert.equal(stat(stats, 'cluster.up.upstream_cx_total'), 2, 'a new connection after the hint');
  });
});

test('large content-length bodies (head alone, then pieces; or head and body in one write) pass uncopied; the connection is reused; one cut short is a reset', T, async () => {
  const big = Buffer.alloc(200_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  let n = 0;
  const server = net.createServer((socket) => {
    n++;
    let buf = '';
    socket.on('data', async (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const req = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const head = `HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`;
        if (req.includes('/pieces')) {
          socket.write(head);
          for (let off = 0; off < big.length; off += 30_000) {
            await new Promise((r) => setTimeout(r, 5));
            socket.write(big.subarray(off, off + 30_000));
          }
        } else if (req.includes('/short')) socket.end(Buffer.concat([Buffer.from(head), big.subarray(0, 100_000)]));
        else socket.write(Buffer.concat([Buffer.from(head), big]));
      }
    });
    socket.on('error', () => {});
  });
  await withPool(server, '', async (pool) => {
    for (const path of ['/pieces', '/one', '/pieces', '/one']) {
      const r = await exchange(pool, { path });
      assert.equal(r.status, 200);
      assert.ok(r.bytes.equals(big), `${path}: the same bytes`);
    }
    assert.equal(n, 1, 'the parser was reset after each uncopied body: one connection');
    await assert.rejects(exchange(pool, { path: '/short' }), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_RESET);
  });
});

test('one connection: fast-path heads (plain content-length) and llhttp heads (chunked, split, 204, close-delimited) alternate, each body framed right', T, async () => {
  // The nth request on the connection gets the nth scripted response; the split one in two writes.
  const script: Array<string | [string, string]> = [
    'HTTP/1.1 200 OK\r\ncontent-length: 5\r\nkeep-alive: timeout=30\r\n\r\nfirst',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    'HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n',
    ['HTTP/1.1 200 OK\r\ncontent-le', 'ngth: 4\r\n\r\nsplt'],
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-A: 1\r\n\r\nsecond',
    'HTTP/1.0 200 OK\r\n\r\nuntil close',
  ];
  let n = 0;
  const server = rawServer((socket, data) => {
    for (let k = 0; k < (data.match(/\r\n\r\n/g) ?? []).length; k++) {
      const r = script[n++]!;
      if (typeof r === 'string') socket.write(r);
      else {
        socket.write(r[0]);
        setTimeout(() => socket.write(r[1]), 30);
      }
      if (n === script.length) socket.end();
    }
  });
  await withPool(server, 'circuit_breakers: { thresholds: [{ max_connections: 1 }] }', async (pool) => {
    const got: string[] = [];
    for (let i = 0; i < script.length; i++) {
      const r = await exchange(pool, { path: `/${i}` });
      got.push(`${r.status} ${r.body}${r.headers.get('x-a') ? ` x-a=${r.headers.get('x-a')}` : ''}`);
    }
    assert.deepEqual(got, ['200 first', '200 abcde', '201 ', '200 splt', '204 ', '200 second x-a=1', '200 until close']);
    assert.equal(server.seen.length, 1, 'all on one connection');
  });
});

test('response heads the fast path leaves to llhttp are still refused there: duplicate content-length, content-length with transfer-encoding', T, async () => {
  const bad = ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc', 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'];
  let i = 0;
  const server = rawServer((socket) => socket.write(bad[i++ % bad.length]!));
  await withPool(server, '', async (pool) => {
    for (let k = 0; k < bad.length; k++) {
      await assert.rejects(exchange(pool), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_PROTOCOL_ERROR);
    }
  });
});
