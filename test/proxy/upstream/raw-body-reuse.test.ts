// Content-length response bodies pass through the proxy as the upstream socket's own read buffer,
// which is read into again once the downstream HTTP/1.1 socket took a chunk at once (body-lease.ts).
// These check the bytes stay exact wherever a chunk outlives its read: a slow reader (downstream
// writes queue), pipelined requests, one upstream connection shared by fast and slow clients, a
// filter that keeps response chunks, and an HTTP/2 downstream. Bodies differ at every offset and
// per request, so a chunk overwritten by a later read cannot go unnoticed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { registry, type ExtensionSpec } from '../../../src/filters/registry.ts';
import { FilterDataStatus, type HttpFilter, type HttpFilterFactory } from '../../../src/filters/http/filter.ts';
import { giveBack, lend, expose, settle } from '../../../src/proxy/http/body-lease.ts';
import { Http1ResponseEncoder } from '../../../src/proxy/http/codec-http1-encoder.ts';
import { directWriter } from '../../../src/proxy/tcp/direct-write.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { startProxy, Client, ROUTER_FILTER, type Proxy } from '../../filters/http/router/proxy-harness.ts';
import { clusterYaml } from '../../filters/http/router/harness.ts';
import { startHttp1Upstream, type Upstream } from '../../helpers/upstreams.ts';

const T = { timeout: 60_000 };

/** `n` bytes that depend on `seed` and on every offset (a 32-bit LCG, one byte per step). */
function body(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** GET /<n>/<seed> answers body(n, seed) with a content-length, in one write. */
function bodyUpstream(): Promise<Upstream> {
  return startHttp1Upstream((req, res) => {
    const [, n, seed] = (req.url ?? '').split('/');
    const b = body(Number(n), Number(seed));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length });
    res.end(b);
  });
}

/** Response body chunks a filter keeps (and passes on): what it saw must stay what was sent. */
const kept: Buffer[] = [];
class KeepBodyFilter implements HttpFilter {
  onResponseBody(data: Buffer): FilterDataStatus {
    kept.push(data);
    return FilterDataStatus.Continue;
  }
}
function registerKeepBody(): void {
  const factory: HttpFilterFactory = { terminal: false, create: () => new KeepBodyFilter() };
  registry.register({ name: 'test.keep_response_body', protoType: 'google.protobuf.Empty', category: 'http', status: 'stable', securityPosture: 'unknown', parse: () => ({ ok: true, value: {} }), factory: () => factory, terminal: false } as ExtensionSpec);
}

function hcm(keepBody: boolean): string {
  const filters = ROUTER_FILTER.trim().split('\n');
  if (keepBody) filters.splice(1, 0, '- name: test.keep_response_body');
  return `
stat_prefix: ingress_http
codec_type: AUTO
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
    routes:
    - { match: { prefix: / }, route: { cluster: up } }
${filters.join('\n')}`;
}

/** One upstream connection at most: every request, fast or slow, goes through the same read buffer. */
const ONE_CONNECTION = 'circuit_breakers:\n  thresholds:\n  - { max_connections: 1, max_pending_requests: 1000 }';

async function withProxy(opts: { keepBody?: boolean }, fn: (p: Proxy) => Promise<void>): Promise<void> {
  if (opts.keepBody) registerKeepBody();
  const upstream = await bodyUpstream();
  const proxy = await startProxy(hcm(opts.keepBody === true), [clusterYaml('up', upstream.port, false, ONE_CONNECTION)]);
  try {
    await fn(proxy);
  } finally {
    await proxy.close();
    await upstream.close();
  }
}

/** GET on a fresh keep-alive agent connection, read as fast as it comes. */
function fetchBody(agent: http.Agent, port: number, n: number, seed: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/${n}/${seed}`, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * Sends the requests pipelined on one raw connection and reads the responses slowly: it stops
 * reading for `stallMs` at first and then after every read, so the proxy's writes queue.
 */
async function slowPipelined(port: number, reqs: ReadonlyArray<{ n: number; seed: number }>, stallMs: number): Promise<Buffer[]> {
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  sock.setNoDelay(true);
  sock.pause();
  sock.write(reqs.map((r) => `GET /${r.n}/${r.seed} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''));
  const bodies: Buffer[] = [];
  let buf = Buffer.alloc(0);
  await new Promise((r) => setTimeout(r, stallMs * 10));
  while (bodies.length < reqs.length) {
    const chunk = sock.read() as Buffer | null;
    if (chunk === null) {
      const closed = await Promise.race([once(sock, 'readable').then(() => false), once(sock, 'close').then(() => true)]);
      if (closed) throw new Error(`connection closed after ${bodies.length} responses`);
      continue;
    }
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) break;
      const head = buf.subarray(0, end).toString('latin1');
      assert.match(head, /^HTTP\/1\.1 200 /);
      const len = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
      if (buf.length < end + 4 + len) break;
      bodies.push(Buffer.from(buf.subarray(end + 4, end + 4 + len)));
      buf = buf.subarray(end + 4 + len);
    }
    await new Promise((r) => setTimeout(r, stallMs));
  }
  sock.destroy();
  return bodies;
}

function assertBody(got: Buffer, n: number, seed: number): void {
  assert.equal(got.length, n, `body ${seed}: length`);
  assert.ok(got.equals(body(n, seed)), `body ${seed} (${n} B): bytes differ`);
}

test('body loan: only the writer gives a chunk back, and exposure cancels it', () => {
  const a = Buffer.alloc(4);
  lend(a);
  giveBack(a);
  assert.equal(settle(a), true);
  lend(a);
  giveBack(Buffer.alloc(4)); // another chunk
  assert.equal(settle(a), false);
  lend(a);
  expose();
  giveBack(a);
  assert.equal(settle(a), false);
  lend(a);
  assert.equal(settle(a), false, 'never given back');
  const inner = Buffer.alloc(4);
  lend(a);
  lend(inner); // a nested loan ends the outer one
  giveBack(inner);
  assert.equal(settle(inner), true);
  assert.equal(settle(a), false);
});

// Reads of one size, and reads below the socket's high-water mark (16 KiB): a small chunk written in
// part leaves write() answering true with bytes still queued.
for (const sizes of [[64 * 1024], [1000, 4096, 9000, 12_000], [64 * 1024, 4096, 30_000, 1000, 16_384, 9000]]) {
  test(`the HTTP/1.1 encoder gives back only chunks the socket took at once (peer not reading, reads of ${sizes.join('/')} B)`, T, async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [down] = (await once(server, 'connection')) as [net.Socket];
    try {
      peer.pause();
      const READ = 64 * 1024;
      const avg = sizes.reduce((a, b) => a + b, 0) / sizes.length;
      const reads = Math.ceil((24 * 1024 * 1024) / avg); // well past what the kernel buffers for a peer that does not read
      const lengths = Array.from({ length: reads }, (_, i) => sizes[i % sizes.length]!);
      const want = body(lengths.reduce((a, b) => a + b, 0), 7);
      let completed = false;
      const enc = new Http1ResponseEncoder(down, directWriter(down), { responseComplete: () => (completed = true), readDisable: () => {} }, { http10: false, keepAlive: true, isHead: false, trailers: false, directWrites: true });
      enc.encodeHeaders(HeaderMap.fromPairs([[':status', '200'], ['content-length', String(want.length)]]), false);
      // As the upstream connection does: one read buffer, read into again only when its chunk came back.
      let buf = Buffer.allocUnsafe(READ);
      let reused = 0;
      let kept = 0;
      let at = 0;
      for (let i = 0; i < reads; i++) {
        const chunk = buf.subarray(0, lengths[i]);
        want.copy(chunk, 0, at, at + chunk.length);
        at += chunk.length;
        lend(chunk);
        enc.encodeData(chunk, i === reads - 1);
        if (settle(chunk)) {
          reused++;
          buf.fill(0xee); // what the next read does to it
        } else {
          kept++;
          buf = Buffer.allocUnsafe(READ);
        }
      }
      down.end();
      const got: Buffer[] = [];
      peer.on('data', (c: Buffer) => got.push(c));
      peer.resume();
      await once(peer, 'end');
      const all = Buffer.concat(got);
      const bodyAt = all.indexOf('\r\n\r\n') + 4;
      assert.equal(all.length - bodyAt, want.length);
      assert.ok(all.subarray(bodyAt).equals(want), 'bytes on the wire are what was sent');
      assert.ok(completed);
      assert.ok(reused > 0, 'the first writes went through at once');
      assert.ok(kept > 0, 'later writes queued');
    } finally {
      peer.destroy();
      down.destroy();
      server.close();
    }
  });
}

test('large bodies stay byte-exact for slow pipelined readers and fast readers sharing one upstream connection', T, async () => {
  await withProxy({}, async (p) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const sizes = [65_536, 200_000, 1_000_000, 3 * 1024 * 1024 + 7];
      const fast = (async () => {
        for (let i = 0; i < 24; i++) {
          const n = sizes[i % sizes.length]!;
          const got = await Promise.all([0, 1, 2].map((k) => fetchBody(agent, p.port, n, 1000 + i * 3 + k)));
          got.forEach((b, k) => assertBody(b, n, 1000 + i * 3 + k));
        }
      })();
      const slowReqs = [
        { n: 8 * 1024 * 1024, seed: 1 },
        { n: 65_536, seed: 2 },
        { n: 6 * 1024 * 1024 + 3, seed: 3 },
      ];
      const slow = Promise.all([slowPipelined(p.port, slowReqs, 2), slowPipelined(p.port, slowReqs.map((r) => ({ ...r, seed: r.seed + 10 })), 1)]);
      const [, [s1, s2]] = await Promise.all([fast, slow]);
      s1.forEach((b, i) => assertBody(b, slowReqs[i]!.n, slowReqs[i]!.seed));
      s2.forEach((b, i) => assertBody(b, slowReqs[i]!.n, slowReqs[i]!.seed + 10));
      assert.equal(p.counter('cluster.up.upstream_cx_total'), 1, 'every response came over the one upstream connection');
    } finally {
      agent.destroy();
    }
  });
});

test('a filter that keeps response chunks still holds the bytes it saw after later reads', T, async () => {
  await withProxy({ keepBody: true }, async (p) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const [n, seed] of [[1_000_000, 21], [65_536, 22], [3_000_000, 23]] as const) {
        kept.length = 0;
        const got = await fetchBody(agent, p.port, n, seed);
        assertBody(got, n, seed);
        // The next response is read before these are compared: a reused buffer would show here.
        await fetchBody(agent, p.port, 500_000, seed + 100);
        assertBody(Buffer.concat(kept.splice(0, kept.length)).subarray(0, n), n, seed);
      }
    } finally {
      agent.destroy();
    }
  });
});

test('an HTTP/2 downstream gets large HTTP/1.1 upstream bodies byte-exact', T, async () => {
  await withProxy({}, async (p) => {
    const c = new Client('h2', p.port);
    try {
      const replies = await Promise.all([1, 2, 3, 4].map((seed) => c.request({ path: `/${seed * 700_000}/${seed + 40}` })));
      replies.forEach((r, i) => {
        assert.equal(r.status, 200);
        assertBody(r.body, (i + 1) * 700_000, i + 41);
      });
    } finally {
      c.close();
    }
  });
});
