// vm_config.code.remote: the module is fetched through a bootstrap cluster before the config is
// validated, checked against its sha256 and cached; a wrong sha256 is a start-up error naming the
// field; --mode validate checks the config without fetching.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startLegate, writeConfig, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

process.env.LEGATE_WASM_CACHE = mkdtempSync(join(tmpdir(), 'legate-wasm-cache-'));
const wasm = readFileSync(examplePlugin('header-filter'));
const sha = createHash('sha256').update(wasm).digest('hex');
let fetches = 0;
const registry = http.createServer((req, res) => {
  fetches++;
  if (req.url === '/plugins/header-filter.wasm' && req.headers.host === 'plugins.example') return res.end(wasm);
  res.writeHead(404).end();
});
const app = http.createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
const port = (s: net.Server): number => (s.address() as net.AddressInfo).port;
let legate: Legate | undefined;
after(async () => {
  await legate?.stop();
  registry.close();
  app.close();
});

function bootstrap(digest: string): Record<string, unknown> {
  const b = wasmBootstrap([{ name: 'remote', rootId: 'header_filter', file: 'unused', configuration: 'from-remote' }], { app: port(app), registry: port(registry) });
  const hcm = (b.static_resources as { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ typed_config: { config: { vm_config: { code: unknown } } } }> } }> }> }> }).listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
  hcm.http_filters[0]!.typed_config.config.vm_config.code = { remote: { http_uri: { uri: 'http://plugins.example/plugins/header-filter.wasm', cluster: 'registry', timeout: '5s' }, sha256: digest } };
  return b;
}

test('--mode validate accepts code.remote without fetching it', async () => {
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(bootstrap(sha))]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fetches, 0);
});

test('a wrong sha256 fails the start naming code.remote and both digests', { timeout: 60_000 }, async () => {
  const wrong = 'a'.repeat(64);
  await assert.rejects(startLegate(bootstrap(wrong)), (e: Error) => {
    assert.match(e.message, /vm_config\.code\.remote: fetching failed: http:\/\/plugins\.example\/plugins\/header-filter\.wasm: sha256 is [0-9a-f]{64}, the config expects a{64}/);
    return true;
  });
});

test('fetched through the cluster, verified, cached and served', { timeout: 60_000 }, async () => {
  const before = fetches;
  legate = await startLegate(bootstrap(sha));
  assert.equal(fetches, before + 1);
  const r = await fetch(`http://127.0.0.1:${await legate.listenerPort('ingress')}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-wasm-response'), 'from-remote');
});
