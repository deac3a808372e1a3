// Router failures and local replies: 504 UT timeouts, upstream resets, downstream aborts and 503 UF over
// HTTP/1.1 and h2c upstreams, plus the no-route, direct-response, redirect, no-cluster and no-healthy-host replies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterRoute, clusterYaml, requestHeaders, route, routerHarness } from './harness.ts';
import { closedPort, startUpstream } from './upstreams.ts';
import { F, RawH2, T, block, frame, rstCode } from '../../../helpers/h2-raw.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import type { LocalReplyOptions } from '../../../../src/filters/http/filter.ts';

/** The headers a local reply gets from the router's options (headers, then modifyHeaders). */
function replyHeaders(opts: LocalReplyOptions | undefined): HeaderMap {
  const h = new HeaderMap();
  for (const [k, v] of Object.entries(opts?.headers ?? {})) h.set(k, v);
  opts?.modifyHeaders?.(h);
  return h;
}

const TIMEOUT = { timeout: 20_000 };

for (const proto of ['http1', 'http2'] as const) {
  const h2 = proto === 'http2';

  test(`${proto} upstream: 504 UT on route timeout, x-envoy-upstream-rq-timeout-ms override`, TIMEOUT, async () => {
    const up = await startUpstream(proto, () => {}); // never answers
    const h = await routerHarness([clusterYaml('backend', up.port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend', timeoutMs: 200 }));
      const t0 = performance.now();
      s.filter.onRequestHeaders!(requestHeaders('GET', '/hang'), true);
      await s.ended;
      const dt = performance.now() - t0;
      assert.ok(dt >= 190 && dt < 2000, `timed out after ${dt} ms`);
      assert.equal(s.rec.local?.status, 504);
      assert.equal(s.rec.local?.body, 'upstream request timeout');
      assert.ok(s.streamInfo.responseFlags.has('UT'));
      assert.equal(h.counter('cluster.backend.upstream_rq_timeout'), 1);
      assert.equal(h.counter('cluster.backend.upstream_rq_504'), 1);
      assert.equal(h.gauge('cluster.backend.upstream_rq_active'), 0);

      const s2 = h.stream(clusterRoute({ cluster: 'backend', timeoutMs: 15_000 }));
      const t1 = performance.now();
      s2.filter.onRequestHeaders!(requestHeaders('GET', '/hang', { 'x-envoy-upstream-rq-timeout-ms': '150' }), true);
      await s2.ended;
      assert.ok(performance.now() - t1 < 2000);
      assert.equal(s2.rec.local?.status, 504);
      assert.equal(h.counter('cluster.backend.upstream_rq_timeout'), 2);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(up.aborted, 2, 'the upstream requests were cancelled');
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto} upstream: a route timeout past node:timers' longest delay (30 days) does not fire early`, TIMEOUT, async () => {
    // setTimeout cuts a delay above 2^31-1 ms to 1 ms: the request would be a 504 at once.
    const up = await startUpstream(proto, (_req, res) => void setTimeout(() => res.end('late'), 100));
    const h = await routerHarness([clusterYaml('backend', up.port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend', timeoutMs: 30 * 24 * 3600 * 1000 }));
      s.filter.onRequestHeaders!(requestHeaders('GET', '/slow'), true);
      await s.ended;
      assert.equal(s.rec.local, undefined);
      assert.equal(s.rec.status, 200);
      assert.equal(s.bodyText, 'late');
      assert.equal(h.counter('cluster.backend.upstream_rq_timeout'), 0);
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto} upstream: reset mid-body resets the downstream stream`, TIMEOUT, async () => {
    const up = await startUpstream(proto, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => {
        if ('stream' in req) (req as { stream: { close(code: number): void } }).stream.close(2);
        else req.socket.destroy();
      }, 50);
    });
    const h = await routerHarness([clusterYaml('backend', up.port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend' }));
      s.filter.onRequestHeaders!(requestHeaders('GET', '/reset'), true);
      await s.ended;
      assert.equal(s.rec.status, 200);
      assert.ok(s.rec.reset, 'downstream reset');
      assert.equal(s.bodyText, 'partial');
      assert.ok(s.streamInfo.responseFlags.has(h2 ? 'UR' : 'UC'));
      assert.equal(h.counter('cluster.backend.upstream_rq_rx_reset'), 1);
      // Envoy's upstream codec stat: the RST_STREAM the HTTP/2 client read.
      if (h2) assert.equal(h.counter('cluster.backend.http2.rx_reset'), 1);
      assert.equal(h.counter('http.ingress_http.rq_reset_after_downstream_response_started'), 1);
      assert.equal(h.gauge('cluster.backend.upstream_rq_active'), 0);
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto} upstream: reset before headers is a 503`, TIMEOUT, async () => {
    const up = await startUpstream(proto, (req) => {
      if ('stream' in req) (req as { stream: { close(code: number): void } }).stream.close(2);
      else req.socket.destroy();
    });
    const h = await routerHarness([clusterYaml('backend', up.port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend' }));
      s.filter.onRequestHeaders!(requestHeaders('GET', '/reset'), true);
      await s.ended;
      assert.equal(s.rec.local?.status, 503);
      assert.match(s.rec.local!.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: /);
      assert.ok(s.streamInfo.responseFlags.has(h2 ? 'UR' : 'UC'));
      assert.equal(h.counter('cluster.backend.upstream_rq_503'), 1);
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto} upstream: downstream abort cancels the upstream request`, TIMEOUT, async () => {
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((r) => (closed = r));
    let gotRequest!: () => void;
    const requested = new Promise<void>((r) => (gotRequest = r));
    const up = await startUpstream(proto, (_req, res) => {
      res.on('close', () => closed());
      gotRequest();
    });
    const h = await routerHarness([clusterYaml('backend', up.port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend' }));
      s.filter.onRequestHeaders!(requestHeaders('GET', '/slow'), true);
      await requested;
      s.filter.onDestroy!();
      await upstreamClosed;
      assert.equal(h.counter('cluster.backend.upstream_rq_tx_reset'), 1);
      assert.equal(h.gauge('cluster.backend.upstream_rq_active'), 0);
      assert.equal(s.rec.status, undefined);
    } finally {
      await h.close();
      await up.close();
    }
  });

  test(`${proto} upstream: 503 UF when the port is closed`, TIMEOUT, async () => {
    const port = await closedPort();
    const h = await routerHarness([clusterYaml('backend', port, h2)]);
    try {
      const s = h.stream(clusterRoute({ cluster: 'backend' }));
      s.filter.onRequestHeaders!(requestHeaders('GET', '/'), true);
      await s.ended;
      assert.equal(s.rec.local?.status, 503);
      assert.match(s.rec.local!.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
      assert.ok(s.streamInfo.responseFlags.has('UF'));
      // Envoy counts upstream_rq_total when a request gets its connection: this one never did.
      assert.equal(h.counter('cluster.backend.upstream_rq_total'), 0);
      assert.equal(h.counter('cluster.backend.upstream_rq_503'), 1);
      assert.equal(h.gauge('cluster.backend.upstream_rq_active'), 0);
    } finally {
      await h.close();
    }
  });
}

test('404 NR without a route; direct response; redirect; 503 NC; 503 UH', TIMEOUT, async () => {
  const empty = `
name: empty
connect_timeout: 1s
load_assignment: { cluster_name: empty }`;
  const h = await routerHarness([empty]);
  try {
    const nr = h.stream(undefined);
    nr.filter.onRequestHeaders!(requestHeaders('GET', '/'), true);
    assert.equal(nr.rec.local?.status, 404);
    assert.equal(nr.rec.local?.opts?.details, 'route_not_found');
    assert.ok(nr.streamInfo.responseFlags.has('NR'));
    assert.equal(h.counter('http.ingress_http.no_route'), 1);

    const dr = h.stream(route({ kind: 'direct_response', status: 418, body: 'teapot' }, { responseHeaders: { apply: (hd) => hd.set('x-dr', '1') } }));
    dr.filter.onRequestHeaders!(requestHeaders('GET', '/'), true);
    assert.equal(dr.rec.local?.status, 418);
    assert.equal(dr.rec.local?.body, 'teapot');
    assert.equal(replyHeaders(dr.rec.local?.opts).get('x-dr'), '1');
    assert.equal(replyHeaders(dr.rec.local?.opts).get('location'), undefined, 'no Location on a 4xx direct response');
    assert.equal(h.counter('http.ingress_http.rq_direct_response'), 1);

    const rd = h.stream(route({ kind: 'redirect', status: 301, location: (hd) => `https://example.com${hd.get(':path')}` }));
    rd.filter.onRequestHeaders!(requestHeaders('GET', '/x'), true);
    assert.equal(rd.rec.local?.status, 301);
    assert.equal(replyHeaders(rd.rec.local?.opts).get('location'), 'https://example.com/x');
    assert.equal(h.counter('http.ingress_http.rq_redirect'), 1);

    const nc = h.stream(clusterRoute({ cluster: 'nope' }));
    nc.filter.onRequestHeaders!(requestHeaders('GET', '/'), true);
    assert.equal(nc.rec.local?.status, 503);
    assert.ok(nc.streamInfo.responseFlags.has('NC'));
    assert.equal(h.counter('http.ingress_http.no_cluster'), 1);

    const uh = h.stream(clusterRoute({ cluster: 'empty' }));
    uh.filter.onRequestHeaders!(requestHeaders('GET', '/'), true);
    assert.equal(uh.rec.local?.status, 503);
    assert.equal(uh.rec.local?.body, 'no healthy upstream');
    assert.ok(uh.streamInfo.responseFlags.has('UH'));
    assert.equal(h.counter('cluster.empty.upstream_cx_none_healthy'), 1);
    assert.equal(h.counter('cluster.empty.upstream_rq_total'), 0);
    assert.equal(h.counter('http.ingress_http.rq_total'), 5);
  } finally {
    await h.close();
  }
});

test('http2 upstream answers before the request ended: the response goes down whole and the upstream stream is reset (NO_ERROR)', TIMEOUT, async () => {
  // A raw server that answers at once and, unlike nghttp2, never resets the request side itself.
  let conn: RawH2 | undefined;
  const up = await RawH2.server((c) => {
    conn = c;
    void c.waitFor((f) => f.type === T.HEADERS).then((f) => f && c.send(frame(T.HEADERS, F.END_HEADERS, f.id, block([[':status', '413']])), frame(T.DATA, F.END_STREAM, f.id, Buffer.from('too big'))));
  });
  const h = await routerHarness([clusterYaml('backend', up.port, true)]);
  try {
    const s = h.stream(clusterRoute({ cluster: 'backend' }));
    s.filter.onRequestHeaders!(requestHeaders('POST', '/upload'), false);
    s.filter.onRequestBody!(Buffer.from('first part'), false);
    await s.ended;
    assert.equal(s.rec.status, 413);
    assert.equal(s.bodyText, 'too big');
    const rst = await conn!.waitFor((f) => f.type === T.RST_STREAM);
    assert.ok(rst, 'the upstream stream is reset');
    assert.equal(rstCode(rst), 0, 'NO_ERROR');
    assert.equal(h.counter('cluster.backend.http2.tx_reset'), 1);
    assert.equal(h.gauge('cluster.backend.upstream_rq_active'), 0);
  } finally {
    await h.close();
    up.close();
    conn?.close();
  }
});

test('http2 upstream: streams waiting for a connection\'s stream limit when its GOAWAY comes go out on a new connection', TIMEOUT, async () => {
  let first = true;
  const up = await startUpstream('http2', (req, res) => {
    const stream = (req as unknown as { stream: { id: number; session: { goaway(code: number, last: number): void } } }).stream;
    if (first) {
      first = false;
      // The server stops taking streams after this one; the two waiting in legate were never sent.
      stream.session.goaway(0, stream.id);
      setTimeout(() => res.end('first'), 50);
    } else res.end('again');
  });
  // One stream per connection and one connection allowed: the second and third requests wait in the session.
  const extra = `circuit_breakers: { thresholds: [{ max_connections: 1 }] }`;
  const yaml = clusterYaml('backend', up.port, true, extra).replace('http2_protocol_options: {}', 'http2_protocol_options: { max_concurrent_streams: 1 }');
  const h = await routerHarness([yaml]);
  try {
    const streams = [0, 1, 2].map(() => h.stream(clusterRoute({ cluster: 'backend' })));
    for (const s of streams) s.filter.onRequestHeaders!(requestHeaders('GET', '/x'), true);
    await Promise.all(streams.map((s) => s.ended));
    assert.deepEqual(streams.map((s) => [s.rec.status, s.bodyText]), [[200, 'first'], [200, 'again'], [200, 'again']]);
    assert.equal(up.connections, 2);
    assert.equal(h.counter('cluster.backend.upstream_rq_503'), 0);
  } finally {
    await h.close();
    await up.close();
  }
});
