// envoy.filters.http.wasm through the real process: the header-filter plugin (AssemblyScript SDK)
// adds headers both ways, answers 403 itself, and traps on /trap — failing that request with 503
// (or letting it through with fail_open) while the process lives and the next request gets a
// fresh VM. Custom metrics and the runtime's created/active stats show in /stats.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

const WASM = examplePlugin('header-filter');

interface Seen {
  headers: http.IncomingHttpHeaders;
  url: string;
}
const seen: Seen[] = [];
const upstream = http.createServer((req, res) => {
  seen.push({ headers: req.headers, url: req.url ?? '' });
  req.resume();
  req.on('end', () => res.end(`upstream ${req.url}`));
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = (upstream.address() as net.AddressInfo).port;

function bootstrap(failOpen: boolean, configuration: string): Record<string, unknown> {
  return wasmBootstrap([{ name: 'header-filter', rootId: 'header_filter', file: WASM, configuration, failOpen, vmId: 'vm-1' }], { app: upPort });
}

const running: Legate[] = [];
after(async () => {
  for (const l of running) await l.stop();
  upstream.close();
});

/** Waits (up to 5 s) for a line in the process's log: worker log lines arrive asynchronously. */
async function logged(l: Legate, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(l.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(l.stderr(), re);
}

async function start(failOpen: boolean, configuration: string): Promise<{ l: Legate; port: number }> {
  const l = await startLegate(bootstrap(failOpen, configuration));
  running.push(l);
  return { l, port: await l.listenerPort('ingress') };
}

test('headers added both ways, a local 403 from the plugin, custom counter and VM stats', { timeout: 60_000 }, async () => {
  const { l, port } = await start(false, 'from-config');
  const r = await fetch(`http://127.0.0.1:${port}/hello`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'upstream /hello');
  assert.equal(r.headers.get('x-wasm-response'), 'from-config');
  assert.equal(r.headers.get('x-wasm-root-id'), 'header_filter');
  assert.equal(seen.at(-1)!.headers['x-wasm-request'], 'from-config');

  const before = seen.length;
  const denied = await fetch(`http://127.0.0.1:${port}/hello`, { headers: { 'x-wasm-deny': '1' } });
  assert.equal(denied.status, 403);
  assert.equal(await denied.text(), 'denied by wasm');
  assert.equal(denied.headers.get('x-wasm-denied'), 'yes');
  assert.equal(seen.length, before, 'the denied request never reached the upstream');

  const s = await l.stats();
  assert.equal(s['wasmcustom.wasm_header_filter_requests'], 1);
  assert.equal(s['wasm.envoy.wasm.runtime.v8.created'], 1);
  assert.equal(s['wasm.envoy.wasm.runtime.v8.active'], 1);
  await logged(l, /wasm log header-filter header_filter vm-1: header_filter configured with 'from-config'/);
});

test('a trap fails that request with 503 wasm_fail_stream; the process lives and the next request gets a fresh VM', { timeout: 60_000 }, async () => {
  const { l, port } = await start(false, 'closed');
  const before = seen.length;
  const trapped = await fetch(`http://127.0.0.1:${port}/trap`);
  assert.equal(trapped.status, 503);
  assert.equal(seen.length, before);
  await logged(l, /wasm log header-filter header_filter vm-1: plugin failed in proxy_on_request_headers: proxy_on_request_headers: trap: unreachable/);
  const next = await fetch(`http://127.0.0.1:${port}/after`);
  assert.equal(next.status, 200);
  assert.equal(next.headers.get('x-wasm-response'), 'closed');
  const s = await l.stats();
  assert.equal(s['wasm.envoy.wasm.runtime.v8.vm_failed'], 1);
  assert.equal(s['wasm.envoy.wasm.runtime.v8.created'], 2);
  assert.equal(s['wasm.envoy.wasm.runtime.v8.active'], 1);
});

test('fail_open: the trapping request goes on to the upstream without the plugin', { timeout: 60_000 }, async () => {
  const { port } = await start(true, 'open');
  const trapped = await fetch(`http://127.0.0.1:${port}/trap`);
  assert.equal(trapped.status, 200);
  assert.equal(await trapped.text(), 'upstream /trap');
  assert.equal(trapped.headers.get('x-wasm-response'), null);
  const next = await fetch(`http://127.0.0.1:${port}/again`);
  assert.equal(next.headers.get('x-wasm-response'), 'open');
});

test('--mode validate: a file that is not WebAssembly is a config error naming the code field', { timeout: 60_000 }, async () => {
  const { runCli, writeConfig } = await import('../../../helpers/legate.ts');
  const b = bootstrap(false, 'x') as { static_resources: { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: { http_filters: Array<{ typed_config: { config: { vm_config: { code: { local: unknown } } } } }> } }> }> }> } };
  b.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config.http_filters[0]!.typed_config.config.vm_config.code.local = { inline_string: 'not wasm' };
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(b)]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /http_filters\[0\]\.typed_config\.config\.vm_config\.code\.local: not a valid WebAssembly module/);
});

test('HTTP/2 (h2c) downstream: the plugin adds its headers both ways on each stream', { timeout: 60_000 }, async () => {
  const { port } = await start(false, 'over-h2');
  const { connect } = await import('node:http2');
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    const one = (): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        const s = session.request({ ':path': '/h2' });
        s.on('response', (h) => resolve(h));
        s.on('error', reject);
        s.resume();
        s.end();
      });
    const [a, b] = await Promise.all([one(), one()]);
    assert.equal(a['x-wasm-response'], 'over-h2');
    assert.equal(b['x-wasm-response'], 'over-h2');
    assert.equal(seen.at(-1)!.headers['x-wasm-request'], 'over-h2');
  } finally {
    session.close();
  }
});
