// The body-rewrite example through the real process: request and response bodies arrive in several
// chunks (the word split across two of them), the plugin buffers each whole body, rewrites it with
// proxy_set_buffer_bytes, and the upstream and the client get the rewritten bytes, over HTTP/1.1
// and HTTP/2.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

const received: string[] = [];
const upstream = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d));
  req.on('end', () => {
    received.push(body);
    res.writeHead(200, { 'content-type': 'text/plain' });
    // The word split across chunks, written apart in time.
    res.write('upstream says: sec');
    setTimeout(() => {
      res.write('ret, and ');
      setTimeout(() => res.end('another secret.'), 20);
    }, 20);
  });
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = (upstream.address() as net.AddressInfo).port;
let legate: Legate | undefined;
after(async () => {
  await legate?.stop();
  upstream.close();
});

async function port(): Promise<number> {
  legate ??= await startLegate(wasmBootstrap([{ name: 'rewrite', rootId: 'body_rewrite', file: examplePlugin('body-rewrite'), configuration: 'secret' }], { app: upPort }));
  return legate.listenerPort('ingress');
}

const EXPECTED_RESPONSE = 'upstream says: [redacted], and another [redacted].';

test('HTTP/1.1: a chunked request body and a chunked response are rewritten whole', { timeout: 60_000 }, async () => {
  const p = await port();
  const res = await new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p, method: 'POST', path: '/', agent: false }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, headers: r.headers }));
    });
    req.on('error', reject);
    req.write('my sec');
    setTimeout(() => req.end('ret is safe'), 20);
  });
  assert.equal(res.status, 200);
  assert.equal(res.body, EXPECTED_RESPONSE);
  assert.equal(res.headers['content-length'], undefined);
  assert.equal(received.at(-1), 'my [redacted] is safe');
});

test('HTTP/2: the same over h2c', { timeout: 60_000 }, async () => {
  const p = await port();
  const session = http2.connect(`http://127.0.0.1:${p}`);
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const s = session.request({ ':method': 'POST', ':path': '/' });
      let out = '';
      s.on('data', (d: Buffer) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.write('h2 secret ');
      setTimeout(() => s.end('stays secret'), 20);
    });
    assert.equal(body, EXPECTED_RESPONSE);
    assert.equal(received.at(-1), 'h2 [redacted] stays [redacted]');
  } finally {
    session.close();
  }
});
