// Shared data is process-wide: the shared-counter example under --concurrency 2, 40 requests on 40
// connections spread by the kernel over both workers; every response carries a distinct count
// 1..40 (compare-and-swap on one key across two threads), and the plugin's gauge shows the last.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

const app = http.createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
let legate: Legate | undefined;
after(async () => {
  await legate?.stop();
  app.close();
});

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers['x-request-count'])));
      })
      .on('error', reject);
  });
}

test('two workers count into one key: 40 requests, counts 1..40 each once, both workers served', { timeout: 60_000 }, async () => {
  legate = await startLegate(wasmBootstrap([{ name: 'counter', rootId: 'shared_counter', file: examplePlugin('shared-counter'), configuration: 'count' }], { app: (app.address() as net.AddressInfo).port }), { concurrency: 2 });
  const port = await legate.listenerPort('ingress');
  const counts: string[] = [];
  for (let batch = 0; batch < 4; batch++) counts.push(...(await Promise.all(Array.from({ length: 10 }, () => get(port)))));
  assert.deepEqual(counts.map(Number).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1));
  const s = await legate.stats();
  const perWorker = [0, 1].map((w) => s[`listener.127.0.0.1_${port}.worker_${w}.downstream_cx_total`] ?? 0);
  assert.ok(perWorker.every((n) => n > 0), `connections per worker: ${perWorker.join(', ')}`);
  assert.equal(s['wasm.envoy.wasm.runtime.v8.created'], 2, 'one VM per worker');
});

test('over HTTP/2 (h2c) the same counter keeps counting, one count per stream', { timeout: 60_000 }, async () => {
  const port = await legate!.listenerPort('ingress');
  const { connect } = await import('node:http2');
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    const one = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/' });
        s.on('response', (h) => resolve(Number(h['x-request-count'])));
        s.on('error', reject);
        s.resume();
        s.end();
      });
    const counts = await Promise.all([one(), one(), one()]);
    assert.deepEqual(counts.sort((a, b) => a - b), [41, 42, 43]);
  } finally {
    session.close();
  }
});
