// vm_config.environment_variables: a plugin reading its environment through WASI (environ_get)
// sees the configured key_values and the host variables named in host_env_keys — and nothing
// else of the proxy's own environment.

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
