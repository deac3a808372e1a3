// Router retries behind the real connection manager, HTTP/1.1 and h2c downstreams × upstreams:
// upstreams that fail on purpose (5xx, resets, hangs, closed ports), asserting the response, what the
// upstream saw, the cluster's retry counters and the access log's flags and attempt counts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterYaml } from './harness.ts';
import { closedPort, readBody, startUpstream, type Req as UpReq, type Res } from './upstreams.ts';
import { Client } from './proxy-harness.ts';
import { attemptOf, COMBOS, multiHostCluster, startRetryProxy } from './retry-harness.ts';

const TIMEOUT = { timeout: 20_000 };
const C = 'cluster.up.';

for (const [down, up] of COMBOS) {
  const name = `${down}→${up}`;

  test(`retry: succeeds on the 3rd attempt after two 503s (${name})`, TIMEOUT, async () => {
    const seen: number[] = [];
    const upstream = await startUpstream(up, (req, res) => {
      seen.push(attemptOf(req));
      res.statusCode = attemptOf(req) < 3 ? 503 : 200;
      res.end(`attempt ${attemptOf(req)}`);
    });
    const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 2 } } }`, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/ok' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'attempt 3');
      assert.equal(r.headers['x-envoy-attempt-count'], '3');
      assert.deepEqual(seen, [1, 2, 3]);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 2);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), 1);
      assert.equal(p.counter(`${C}upstream_rq_retry_backoff_exponential`), 2);
      assert.equal(p.counter(`${C}upstream_rq_total`), 3);
      assert.equal(p.counter(`${C}retry.upstream_rq_503`), 2);
      assert.equal(p.counter(`${C}upstream_rq_200`), 1);
      assert.equal(p.gauge(`${C}upstream_rq_active`), 0);
      assert.deepEqual(await p.log(), ['200 - 3 /ok']);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`retry: exhausted → the last 5xx forwarded with URX (${name})`, TIMEOUT, async () => {
    let n = 0;
    const upstream = await startUpstream(up, (_req, res) => {
      n++;
      res.statusCode = 502;
      res.end(`bad ${n}`);
    });
    const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: gateway-error, num_retries: 2, retry_back_off: { base_interval: 0.005s } } } }`, [
      clusterYaml('up', upstream.port, up === 'http2'),
    ]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/bad' });
      assert.equal(r.status, 502);
      assert.equal(r.body.toString(), 'bad 3');
      assert.equal(n, 3);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 2);
      assert.equal(p.counter(`${C}upstream_rq_retry_limit_exceeded`), 1);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), 0);
      assert.deepEqual(await p.log(), ['502 URX 3 /bad']);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`retry: per-try timeout then a successful retry; route timeout 504 UT is not retried (${name})`, TIMEOUT, async () => {
    let calls = 0;
    const upstream = await startUpstream(up, (req, res) => {
      calls++;
      if (req.url === '/hang' || attemptOf(req) === 1) return; // never answers
      res.end('second try');
    });
    const routes = `
    - { match: { prefix: /hang }, route: { cluster: up, timeout: 0.15s, retry_policy: { retry_on: "5xx,reset", num_retries: 3, per_try_timeout: 0.5s } } }
    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, per_try_timeout: 0.1s } } }`;
    const p = await startRetryProxy(routes, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/pt' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'second try');
      assert.equal(p.counter(`${C}upstream_rq_per_try_timeout`), 1);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 1);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), 1);
      assert.equal(p.counter(`${C}upstream_rq_timeout`), 0);

      const t = await client.request({ path: '/hang' });
      assert.equal(t.status, 504);
      assert.equal(t.body.toString(), 'upstream request timeout');
      assert.equal(p.counter(`${C}upstream_rq_timeout`), 1);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 1, 'the route timeout is not retried');
      assert.equal(calls, 3);
      const log = await p.log(2);
      assert.deepEqual(log, ['200 - 2 /pt', '504 UT 1 /hang']);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`retry: POST body replayed on each attempt; x-envoy-retry-on / x-envoy-max-retries headers (${name})`, TIMEOUT, async () => {
    const bodies: string[] = [];
    const upstream = await startUpstream(up, (req, res) => {
      void readBody(req).then((b) => {
        bodies.push(b.toString('hex'));
        res.statusCode = attemptOf(req) < 4 ? 500 : 201;
        res.end();
      });
    });
    // No retry policy on the route: only the request headers ask for retries.
    const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: up } }`, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      const body = Buffer.alloc(200 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
      const r = await client.request({ method: 'POST', path: '/post', body, headers: { 'x-envoy-retry-on': '5xx', 'x-envoy-max-retries': '3' } });
      assert.equal(r.status, 201);
      assert.equal(bodies.length, 4);
      for (const b of bodies) assert.equal(b, body.toString('hex'));
      assert.equal(p.counter(`${C}upstream_rq_retry`), 3);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), 1);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`retry: a body over the buffer limit is not retried (${name})`, TIMEOUT, async () => {
    let n = 0;
    const upstream = await startUpstream(up, (req, res) => {
      void readBody(req).then(() => {
        n++;
        res.statusCode = 503;
        res.end();
      });
    });
    const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 3 } } }`, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ method: 'POST', path: '/big', body: Buffer.alloc(1024 * 1024 + 4096, 1) });
      assert.equal(r.status, 503);
      assert.equal(n, 1);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 0);
      assert.equal(p.counter(`${C}retry_or_shadow_abandoned`), 1);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });
}

for (const [down, up] of COMBOS.slice(0, 2)) {
  const name = `${down}→${up}`;

  test(`retry: reset, retriable-status-codes, retriable-4xx, retriable-headers, envoy-ratelimited (${name})`, TIMEOUT, async () => {
    const upstream = await startUpstream(up, (req, res) => {
      const first = attemptOf(req) === 1;
      if (first && req.url === '/reset') {
        if (up === 'http1') (req.socket as import('node:net').Socket).destroy();
        else (req as unknown as { stream: import('node:http2').ServerHttp2Stream }).stream.close(2 /* INTERNAL_ERROR */);
        return;
      }
      if (first && req.url === '/418') res.statusCode = 418;
      if (first && req.url === '/409') res.statusCode = 409;
      if (first && req.url === '/hdr') res.setHeader('x-retry-me', 'please');
      if (first && req.url === '/rl') {
        res.statusCode = 503;
        res.setHeader('x-envoy-ratelimited', 'true');
      }
      res.end(`attempt ${attemptOf(req)}`);
    });
    const routes = `
    - { match: { path: /reset }, route: { cluster: up, retry_policy: { retry_on: reset } } }
    - { match: { path: /418 }, route: { cluster: up, retry_policy: { retry_on: retriable-status-codes, retriable_status_codes: [418] } } }
    - { match: { path: /409 }, route: { cluster: up, retry_policy: { retry_on: retriable-4xx } } }
    - { match: { path: /hdr }, route: { cluster: up, retry_policy: { retry_on: retriable-headers, retriable_headers: [{ name: x-retry-me, present_match: true }] } } }
    - { match: { path: /rl }, route: { cluster: up, retry_policy: { retry_on: 5xx } } }`;
    const p = await startRetryProxy(routes, [clusterYaml('up', upstream.port, up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      for (const path of ['/reset', '/418', '/409', '/hdr']) {
        const r = await client.request({ path });
        assert.equal(r.status, 200, path);
        assert.equal(r.body.toString(), 'attempt 2', path);
      }
      assert.equal(p.counter(`${C}upstream_rq_retry`), 4);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), 4);
      // x-envoy-ratelimited responses are retried only under envoy-ratelimited.
      const rl = await client.request({ path: '/rl' });
      assert.equal(rl.status, 503);
      assert.equal(p.counter(`${C}upstream_rq_retry`), 4);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`retry: previous_hosts moves to the other host; connect-failure from a closed port (${name})`, TIMEOUT, async () => {
    const hits = { bad: 0, good: 0 };
    const bad = await startUpstream(up, (_req, res) => {
      hits.bad++;
      res.statusCode = 503;
      res.end();
    });
    const good = await startUpstream(up, (_req, res) => {
      hits.good++;
      res.end('good');
    });
    const closed = await closedPort();
    const predicate = `retry_host_predicate: [{ name: envoy.retry_host_predicates.previous_hosts, typed_config: { "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate } }], host_selection_retry_max_attempts: 5`;
    const routes = `
    - { match: { prefix: /cf }, route: { cluster: cf, retry_policy: { retry_on: connect-failure, num_retries: 1, ${predicate} } } }
    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 1, ${predicate} } } }`;
    const p = await startRetryProxy(routes, [multiHostCluster('up', [bad.port, good.port], up === 'http2'), multiHostCluster('cf', [closed, good.port], up === 'http2')]);
    const client = new Client(down, p.port);
    try {
      for (let i = 0; i < 6; i++) {
        const r = await client.request({ path: `/ph${i}` });
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'good');
      }
      assert.ok(hits.bad >= 1, 'round robin reached the failing host');
      assert.equal(p.counter(`${C}upstream_rq_retry`), hits.bad);
      assert.equal(p.counter(`${C}upstream_rq_retry_success`), hits.bad);
      for (let i = 0; i < 4; i++) {
        const r = await client.request({ path: `/cf${i}` });
        assert.equal(r.status, 200);
      }
      assert.ok(p.counter('cluster.cf.upstream_rq_retry') >= 1);
      assert.equal(p.counter('cluster.cf.upstream_rq_retry_success'), p.counter('cluster.cf.upstream_rq_retry'));
    } finally {
      client.close();
      await p.close();
      await bad.close();
      await good.close();
    }
  });

  test(`retry: back-off spacing within the jittered cap (${name})`, TIMEOUT, async () => {
    const stamps: number[] = [];
    const upstream = await startUpstream(up, (req, res) => {
      stamps.push(performance.now());
      res.statusCode = attemptOf(req) < 4 ? 503 : 200;
      res.end();
    });
    // base 20 ms, max 60 ms: the gaps are below 60 ms plus scheduling slack.
    const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 3, retry_back_off: { base_interval: 0.02s, max_interval: 0.06s } } } }`, [
      clusterYaml('up', upstream.port, up === 'http2'),
    ]);
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/' });
      assert.equal(r.status, 200);
      assert.equal(stamps.length, 4);
      for (let i = 1; i < stamps.length; i++) {
        const gap = stamps[i]! - stamps[i - 1]!;
        assert.ok(gap >= 0 && gap < 60 + 500, `gap ${gap} ms`);
      }
      assert.equal(p.counter(`${C}upstream_rq_retry_backoff_exponential`), 3);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });

  test(`hedging: on per-try timeout a second attempt races the first; the first is reset (${name})`, TIMEOUT, async () => {
    const upstream = await startUpstream(up, (req, res) => {
      if (attemptOf(req) === 1) {
        const t = setTimeout(() => res.end('slow'), 3000);
        res.on('close', () => clearTimeout(t));
        return;
      }
      res.end('fast');
    });
    const p = await startRetryProxy(
      `    - { match: { prefix: / }, route: { cluster: up, retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 0.1s }, hedge_policy: { hedge_on_per_try_timeout: true } } }`,
      [clusterYaml('up', upstream.port, up === 'http2')],
    );
    const client = new Client(down, p.port);
    try {
      const r = await client.request({ path: '/hedge' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'fast');
      assert.equal(r.headers['x-envoy-attempt-count'], '2');
      assert.equal(p.counter(`${C}upstream_rq_retry`), 1);
      // Envoy counts no per-try timeout when hedging: the first attempt was not cancelled by it.
      assert.equal(p.counter(`${C}upstream_rq_per_try_timeout`), 0);
      for (let i = 0; i < 50 && upstream.aborted === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(upstream.aborted, 1, 'the slow attempt was reset');
      assert.equal(p.gauge(`${C}upstream_rq_active`), 0);
    } finally {
      client.close();
      await p.close();
      await upstream.close();
    }
  });
}

export type { UpReq, Res };
