// Circuit breakers behind the real connection manager and router (in process): max_requests with
// HTTP/1.1 and HTTP/2 downstreams and upstreams, max_connections bounding HTTP/1.1 connections,
// max_pending_requests, route priority HIGH; responses, access-log flags and Envoy's stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterYaml } from '../../filters/http/router/harness.ts';
import { ROUTER_FILTER, startProxy, type Proxy } from '../../filters/http/router/proxy-harness.ts';
import { parallel, startHoldingUpstream, until, type HoldingUpstream, type Reply } from './circuit-breakers-upstreams.ts';

const TIMEOUT = { timeout: 20_000 };
const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

function hcm(log: string): string {
  return `
stat_prefix: ingress_http
codec_type: AUTO
access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${log}
    log_format: { text_format_source: { inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS%\\n" } }
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
    routes:
    - { match: { prefix: /high }, route: { cluster: up, priority: HIGH } }
    - { match: { prefix: / }, route: { cluster: up } }
${ROUTER_FILTER}`;
}

interface Setup {
  upstream: HoldingUpstream;
  proxy: Proxy;
  accessLog(): string[];
  close(): Promise<void>;
}

async function setup(up: 'http1' | 'http2', thresholds: string): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'legate-cb-'));
  const log = join(dir, 'access.log');
  const upstream = await startHoldingUpstream(up);
  const proxy = await startProxy(hcm(log), [clusterYaml('up', upstream.port, up === 'http2', `circuit_breakers:\n  thresholds:\n${thresholds}`)]);
  return {
    upstream,
    proxy,
    accessLog: () => readFileSync(log, { flag: 'a+' }).toString().trim().split('\n').filter(Boolean),
    close: async () => {
      upstream.release();
      await proxy.close();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function countStatus(replies: readonly Reply[], status: number): number {
  return replies.filter((r) => r.status === status).length;
}

function assertOverflow(r: Reply): void {
  assert.equal(r.status, 503);
  assert.equal(r.headers['x-envoy-overloaded'], 'true');
  assert.equal(r.body, OVERFLOW_BODY);
}

for (const [down, up] of [['h1', 'http1'], ['h2', 'http1'], ['h1', 'http2'], ['h2', 'http2']] as const) {
  test(`max_requests 5, 20 concurrent (${down} downstream, ${up} upstream): exactly 15 × 503 UO, 5 × 200 after release`, TIMEOUT, async () => {
    const s = await setup(up, '  - { max_requests: 5, track_remaining: true }');
    try {
      const run = parallel(down, s.proxy.port, 20);
      await until(() => s.upstream.held() === 5 && run.replies.length === 15, 5000, '5 held, 15 answered');
      for (const r of run.replies) assertOverflow(r);
      assert.equal(s.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 15);
      assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_open'), 1);
      assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.remaining_rq'), 0);
      assert.equal(s.proxy.gauge('cluster.up.upstream_rq_active'), 5);
      s.upstream.release();
      const all = await run.done;
      assert.equal(countStatus(all, 200), 5);
      assert.equal(countStatus(all, 503), 15);
      assert.equal(s.upstream.seen(), 5);
      assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_open'), 0);
      assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.remaining_rq'), 5);
      assert.equal(s.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 15);
      await until(() => s.accessLog().length === 20, 3000, 'access log');
      const lines = s.accessLog();
      assert.equal(lines.filter((l) => l === '503 UO').length, 15);
      assert.equal(lines.filter((l) => l === '200 -').length, 5);
      // Later requests are admitted again.
      const after = await parallel(down, s.proxy.port, 3).done;
      assert.equal(countStatus(after, 200), 3);
    } finally {
      await s.close();
    }
  });
}

test('max_connections 2 bounds HTTP/1.1 upstream connections: the rest wait (upstream_cx_overflow), then reuse them', TIMEOUT, async () => {
  const s = await setup('http1', '  - { max_connections: 2, track_remaining: true }');
  try {
    const run = parallel('h1', s.proxy.port, 6);
    await until(() => s.upstream.held() === 2 && s.proxy.gauge('cluster.up.circuit_breakers.default.remaining_pending') === 1020, 5000, '2 held, 4 pending');
    assert.equal(s.upstream.connections(), 2);
    assert.equal(run.replies.length, 0);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.cx_open'), 1);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.remaining_cx'), 0);
    assert.equal(s.proxy.counter('cluster.up.upstream_cx_overflow'), 4);
    assert.equal(s.proxy.counter('cluster.up.upstream_cx_total'), 2);
    s.upstream.release();
    const all = await run.done;
    assert.equal(countStatus(all, 200), 6);
    assert.equal(s.upstream.seen(), 6);
    assert.equal(s.upstream.connections(), 2, 'queued requests reused the two connections');
    assert.equal(s.proxy.counter('cluster.up.upstream_cx_total'), 2);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.remaining_pending'), 1024);
    assert.equal(s.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 0);
  } finally {
    await s.close();
  }
});

test('max_pending_requests 1 with max_connections 1: one waits for the connection, the others overflow (503 UO)', TIMEOUT, async () => {
  const s = await setup('http1', '  - { max_connections: 1, max_pending_requests: 1 }');
  try {
    const first = parallel('h1', s.proxy.port, 1);
    await until(() => s.upstream.held() === 1, 5000, 'first request held');
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open'), 0, 'the first request left pending once on its connection');
    const more = parallel('h2', s.proxy.port, 3);
    await until(() => more.replies.length === 2, 5000, 'two overflows');
    for (const r of more.replies) assertOverflow(r);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open'), 1);
    assert.equal(s.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 2);
    assert.equal(s.proxy.counter('cluster.up.upstream_cx_overflow'), 1);
    s.upstream.release();
    assert.equal(countStatus(await first.done, 200), 1);
    assert.equal(countStatus(await more.done, 200), 1);
    assert.equal(s.upstream.connections(), 1);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open'), 0);
  } finally {
    await s.close();
  }
});

test('max_requests counts requests on connections, as Envoy\'s pools do: one waiting for the only connection is served after it; one given a new connection over the limit is 503 UO and the connection stays unused', TIMEOUT, async () => {
  const queued = await setup('http1', '  - { max_connections: 1, max_requests: 1 }');
  try {
    const run = parallel('h1', queued.proxy.port, 2);
    await until(() => queued.upstream.held() === 1 && queued.proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open') === 0, 5000, 'one held, one pending');
    assert.equal(run.replies.length, 0, 'the second request waits for the connection, it is not refused');
    assert.equal(queued.proxy.counter('cluster.up.upstream_rq_total'), 1, 'a waiting request is not counted yet');
    queued.upstream.release();
    assert.equal(countStatus(await run.done, 200), 2);
    assert.equal(queued.proxy.counter('cluster.up.upstream_rq_total'), 2);
    assert.equal(queued.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 0);
  } finally {
    await queued.close();
  }
  const over = await setup('http1', '  - { max_connections: 2, max_requests: 1 }');
  try {
    const first = parallel('h1', over.proxy.port, 1);
    await until(() => over.upstream.held() === 1, 5000, 'first request held');
    const second = parallel('h1', over.proxy.port, 1);
    const [r] = await second.done;
    assertOverflow(r!);
    assert.equal(over.proxy.counter('cluster.up.upstream_rq_pending_overflow'), 1);
    assert.equal(over.proxy.counter('cluster.up.upstream_rq_total'), 1);
    assert.equal(over.upstream.seen(), 1, 'the overflowed request never reached the upstream');
    over.upstream.release();
    assert.equal(countStatus(await first.done, 200), 1);
    // The connection opened for it went back to the pool: the next request reuses one.
    const third = parallel('h1', over.proxy.port, 1);
    over.upstream.release();
    assert.equal(countStatus(await third.done, 200), 1);
    assert.equal(over.proxy.counter('cluster.up.upstream_cx_total'), 2);
  } finally {
    await over.close();
  }
});

test('route priority HIGH has its own connections: a DEFAULT max_connections that is full does not hold HIGH requests back', TIMEOUT, async () => {
  const s = await setup('http1', '  - { max_connections: 1 }');
  try {
    const first = parallel('h1', s.proxy.port, 1);
    await until(() => s.upstream.held() === 1, 5000, 'first request held');
    const waiting = parallel('h1', s.proxy.port, 1);
    const high = parallel('h1', s.proxy.port, 1, '/high');
    await until(() => s.upstream.held() === 2, 5000, 'the HIGH request reached the upstream on its own connection');
    assert.equal(s.upstream.connections(), 2);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.cx_open'), 1);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.high.cx_open'), 0);
    s.upstream.release();
    for (const run of [first, waiting, high]) assert.equal(countStatus(await run.done, 200), 1);
    assert.equal(s.upstream.connections(), 2, 'the waiting DEFAULT request reused the DEFAULT connection');
  } finally {
    await s.close();
  }
});

test('route priority HIGH uses the HIGH thresholds (and its own gauges)', TIMEOUT, async () => {
  const s = await setup('http2', '  - { max_requests: 5 }\n  - { priority: HIGH, max_requests: 1 }');
  try {
    const high = parallel('h2', s.proxy.port, 3, '/high');
    await until(() => s.upstream.held() === 1 && high.replies.length === 2, 5000, '1 held, 2 answered');
    for (const r of high.replies) assertOverflow(r);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.high.rq_open'), 1);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.default.rq_open'), 0);
    // DEFAULT still admits.
    const normal = parallel('h1', s.proxy.port, 2, '/');
    await until(() => s.upstream.held() === 3, 5000, 'default requests held');
    s.upstream.release();
    assert.equal(countStatus(await high.done, 200), 1);
    assert.equal(countStatus(await normal.done, 200), 2);
    assert.equal(s.proxy.gauge('cluster.up.circuit_breakers.high.rq_open'), 0);
  } finally {
    await s.close();
  }
});

test('HTTP/2 upstream, max_concurrent_streams 1 and max_connections 1: a stream waiting in the session is a pending request (max_pending_requests 1: the next overflows, 503 UO)', TIMEOUT, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-cb-'));
  const upstream = await startHoldingUpstream('http2');
  const thresholds = 'circuit_breakers:\n  thresholds:\n  - { max_connections: 1, max_pending_requests: 1 }\nhttp2_protocol_options: { max_concurrent_streams: 1 }';
  const proxy = await startProxy(hcm(join(dir, 'access.log')), [clusterYaml('up', upstream.port, false, thresholds)]);
  try {
    const first = parallel('h2', proxy.port, 1);
    await until(() => upstream.held() === 1, 5000, 'first request held');
    assert.equal(proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open'), 0);
    const second = parallel('h2', proxy.port, 1);
    await until(() => proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open') === 1, 5000, 'the second waits in the session, pending');
    const third = parallel('h1', proxy.port, 1);
    const [r] = await third.done;
    assertOverflow(r!);
    assert.equal(proxy.counter('cluster.up.upstream_rq_pending_overflow'), 1);
    assert.equal(second.replies.length, 0);
    upstream.release();
    assert.equal(countStatus(await first.done, 200), 1);
    assert.equal(countStatus(await second.done, 200), 1, 'the waiting stream opened when the first closed');
    assert.equal(proxy.gauge('cluster.up.circuit_breakers.default.rq_pending_open'), 0, 'no longer pending');
    assert.equal(upstream.seen(), 2);
    assert.equal(upstream.connections(), 1);
  } finally {
    upstream.release();
    await proxy.close();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
