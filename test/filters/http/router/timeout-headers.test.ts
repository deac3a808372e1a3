// The headers that steer retries and timeouts, and the stream's max duration, behind the real
// connection manager: the retry headers are consumed (never reach the upstream) and read after the
// route's header mutations; x-envoy-expected-rq-timeout-ms tells each try the time it has; the
// connection manager's max_stream_duration and the route's (Istio sets max_stream_duration and
// grpc_timeout_header_max on every route) bound the whole stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { clusterYaml } from './harness.ts';
import { closedPort, startUpstream, type Req as UpReq } from './upstreams.ts';
import { Client, routesHcm, startProxy } from './proxy-harness.ts';
import { attemptOf, startRetryProxy } from './retry-harness.ts';

const TIMEOUT = { timeout: 20_000 };
const C = 'cluster.up.';

const RETRY_HEADERS = {
  'x-envoy-retry-on': '5xx',
  'x-envoy-retry-grpc-on': 'cancelled',
  'x-envoy-max-retries': '2',
  'x-envoy-retriable-status-codes': '418',
  'x-envoy-retriable-header-names': 'x-again',
  'x-envoy-hedge-on-per-try-timeout': 'false',
  'x-envoy-upstream-rq-per-try-timeout-ms': '5000',
};

function envoyHeadersSeen(req: UpReq): string[] {
  return Object.keys(req.headers).filter((k) => k.startsWith('x-envoy-') && !['x-envoy-attempt-count', 'x-envoy-expected-rq-timeout-ms', 'x-envoy-internal'].includes(k));
}

for (const [down, up] of [['h1', 'http1'], ['h2', 'http2']] as const) {
  test(`retry headers are consumed, never sent upstream; a retry header the route adds is honoured (${down}→${up})`, TIMEOUT, async () => {
    const seen: Array<{ path: string; attempt: number; envoy: string[] }> = [];
    const upstream = await startUpstream(up, (req, res) => {
      seen.push({ path: req.url ?? '', attempt: attemptOf(req), envoy: envoyHeadersSeen(req) });
      res.statusCode = attemptOf(req) === 1 ? 503 : 200;
      res.end();
    });
    const routes = `
    - match: { prefix: /added }
      request_headers_to_add: [{ header: { key: x-envoy-retry-on, value: 5xx }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }]
      route: { cluster: up }
    - { match: { prefix: / }, route: { cluster: up } }`;
    const p = await startRetryProxy(routes, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/headers', headers: RETRY_HEADERS });
      assert.equal(r.status, 200);
      const added = await client.request({ path: '/added' });
      assert.equal(added.status, 200, 'the route-added x-envoy-retry-on made the 503 retriable');
      assert.deepEqual(seen, [
        { path: '/headers', attempt: 1, envoy: [] },
        { path: '/headers', attempt: 2, envoy: [] },
        { path: '/added', attempt: 1, envoy: [] },
        { path: '/added', attempt: 2, envoy: [] },
      ]);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 2);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });
}

test('x-envoy-expected-rq-timeout-ms: the per-try timeout, then the time left on a retry; the route timeout when hedging', TIMEOUT, async () => {
  const expected: Array<{ path: string; attempt: number; ms: number }> = [];
  const upstream = await startUpstream('http1', (req, res) => {
    expected.push({ path: req.url ?? '', attempt: attemptOf(req), ms: Number(req.headers['x-envoy-expected-rq-timeout-ms']) });
    if (attemptOf(req) > 1) return res.end('ok');
    // The first try fails late, so the retry has less than a whole per-try timeout left.
    setTimeout(() => {
      res.statusCode = 503;
      res.end();
    }, 500);
  });
  const routes = `
    - { match: { prefix: /hedge }, route: { cluster: up, timeout: 2s, retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 0.8s }, hedge_policy: { hedge_on_per_try_timeout: true } } }
    - { match: { prefix: /retry }, route: { cluster: up, timeout: 1s, retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 0.8s, retry_back_off: { base_interval: 0.001s } } } }`;
  const p = await startRetryProxy(routes, [clusterYaml('up', upstream.port)]);
  const client = new Client('h1', p.port);
  try {
    assert.equal((await client.request({ path: '/retry' })).status, 200);
    assert.equal((await client.request({ path: '/hedge' })).status, 200);
    assert.equal(expected.length, 4);
    assert.deepEqual(expected[0], { path: '/retry', attempt: 1, ms: 800 });
    const left = expected[1]!;
    assert.equal(left.attempt, 2);
    // 1 s route timeout less the ~500 ms the first try took: less than the 800 ms per-try timeout.
    assert.ok(left.ms > 0 && left.ms <= 500, `retry told ${left.ms} ms`);
    assert.deepEqual(expected[2], { path: '/hedge', attempt: 1, ms: 2000 });
    assert.equal(expected[3]!.attempt, 2);
    // The route timeout less the ~500 ms used: more than the 800 ms per-try timeout would allow.
    assert.ok(expected[3]!.ms > 800 && expected[3]!.ms <= 1500, `hedged retry told ${expected[3]!.ms} ms`);
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

function durationHcm(routes: string, extra: string): string {
  return routesHcm(routes, { statPrefix: 'dur', extra });
}

test('HCM max_stream_duration: 504 once the request is complete, 408 while it is still arriving; a route max_stream_duration replaces it and the route timeout', TIMEOUT, async () => {
  const upstream = await startUpstream('http1', (req, res) => {
    // Answers after 400 ms, or never for /hang; drains any body.
    req.resume();
    if (req.url === '/hang') return;
    const t = setTimeout(() => res.end('late'), 400);
    res.on('close', () => clearTimeout(t));
  });
  const routes = `
    - { match: { prefix: /no-limit }, route: { cluster: up, timeout: 0.1s, max_stream_duration: { max_stream_duration: 0s } } }
    - { match: { prefix: /short }, route: { cluster: up, max_stream_duration: { max_stream_duration: 0.1s } } }
    - { match: { prefix: / }, route: { cluster: up } }`;
  const p = await startProxy(durationHcm(routes, 'common_http_protocol_options: { max_stream_duration: 0.25s }'), [clusterYaml('up', upstream.port)]);
  const client = new Client('h1', p.port);
  try {
    const t0 = performance.now();
    const r = await client.request({ path: '/hang' });
    assert.equal(r.status, 504);
    assert.equal(r.body.toString(), 'downstream duration timeout');
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(p.counter('http.dur.downstream_rq_max_duration_reached'), 1);
    assert.equal(p.counter(`${C}upstream_rq_timeout`), 0, 'not the router timeout');

    // 0s on the route: no limit at all, and the route's own timeout does not apply either.
    const free = await client.request({ path: '/no-limit' });
    assert.equal(free.status, 200);
    assert.equal(free.body.toString(), 'late');

    const short = await client.request({ path: '/short' });
    assert.equal(short.status, 504);
    assert.equal(p.counter('http.dur.downstream_rq_max_duration_reached'), 2);

    // A body that never ends: the request is not complete, 408.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/upload', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('part of a body');
    });
    assert.equal(status, 408);
    assert.equal(p.counter('http.dur.downstream_rq_max_duration_reached'), 3);
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('route max_stream_duration with grpc_timeout_header_max (as Istio writes it): the grpc-timeout bounds the stream, DEADLINE_EXCEEDED; grpc-timeout rewritten less the offset', TIMEOUT, async () => {
  const grpcTimeouts: string[] = [];
  const upstream = await startUpstream('http2', (req) => {
    // A gRPC server that never answers (and ignores its deadline).
    grpcTimeouts.push(String(req.headers['grpc-timeout']));
    req.resume();
  });
  const routes = `
    - { match: { prefix: /offset }, route: { cluster: up, timeout: 0s, max_stream_duration: { max_stream_duration: 0s, grpc_timeout_header_max: 0s, grpc_timeout_header_offset: 0.05s } } }
    - { match: { prefix: / }, route: { cluster: up, timeout: 0s, max_stream_duration: { max_stream_duration: 0s, grpc_timeout_header_max: 0s } } }`;
  const p = await startProxy(durationHcm(routes, ''), [clusterYaml('up', upstream.port, true)]);
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  const call = (path: string, timeout: string): Promise<{ status: number; grpcStatus: string | undefined; message: string | undefined }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': timeout });
      s.end(Buffer.from([0, 0, 0, 0, 0]));
      s.on('response', (h) => {
        // A trailers-only answer: grpc-status is in the headers.
        resolve({ status: Number(h[':status']), grpcStatus: h['grpc-status'] as string | undefined, message: h['grpc-message'] as string | undefined });
        s.resume();
      });
      s.on('error', reject);
    });
  try {
    const t0 = performance.now();
    const r = await call('/pkg.Svc/Method', '200m');
    assert.deepEqual(r, { status: 200, grpcStatus: '4', message: 'downstream duration timeout' });
    assert.ok(performance.now() - t0 < 5000);
    const o = await call('/offset/Method', '300m');
    assert.equal(o.grpcStatus, '4');
    assert.deepEqual(grpcTimeouts, ['200m', '250m']);
    assert.equal(p.counter('http.dur.downstream_rq_max_duration_reached'), 2);
  } finally {
    session.close();
    await p.close();
    await upstream.close();
  }
});

function routerHcm(routes: string, router: string, vhExtra = ''): string {
  const filters = `
http_filters:
- name: envoy.filters.http.router
  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router${router} }`;
  return routesHcm(routes, { statPrefix: 'strict', extra: 'use_remote_address: true', vhExtra, filters });
}

test('strict_check_headers: an invalid value of a checked header is 400 IH; valid or unchecked ones pass', TIMEOUT, async () => {
  let served = 0;
  const upstream = await startUpstream('http1', (_req, res) => {
    served++;
    res.end('ok');
  });
  const p = await startProxy(routerHcm(`    - { match: { prefix: / }, route: { cluster: up } }`, ', strict_check_headers: [x-envoy-max-retries, x-envoy-retry-on, x-envoy-upstream-rq-timeout-ms]'), [clusterYaml('up', upstream.port)]);
  const client = new Client('h1', p.port);
  try {
    let r = await client.request({ path: '/', headers: { 'x-envoy-max-retries': 'three' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.toString(), "invalid header 'x-envoy-max-retries' with value 'three'");
    r = await client.request({ path: '/', headers: { 'x-envoy-retry-on': '5xx,sometimes' } });
    assert.equal(r.status, 400);
    r = await client.request({ path: '/', headers: { 'x-envoy-upstream-rq-timeout-ms': '-1' } });
    assert.equal(r.status, 400);
    assert.equal(served, 0);
    r = await client.request({ path: '/', headers: { 'x-envoy-retry-on': '5xx, connect-failure', 'x-envoy-max-retries': '2', 'x-envoy-retry-grpc-on': 'not-checked' } });
    assert.equal(r.status, 200);
    assert.equal(served, 1);
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('retries: x-envoy-is-timeout-retry says whether a retry followed a per-try timeout; x-envoy-upstream-service-time spans the retries; an exhausted connect retry says so in the 503 body', TIMEOUT, async () => {
  const seen: Array<{ attempt: number; timeoutRetry: string | undefined }> = [];
  const upstream = await startUpstream('http1', (req, res) => {
    seen.push({ attempt: attemptOf(req), timeoutRetry: req.headers['x-envoy-is-timeout-retry'] as string | undefined });
    if (req.url === '/slow' && attemptOf(req) === 1) return; // per-try timeout
    if (req.url === '/fail' && attemptOf(req) === 1) {
      setTimeout(() => {
        res.statusCode = 503;
        res.end();
      }, 300);
      return;
    }
    res.end('ok');
  });
  const closed = await closedPort();
  const routes = `
    - { match: { prefix: /slow }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 0.1s } } }
    - { match: { prefix: /fail }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 1, retry_back_off: { base_interval: 0.001s } } } }
    - { match: { prefix: /gone }, route: { cluster: gone, retry_policy: { retry_on: connect-failure, num_retries: 1, retry_back_off: { base_interval: 0.001s } } } }`;
  const vh = '    include_request_attempt_count: true\n    include_is_timeout_retry_header: true';
  const p = await startProxy(routerHcm(routes, '', vh), [clusterYaml('up', upstream.port), clusterYaml('gone', closed)]);
  const client = new Client('h1', p.port);
  try {
    assert.equal((await client.request({ path: '/slow' })).status, 200);
    const f = await client.request({ path: '/fail' });
    assert.equal(f.status, 200);
    assert.ok(Number(f.headers['x-envoy-upstream-service-time']) >= 300, `service time ${f.headers['x-envoy-upstream-service-time']} ms covers the failed try`);
    assert.deepEqual(seen, [
      { attempt: 1, timeoutRetry: undefined },
      { attempt: 2, timeoutRetry: 'true' },
      { attempt: 1, timeoutRetry: undefined },
      { attempt: 2, timeoutRetry: 'false' },
    ]);
    const g = await client.request({ path: '/gone' });
    assert.equal(g.status, 503);
    assert.match(g.body.toString(), /^upstream connect error or disconnect\/reset before headers\. retried and the latest reset reason: connection failure, transport failure reason: /);
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('cluster max_stream_duration: a hanging upstream request ends 504 UMSDR (upstream_rq_max_duration_reached), is retried under retry_on reset, and resets a response already started', TIMEOUT, async () => {
  const upstream = await startUpstream('http1', (req, res) => {
    if (req.url === '/retry' && attemptOf(req) > 1) return void res.end('second');
    if (req.url === '/started') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    }
    // Otherwise never answers.
  });
  const routes = `
    - { match: { prefix: /retry }, route: { cluster: up, retry_policy: { retry_on: reset, num_retries: 1, retry_back_off: { base_interval: 0.001s } } } }
    - { match: { prefix: / }, route: { cluster: up } }`;
  const p = await startRetryProxy(routes, [clusterYaml('up', upstream.port, false, 'common_http_protocol_options: { max_stream_duration: 0.2s }')]);
  const client = new Client('h1', p.port);
  try {
    const r = await client.request({ path: '/hang' });
    assert.equal(r.status, 504);
    assert.equal(r.body.toString(), 'upstream max stream duration reached');
    assert.equal(p.counter(`${C}upstream_rq_max_duration_reached`), 1);
    const again = await client.request({ path: '/retry' });
    assert.equal(again.status, 200);
    assert.equal(again.body.toString(), 'second');
    assert.equal(p.counter(`${C}upstream_rq_max_duration_reached`), 2);
    const started = await client.request({ path: '/started' });
    assert.equal(started.status, 200);
    assert.ok(started.error, 'the downstream response was cut off');
    assert.deepEqual((await p.log(3)).map((l) => l.split(' ').slice(0, 2).join(' ')), ['504 UMSDR', '200 -', '200 UMSDR']);
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('a WebSocket tunnel is still bounded: stream_idle_timeout closes a silent one (traffic keeps it open), max_stream_duration closes a busy one', TIMEOUT, async () => {
  const server = http.createServer((_req, res) => res.end('plain'));
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
    upgraded.add(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upPort = (server.address() as net.AddressInfo).port;
  const routes = `
    - { match: { prefix: / }, route: { cluster: up } }`;
  const idle = await startProxy(durationHcm(routes, 'upgrade_configs: [{ upgrade_type: websocket }]\nstream_idle_timeout: 0.5s'), [clusterYaml('up', upPort)]);
  const capped = await startProxy(durationHcm(routes, 'upgrade_configs: [{ upgrade_type: websocket }]\ncommon_http_protocol_options: { max_stream_duration: 0.6s }'), [clusterYaml('up', upPort)]);
  /** Upgrades, then sends a byte every `everyMs` (0: never), closing itself after `closeAfterMs`; resolves with how long the tunnel stayed open. */
  const tunnel = (port: number, everyMs: number, closeAfterMs = 10_000): Promise<number> =>
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let t0 = 0;
      let timer: NodeJS.Timeout | undefined;
      sock.once('connect', () => sock.write('GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n'));
      sock.once('data', (d: Buffer) => {
        if (!d.toString().startsWith('HTTP/1.1 101')) return reject(new Error(d.toString()));
        t0 = performance.now();
        if (everyMs > 0) timer = setInterval(() => sock.write('x'), everyMs);
        setTimeout(() => sock.destroy(), closeAfterMs).unref();
      });
      sock.on('error', () => {});
      sock.on('close', () => {
        clearInterval(timer);
        resolve(performance.now() - t0);
      });
    });
  try {
    const silent = await tunnel(idle.port, 0);
    assert.ok(silent >= 450 && silent < 5000, `a silent tunnel closed after ${silent} ms`);
    assert.equal(idle.counter('http.dur.downstream_rq_idle_timeout'), 1);
    const chatty = await tunnel(idle.port, 50, 1500);
    assert.ok(chatty >= 1400, `traffic kept the tunnel open past the idle timeout (${chatty} ms)`);
    assert.equal(idle.counter('http.dur.downstream_rq_idle_timeout'), 1);
    const busy = await tunnel(capped.port, 50);
    assert.ok(busy >= 550 && busy < 5000, `a busy tunnel closed at max_stream_duration, after ${busy} ms`);
    assert.equal(capped.counter('http.dur.downstream_rq_max_duration_reached'), 1);
  } finally {
    for (const u of upgraded) u.destroy();
    await idle.close();
    await capped.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
