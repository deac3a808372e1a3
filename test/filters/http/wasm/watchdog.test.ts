// A plugin in an endless loop does not freeze the proxy for ever: the worker watchdog sees the
// worker stop beating, logs the plugin it was stuck in, restarts the worker, and the next request is
// served (the stuck request's connection is lost). watchdogs.worker_watchdog.kill_timeout: 1s.

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

test('an endless loop in a plugin: the watchdog names the plugin, restarts the worker, and serving resumes', { timeout: 60_000 }, async () => {
  const b = wasmBootstrap([{ name: 'misbehave', rootId: 'misbehave', file: examplePlugin('misbehave'), configuration: 'on' }], { app: (app.address() as net.AddressInfo).port });
  b.watchdogs = { worker_watchdog: { kill_timeout: '1s' } };
  legate = await startLegate(b);
  const port = await legate.listenerPort('ingress');
  assert.equal((await fetch(`http://127.0.0.1:${port}/before`)).headers.get('x-misbehave'), 'ok');
  const started = Date.now();
  await assert.rejects(fetch(`http://127.0.0.1:${port}/loop`), 'the stuck request is lost with its worker');
  const stuckFor = Date.now() - started;
  assert.ok(stuckFor >= 900, `recovered after ${stuckFor} ms`);
  for (let i = 0; i < 400 && !/watchdog: worker 0 restarted/.test(legate.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(legate.stderr(), /watchdog: worker 0 has not run its event loop for 1000 ms, stuck in Wasm plugin 'misbehave' \(root_id 'misbehave', vm_id 'misbehave'\); restarting it/);
  const after = await fetch(`http://127.0.0.1:${port}/after`);
  assert.equal(after.status, 200);
  assert.equal(after.headers.get('x-misbehave'), 'ok');
  const s = await legate.stats();
  assert.equal(s['server.watchdog_mega_miss'], 1);
  assert.equal(s['server.worker_0.watchdog_mega_miss'], 1);
});
