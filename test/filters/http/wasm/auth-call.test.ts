// The auth-call example plugin through the real process: each request is held while the plugin
// calls the `auth` cluster with proxy_http_call, then continues (200) or is answered 403 with the
// auth service's reason; an auth service that is down means 403 too. Over HTTP/1.1 and HTTP/2.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

const WASM = examplePlugin('auth-call');

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

const checks: Array<string | undefined> = [];
const auth = http.createServer((req, res) => {
  checks.push(req.headers.authorization);
  if (req.url === '/check' && req.headers.authorization === 'Bearer good') return res.end('ok');
  res.writeHead(401, { 'x-auth-reason': req.headers.authorization ? 'bad token' : 'no token' }).end();
});
const app = http.createServer((req, res) => res.end(`app got ${req.url}`));
const authPort = await listen(auth);
const appPort = await listen(app);
// The auth service is "down": it resets every connection. (A port merely closed again could be
// taken by another test running in parallel, which then answers the call.)
const resetting = net.createServer((s) => s.destroy());
const deadPort = await listen(resetting);

const running: Legate[] = [];
after(async () => {
  for (const l of running) await l.stop();
  auth.close();
  app.close();
  resetting.close();
});

async function start(authCluster: number): Promise<number> {
  const l = await startLegate(wasmBootstrap([{ name: 'auth', rootId: 'auth_call', file: WASM, configuration: 'auth' }], { app: appPort, auth: authCluster }));
  running.push(l);
  return l.listenerPort('ingress');
}

test('HTTP/1.1: a good token is let through after the auth call, a bad or missing one gets 403 with the reason', { timeout: 60_000 }, async () => {
  const port = await start(authPort);
  const ok = await fetch(`http://127.0.0.1:${port}/data`, { headers: { authorization: 'Bearer good' } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), 'app got /data');
  assert.equal(checks.at(-1), 'Bearer good');
  const bad = await fetch(`http://127.0.0.1:${port}/data`, { headers: { authorization: 'Bearer bad' } });
  assert.equal(bad.status, 403);
  assert.equal(await bad.text(), 'forbidden: bad token');
  const none = await fetch(`http://127.0.0.1:${port}/data`);
  assert.equal(none.status, 403);
  assert.equal(await none.text(), 'forbidden: no token');
});

test('HTTP/2: the same over h2c, several streams at once on one connection', { timeout: 60_000 }, async () => {
  const port = await start(authPort);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const one = (token: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/h2', authorization: `Bearer ${token}` });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('data', (d: Buffer) => (body += d));
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
        s.end();
      });
    const results = await Promise.all([one('good'), one('bad'), one('good')]);
    assert.deepEqual(results, [
      { status: 200, body: 'app got /h2' },
      { status: 403, body: 'forbidden: bad token' },
      { status: 200, body: 'app got /h2' },
    ]);
  } finally {
    session.close();
  }
});

test('the auth service down: the call fails (no headers) and the plugin answers 403', { timeout: 60_000 }, async () => {
  const port = await start(deadPort);
  const r = await fetch(`http://127.0.0.1:${port}/data`, { headers: { authorization: 'Bearer good' } });
  assert.equal(r.status, 403);
  assert.equal(await r.text(), 'forbidden: auth service unavailable');
});
