// The router behind the real connection manager: HTTP/1.1 and h2c downstreams × HTTP/1.1 and h2c
// upstreams, config from YAML, real clients and servers; asserts responses and Envoy's counters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import net from 'node:net';
import { once } from 'node:events';
import { clusterYaml } from './harness.ts';
import { closedPort, readBody, startUpstream, type Req as UpReq, type Res } from './upstreams.ts';
import { Client, ROUTER_FILTER, startProxy, type Downstream } from './proxy-harness.ts';

const TIMEOUT = { timeout: 30_000 };
const MiB = 1024 * 1024;

function echo(req: UpReq, res: Res): void {
  void readBody(req).then((body) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-up', 'yes');
    res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: body.toString() }));
  });
}

function hcm(extra = ''): string {
  return `
stat_prefix: ingress_http
${extra}
codec_type: AUTO
# Loopback clients are then internal, so Envoy keeps their x-envoy-* request headers.
use_remote_address: true
upgrade_configs: [{ upgrade_type: websocket }]
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
    response_headers_to_add: [{ header: { key: x-vh, value: added } }]
    routes:
    - { match: { prefix: /p/timeout }, route: { cluster: up, timeout: 0.2s } }
    - { match: { prefix: /p/idle }, route: { cluster: up, timeout: 0s, retry_policy: { per_try_idle_timeout: 0.2s } } }
    - { match: { prefix: /p/rewrite/ }, route: { cluster: up, prefix_rewrite: /rewritten/ }, request_headers_to_add: [{ header: { key: x-route-added, value: yes } }] }
    - { match: { prefix: /p/uh }, route: { cluster: empty } }
    - { match: { prefix: /p/uf }, route: { cluster: closed } }
    - { match: { prefix: /p/ }, route: { cluster: up } }
${ROUTER_FILTER}`;
}

const EMPTY_CLUSTER = `
name: empty
connect_timeout: 1s
load_assignment: { cluster_name: empty }`;

async function setup(up: 'http1' | 'http2', handler: (req: UpReq, res: Res) => void = echo, hcmExtra = '') {
  const upstream = await startUpstream(up, handler);
  const closed = await closedPort();
  const proxy = await startProxy(hcm(hcmExtra), [clusterYaml('up', upstream.port, up === 'http2'), EMPTY_CLUSTER, clusterYaml('closed', closed)]);
  return {
    upstream,
    proxy,
    close: async () => {
      await proxy.close();
      await upstream.close();
    },
  };
}

for (const down of ['h1', 'h2'] as Downstream[]) {
  for (const up of ['http1', 'http2'] as const) {
    const name = `${down} → ${up}`;

    test(`${name}: GET and POST with headers, service time, mutations, stats`, TIMEOUT, async () => {
      const e = await setup(up);
      const c = new Client(down, e.proxy.port);
      try {
        const g = await c.request({ path: '/p/get?q=1', headers: { 'x-test': 'v' } });
        assert.equal(g.status, 200);
        const gb = JSON.parse(g.body.toString()) as { method: string; path: string; headers: Record<string, string> };
        assert.equal(gb.path, '/p/get?q=1');
        assert.equal(gb.headers['x-test'], 'v');
        assert.match(String(g.headers['x-envoy-upstream-service-time']), /^\d+$/);
        assert.equal(g.headers['x-vh'], 'added');
        assert.equal(g.headers['x-up'], 'yes');
        const p = await c.request({ method: 'POST', path: '/p/post', body: Buffer.from('hello body'), headers: { 'content-type': 'text/plain' } });
        assert.equal(p.status, 200);
        const pb = JSON.parse(p.body.toString()) as { method: string; body: string };
        assert.equal(pb.method, 'POST');
        assert.equal(pb.body, 'hello body');
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_total'), 2);
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_200'), 2);
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_2xx'), 2);
        assert.equal(e.proxy.counter('http.ingress_http.rq_total'), 2);
        assert.equal(e.proxy.gauge('cluster.up.upstream_rq_active'), 0);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: 10 MiB streaming upload and download`, TIMEOUT, async () => {
      const e = await setup(up, (req, res) => {
        const hash = createHash('sha256');
        let n = 0;
        req.on('data', (b: Buffer) => {
          n += b.length;
          hash.update(b);
        });
        req.on('end', () => {
          res.setHeader('x-received', String(n));
          res.setHeader('x-sha', hash.digest('hex'));
          const chunk = Buffer.alloc(64 * 1024, 'd');
          let sent = 0;
          const pump = (): void => {
            while (sent < 10 * MiB) {
              sent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
        });
      });
      const c = new Client(down, e.proxy.port);
      try {
        const hash = createHash('sha256');
        const body = Readable.from(
          (function* () {
            for (let i = 0; i < 40; i++) {
              const b = Buffer.alloc(256 * 1024, i);
              hash.update(b);
              yield b;
            }
          })(),
        );
        let got = 0;
        const r = await c.request({ method: 'POST', path: '/p/big', body, onData: (b) => (got += b.length) });
        assert.equal(r.error, undefined);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-received'], String(10 * MiB));
        assert.equal(r.headers['x-sha'], hash.digest('hex'));
        assert.equal(got, 10 * MiB);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: 404 NR, 503 UH, 503 UF`, TIMEOUT, async () => {
      const e = await setup(up);
      const c = new Client(down, e.proxy.port);
      try {
        const nr = await c.request({ path: '/nowhere' });
        assert.equal(nr.status, 404);
        assert.equal(e.proxy.counter('http.ingress_http.no_route'), 1);
        const uh = await c.request({ path: '/p/uh' });
        assert.equal(uh.status, 503);
        assert.equal(uh.body.toString(), 'no healthy upstream');
        assert.equal(e.proxy.counter('cluster.empty.upstream_cx_none_healthy'), 1);
        const uf = await c.request({ path: '/p/uf' });
        assert.equal(uf.status, 503);
        assert.match(uf.body.toString(), /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
        assert.equal(e.proxy.counter('cluster.closed.upstream_rq_503'), 1);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: 504 UT after the route timeout; x-envoy-upstream-rq-timeout-ms`, TIMEOUT, async () => {
      const e = await setup(up, (req, res) => {
        if (req.url?.includes('hang')) return; // never answers
        echo(req, res);
      });
      const c = new Client(down, e.proxy.port);
      try {
        let t0 = performance.now();
        const r = await c.request({ path: '/p/timeout/hang' });
        assert.equal(r.status, 504);
        assert.equal(r.body.toString(), 'upstream request timeout');
        assert.ok(performance.now() - t0 < 2000);
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_timeout'), 1);
        t0 = performance.now();
        const h = await c.request({ path: '/p/hang', headers: { 'x-envoy-upstream-rq-timeout-ms': '150' } });
        assert.equal(h.status, 504);
        assert.ok(performance.now() - t0 < 2000);
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_timeout'), 2);
        // The header is consumed; the upstream sees the expected timeout instead.
        const ok = await c.request({ path: '/p/echo', headers: { 'x-envoy-upstream-rq-timeout-ms': '5000' } });
        const headers = (JSON.parse(ok.body.toString()) as { headers: Record<string, string> }).headers;
        assert.equal(headers['x-envoy-upstream-rq-timeout-ms'], undefined);
        assert.equal(headers['x-envoy-expected-rq-timeout-ms'], '5000');
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: a response that stalls after its headers is reset at the route timeout and at per_try_idle_timeout (UT; no 504 once the response started)`, TIMEOUT, async () => {
      const e = await setup(up, (req, res) => {
        if (!req.url?.includes('stall')) return echo(req, res);
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial'); // and never ends
      });
      const c = new Client(down, e.proxy.port);
      try {
        const t = await c.request({ path: '/p/timeout/stall' });
        assert.equal(t.status, 200);
        assert.equal(t.body.toString(), 'partial');
        assert.ok(t.error, 'the downstream response was reset, not ended');
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_timeout'), 1);
        assert.equal(e.proxy.counter('http.ingress_http.rq_reset_after_downstream_response_started'), 1);
        const i = await c.request({ path: '/p/idle/stall' });
        assert.equal(i.status, 200);
        assert.equal(i.body.toString(), 'partial');
        assert.ok(i.error, 'reset at the per-try idle timeout');
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_per_try_idle_timeout'), 1);
        assert.equal(e.proxy.counter('http.ingress_http.rq_reset_after_downstream_response_started'), 2);
        // A response that keeps sending is not idle: it completes.
        assert.equal((await c.request({ path: '/p/idle/echo' })).status, 200);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: prefix_rewrite and request_headers_to_add reach the upstream`, TIMEOUT, async () => {
      const e = await setup(up);
      const c = new Client(down, e.proxy.port);
      try {
        const r = await c.request({ path: '/p/rewrite/a/b' });
        const b = JSON.parse(r.body.toString()) as { path: string; headers: Record<string, string> };
        assert.equal(b.path, '/rewritten/a/b');
        assert.equal(b.headers['x-route-added'], 'yes');
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: upstream reset mid-body resets the downstream`, TIMEOUT, async () => {
      const e = await setup(up, (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('partial');
        setTimeout(() => {
          if ('stream' in req) (req as unknown as { stream: { close(code: number): void } }).stream.close(2);
          else req.socket.destroy();
        }, 50);
      });
      const c = new Client(down, e.proxy.port);
      try {
        const r = await c.request({ path: '/p/reset' });
        assert.equal(r.status, 200);
        assert.ok(r.error, 'the downstream response did not complete');
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_rx_reset'), 1);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: downstream abort cancels the upstream request`, TIMEOUT, async () => {
      let upstreamClosed!: () => void;
      const closed = new Promise<void>((r) => (upstreamClosed = r));
      let requested!: () => void;
      const arrived = new Promise<void>((r) => (requested = r));
      const e = await setup(up, (_req, res) => {
        res.on('close', () => upstreamClosed());
        requested();
      });
      const c = new Client(down, e.proxy.port);
      try {
        const call = c.startAndAbortable({ path: '/p/slow' });
        await arrived;
        call.abort();
        await closed;
        const until = Date.now() + 2000;
        while (e.proxy.counter('cluster.up.upstream_rq_tx_reset') === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_tx_reset'), 1);
        assert.equal(e.proxy.gauge('cluster.up.upstream_rq_active'), 0);
      } finally {
        c.close();
        await e.close();
      }
    });

    test(`${name}: keep-alive, one upstream connection for 20 sequential requests`, TIMEOUT, async () => {
      const e = await setup(up);
      const c = new Client(down, e.proxy.port);
      try {
        for (let i = 0; i < 20; i++) {
          const r = await c.request({ method: 'POST', path: `/p/n/${i}`, body: Buffer.from(`b${i}`) });
          assert.equal((JSON.parse(r.body.toString()) as { body: string }).body, `b${i}`);
        }
        assert.equal(e.proxy.counter('cluster.up.upstream_cx_total'), 1);
        assert.equal(e.upstream.connections, 1);
        assert.equal(e.proxy.counter('cluster.up.upstream_rq_200'), 20);
      } finally {
        c.close();
        await e.close();
      }
    });
  }
}

test('h2 → http2: trailers both ways', TIMEOUT, async () => {
  const e = await setup('http2', (req, res) => {
    void readBody(req).then((body) => {
      const r = res as unknown as import('node:http2').Http2ServerResponse;
      r.writeHead(200, { 'content-type': 'application/grpc' });
      r.addTrailers({ 'x-trailer-echo': String(req.trailers['x-req-trailer']), 'x-len': String(body.length) });
      r.end('ok');
    });
  });
  const c = new Client('h2', e.proxy.port);
  try {
    const r = await c.request({ method: 'POST', path: '/p/t', headers: { te: 'trailers', 'content-type': 'application/grpc' }, body: Buffer.from('abc'), trailers: { 'x-req-trailer': 'hello' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'ok');
    assert.equal(r.trailers['x-trailer-echo'], 'hello');
    assert.equal(r.trailers['x-len'], '3');
  } finally {
    c.close();
    await e.close();
  }
});

test('h1 → http1: WebSocket upgrade, echo through the tunnel', TIMEOUT, async () => {
  const http = await import('node:http');
  const net = await import('node:net');
  const server = http.createServer((_req, res) => res.end('plain'));
  const upgraded = new Set<import('node:net').Socket>();
  server.on('upgrade', (_req: import('node:http').IncomingMessage, socket: import('node:net').Socket) => {
    upgraded.add(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upPort = (server.address() as import('node:net').AddressInfo).port;
  const proxy = await startProxy(hcm(), [clusterYaml('up', upPort), EMPTY_CLUSTER, clusterYaml('closed', await closedPort())]);
  const sock = net.connect(proxy.port, '127.0.0.1');
  try {
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write('GET /p/ws HTTP/1.1\r\nhost: example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n');
    let buf = '';
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        buf += d.toString();
        if (buf.includes('\r\n\r\n')) {
          sock.off('data', onData);
          resolve();
        }
      };
      sock.on('data', onData);
    });
    assert.match(buf, /^HTTP\/1\.1 101 /);
    assert.match(buf.toLowerCase(), /upgrade: websocket/);
    const reply = new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString())));
    sock.write('frame-1');
    assert.equal(await reply, 'echo:frame-1');
    assert.equal(proxy.counter('cluster.up.upstream_rq_101'), 1);
  } finally {
    sock.destroy();
    for (const u of upgraded) u.destroy();
    await proxy.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('h1 → http1: an upgrade the upstream refuses comes back as an ordinary response and the connection closes (sized body, streamed body, local reply)', TIMEOUT, async () => {
  const http = await import('node:http');
  const net = await import('node:net');
  // Node's server answers an upgrade request it has no 'upgrade' listener for through the ordinary handler.
  const server = http.createServer((req, res) => {
    if (req.url === '/p/sized') {
      res.writeHead(426, { 'content-type': 'text/plain', 'content-length': '14' });
      res.end('use websocket2');
    } else {
      res.writeHead(403, { 'content-type': 'text/plain' }); // no length: the upstream streams it
      res.write('not ');
      setTimeout(() => res.end('here'), 20);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upPort = (server.address() as import('node:net').AddressInfo).port;
  const proxy = await startProxy(hcm(), [clusterYaml('up', upPort), EMPTY_CLUSTER, clusterYaml('closed', await closedPort())]);
  /** Sends an upgrade request on a new connection; everything until the proxy closes it. */
  const refused = async (path: string): Promise<string> => {
    const sock = net.connect(proxy.port, '127.0.0.1');
    let buf = '';
    sock.on('data', (d: Buffer) => (buf += d.toString()));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(`GET ${path} HTTP/1.1\r\nhost: example.com\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`);
    await closed;
    return buf;
  };
  try {
    const sized = await refused('/p/sized');
    assert.match(sized, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(sized.toLowerCase(), /\r\nconnection: close\r\n/);
    assert.match(sized.toLowerCase(), /\r\ncontent-length: 14\r\n/);
    assert.ok(sized.endsWith('\r\n\r\nuse websocket2'), JSON.stringify(sized));
    const streamed = await refused('/p/streamed');
    assert.match(streamed, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(streamed.toLowerCase(), /\r\ntransfer-encoding: chunked\r\n/);
    const body = streamed.slice(streamed.indexOf('\r\n\r\n') + 4);
    assert.equal(body.replace(/\r\n/g, '|'), '4|not |4|here|0||', 'chunked, ended with the last chunk');
    // No route's cluster: the proxy's own 503, sized, then close.
    const local = await refused('/p/uh');
    assert.match(local, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(local.toLowerCase(), /\r\nconnection: close\r\n/);
    assert.match(local.toLowerCase(), /\r\ncontent-length: \d+\r\n/);
    assert.equal(proxy.counter('cluster.up.upstream_rq_426'), 1);
    assert.equal(proxy.counter('cluster.up.upstream_rq_403'), 1);
  } finally {
    await proxy.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

for (const up of ['http1', 'http2'] as const) {
  test(`h1 → ${up}: a response that ends before the request body did closes the connection after it (Envoy's doEndStream), the rest unread`, TIMEOUT, async () => {
    const e = await setup(up, (_req, res) => {
      res.setHeader('content-length', '5');
      res.end('early'); // without reading the body
    });
    // allowHalfOpen: like curl, the client does not end its side when legate's FIN arrives.
    const sock = net.connect({ port: e.proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    try {
      await once(sock, 'connect');
      sock.on('error', () => {});
      // Announces 10 MB, sends 64 KiB and stops: only the connection's close ends this exchange.
      sock.write(`POST /p/early HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\n${'a'.repeat(65536)}`);
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      const closed = await Promise.race([once(sock, 'end').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      assert.match(got, /^HTTP\/1\.1 200 /);
      assert.ok(got.endsWith('\r\n\r\nearly'), got);
      assert.equal(closed, true, 'legate closed the connection');
      assert.equal(e.proxy.counter('cluster.up.upstream_rq_200'), 1);
      // The client keeps sending and never closes: legate reads and drops it, then closes the socket (Envoy's delayed close, 1 s).
      const more = setInterval(() => sock.writable && sock.write('b'.repeat(65536)), 5);
      const t0 = Date.now();
      while (e.proxy.gauge('http.ingress_http.downstream_cx_active') > 0 && Date.now() - t0 < 4000) await new Promise((r) => setTimeout(r, 50));
      clearInterval(more);
      assert.equal(e.proxy.gauge('http.ingress_http.downstream_cx_active'), 0, 'the half-closed connection is closed');
    } finally {
      sock.destroy();
      await e.close();
    }
  });
}

test('delayed_close_timeout: 0s closes at once after the early response; 60s keeps reading and dropping what the client sends', TIMEOUT, async () => {
  // 0s is looked at before the default's 1 s would have closed it, 60s after.
  for (const [timeout, closes, waitMs] of [['0s', true, 600], ['60s', false, 1500]] as const) {
    const e = await setup('http1', (_req, res) => res.end('early'), `delayed_close_timeout: ${timeout}`);
    const sock = net.connect({ port: e.proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    try {
      await once(sock, 'connect');
      sock.on('error', () => {});
      sock.write(`POST /p/early HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n${'a'.repeat(65536)}`);
      let sent = 0;
      const more = setInterval(() => {
        if (sock.writable && sock.writableLength < 1 << 20) {
          sock.write('b'.repeat(65536));
          sent += 65536;
        }
      }, 5);
      await new Promise((r) => setTimeout(r, waitMs));
      clearInterval(more);
      const active = e.proxy.gauge('http.ingress_http.downstream_cx_active');
      if (closes) assert.equal(active, 0, `${timeout}: closed`);
      else {
        assert.equal(active, 1, `${timeout}: still open`);
        assert.ok(sent > 4 * 1024 * 1024, `${timeout}: legate kept reading (${sent} bytes taken)`);
      }
    } finally {
      sock.destroy();
      await e.close();
    }
  }
});
