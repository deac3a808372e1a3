// Retries in the real legate process (bootstrap file, worker threads, admin stats): an upstream
// failing twice then answering, reached over HTTP/1.1 and HTTP/2, with the counters read from /stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startLegate } from '../helpers/legate.ts';
import { httpBootstrap } from '../helpers/config.ts';

test('legate retries a failing upstream to success (HTTP/1.1 and HTTP/2 downstream), counted in /stats', { timeout: 30_000 }, async () => {
  const attempts = new Map<string, number>();
  const upstream = http.createServer((req, res) => {
    const key = String(req.headers['x-key']);
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    res.statusCode = n < 3 ? 503 : 200;
    res.end(`attempt ${req.headers['x-envoy-attempt-count']}`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const legate = await startLegate(
    httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'up', retry_policy: { retry_on: '5xx', num_retries: 2, retry_back_off: { base_interval: '0.005s' } } } }],
      clusters: { up: { ports: [port] } },
    }),
    { concurrency: 1 },
  );
  try {
    const lport = await legate.listenerPort('http');
    const h1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: lport, path: '/', headers: { 'x-key': 'h1' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    assert.equal(h1.status, 200);
    const session = http2.connect(`http://127.0.0.1:${lport}`);
    const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/', 'x-key': 'h2' });
      let status = 0;
      let body = '';
      s.on('response', (h) => (status = Number(h[':status'])));
      s.on('data', (c: Buffer) => (body += c));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
    });
    session.close();
    assert.equal(h2.status, 200);
    assert.deepEqual([attempts.get('h1'), attempts.get('h2')], [3, 3]);
    const stats = await legate.stats();
    assert.equal(stats['cluster.up.upstream_rq_retry'], 4);
    assert.equal(stats['cluster.up.upstream_rq_retry_success'], 2);
    assert.equal(stats['cluster.up.upstream_rq_total'], 6);
  } finally {
    await legate.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
  }
});
