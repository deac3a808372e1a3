// A VM's memory is bounded: with the runtime key legate.wasm.max_vm_memory_bytes at 32 MiB, a
// request that makes the plugin grow its memory by 64 MiB fails (503) and is logged with the plugin's
// name; the next request gets a fresh VM.

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

test('memory over legate.wasm.max_vm_memory_bytes fails the stream with 503, logged; the next one is served', { timeout: 60_000 }, async () => {
  const b = wasmBootstrap([{ name: 'misbehave', rootId: 'misbehave', file: examplePlugin('misbehave'), configuration: 'on' }], { app: (app.address() as net.AddressInfo).port });
  b.layered_runtime = { layers: [{ name: 'static', static_layer: { 'legate.wasm.max_vm_memory_bytes': 32 * 1024 * 1024 } }] };
  legate = await startLegate(b);
  const port = await legate.listenerPort('ingress');
  const hog = await fetch(`http://127.0.0.1:${port}/hog`);
  assert.equal(hog.status, 503);
  for (let i = 0; i < 50 && !/over the VM's limit/.test(legate.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(legate.stderr(), /wasm log misbehave misbehave misbehave: plugin failed in proxy_on_request_headers: proxy_on_request_headers: memory \d+ bytes is over the VM's limit of 33554432/);
  const next = await fetch(`http://127.0.0.1:${port}/fine`);
  assert.equal(next.status, 200);
  assert.equal(next.headers.get('x-misbehave'), 'ok');
});
