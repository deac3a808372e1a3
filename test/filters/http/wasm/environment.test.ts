// vm_config.environment_variables: a plugin reading its environment through WASI (environ_get)
// sees the configured key_values and the host variables named in host_env_keys — and nothing
// else of the proxy's own environment; and the rest of WASI that SDKs built on wasi-libc call.

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

test('the plugin sees host_env_keys and key_values through WASI, not the rest of the environment', { timeout: 60_000 }, async () => {
  process.env.LEGATE_TEST_SHARED = 'from-host';
  process.env.LEGATE_TEST_PRIVATE = 'must-not-leak';
  const b = wasmBootstrap([{ name: 'env', rootId: 'env', file: examplePlugin('env-reader'), configuration: 'x' }], { app: (app.address() as net.AddressInfo).port });
  const cfg = (b.static_resources as { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ typed_config: { config: { vm_config: Record<string, unknown> } } }> } }> }> }> }).listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.http_filters[0]!.typed_config.config.vm_config;
  cfg.environment_variables = { host_env_keys: ['LEGATE_TEST_SHARED'], key_values: { MODE: 'test' } };
  legate = await startLegate(b);
  const r = await fetch(`http://127.0.0.1:${await legate.listenerPort('ingress')}/`);
  assert.equal(r.headers.get('x-env'), 'LEGATE_TEST_SHARED=from-host;MODE=test');
});

test('the rest of WASI as wasi-libc uses it: stdout lines at info and stderr at error in the log, fd 3 is EBADF, random_get fills, clock_time_get is the wall clock', { timeout: 60_000 }, async () => {
  assert.ok(legate, 'started by the test above');
  const r = await fetch(`http://127.0.0.1:${await legate.listenerPort('ingress')}/wasi`);
  // errno/bytes written per fd_write (BADF is 8), then what random_get and clock_time_get gave.
  assert.equal(r.headers.get('x-wasi'), 'out=0/10+0/8;err=0/16;badfd=8/0;random=0/filled;clock=0/now');
  const deadline = Date.now() + 5000;
  const lines = (): string[] => legate!.stderr().split('\n').filter((l) => l.includes('wasm log env'));
  while (lines().length < 4 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  // A line written in two pieces is logged once, whole; each request logs its own pair.
  const out = lines().filter((l) => l.endsWith(': hello from stdout'));
  const err = lines().filter((l) => l.endsWith(': and from stderr'));
  assert.equal(out.length, 2, lines().join('\n'));
  assert.equal(err.length, 2, lines().join('\n'));
  assert.ok(out.every((l) => l.includes('[info][wasm]')), out.join('\n'));
  assert.ok(err.every((l) => l.includes('[error][wasm]')), err.join('\n'));
  assert.ok(!lines().some((l) => l.includes('nowhere')));
});
