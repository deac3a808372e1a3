// The fault filter in the real process (two workers): /runtime_modify turns faults on and off on
// every worker, /runtime shows the layers; and the corpus fault-injection example served as Envoy's
// sandbox describes it — no faults by default, aborts and delays once the disk runtime layer (a
// symlinked directory swapped in place) sets them, with FI/DI in the stdout access log.

import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { CORPUS_DIR } from '../helpers/corpus.ts';
import { httpBootstrap } from '../helpers/config.ts';
import { startHttp1Upstream } from '../helpers/upstreams.ts';

const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

interface Res {
  status: number;
  body: string;
  ms: number;
}

/** One HTTP/1.1 request on a new connection, so the kernel spreads them over the workers. */
function get(port: number, path = '/'): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
  });
}

function h2get(port: number, path = '/'): Promise<Res> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', reject);
    const st = s.request({ ':path': path });
    let status = 0;
    let body = '';
    st.on('response', (h) => (status = Number(h[':status'])));
    st.setEncoding('utf8');
    st.on('data', (c: string) => (body += c));
    st.on('end', () => {
      s.close();
      resolve({ status, body, ms: performance.now() - t0 });
    });
    st.on('error', reject);
  });
}

async function many(n: number, port: number): Promise<Res[]> {
  const out: Res[] = [];
  for (let i = 0; i < n; i++) out.push(await (i % 2 === 0 ? get(port) : h2get(port)));
  return out;
}

async function modify(l: Legate, query: string): Promise<void> {
  const r = await fetch(`${l.admin}/runtime_modify?${query}`, { method: 'POST' });
  assert.equal(r.status, 200, await r.text());
}

test('/runtime_modify switches fault.http.abort.abort_percent and the delay keys on a running process (2 workers)', async () => {
  const up = await startHttp1Upstream((_req, res) => res.end('ok'));
  const config = httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }], clusters: { backend: { ports: [up.port] } } }) as Record<string, unknown>;
  const hcmCfg = ((config.static_resources as { listeners: Array<{ filter_chains: Array<{ filters: Array<{ typed_config: Record<string, unknown> }> }> }> }).listeners[0]!.filter_chains[0]!.filters[0]!.typed_config);
  hcmCfg.http_filters = [
    { name: 'envoy.filters.http.fault', typed_config: { '@type': FAULT_TYPE, abort: { http_status: 503, percentage: { numerator: 0 } }, delay: { fixed_delay: '10s', percentage: { numerator: 0 } } } },
    { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
  ];
  config.layered_runtime = { layers: [{ name: 'static_layer_0', static_layer: { 'fault.http.abort.http_status': 502 } }, { name: 'admin_layer_0', admin_layer: {} }] };
  const l = await startLegate(config, { concurrency: 2 });
  try {
    const port = await l.listenerPort('http');
    assert.ok((await many(10, port)).every((r) => r.status === 200));

    await modify(l, 'fault.http.abort.abort_percent=100');
    const aborted = await many(12, port);
    assert.ok(aborted.every((r) => r.status === 502 && r.body === 'fault filter abort'), JSON.stringify(aborted));

    const rt = (await (await fetch(`${l.admin}/runtime`)).json()) as { layers: string[]; entries: Record<string, { final_value: string; layer_values: string[] }> };
    assert.deepEqual(rt.layers, ['static_layer_0', 'admin_layer_0']);
    assert.deepEqual(rt.entries['fault.http.abort.abort_percent'], { final_value: '100', layer_values: ['', '100'] });
    assert.deepEqual(rt.entries['fault.http.abort.http_status'], { final_value: '502', layer_values: ['502', ''] });

    // An empty value removes the admin override; then a short delay through the runtime keys.
    await modify(l, 'fault.http.abort.abort_percent=&fault.http.delay.fixed_delay_percent=100&fault.http.delay.fixed_duration_ms=60');
    const delayed = await many(6, port);
    assert.ok(delayed.every((r) => r.status === 200 && r.ms >= 55), JSON.stringify(delayed));

    const s = await l.stats();
    assert.equal(s['http.ingress_http.fault.aborts_injected'], 12);
    assert.equal(s['http.ingress_http.fault.delays_injected'], 6);
    assert.equal(s['http.ingress_http.fault.active_faults'], 0);
    assert.equal(s['runtime.admin_overrides_active'], 1);
    assert.ok((s['runtime.load_success'] ?? 0) >= 3);
  } finally {
    await l.stop();
    await up.close();
  }
});

type Obj = Record<string, unknown>;

function socketAddressesOf(o: unknown, out: Obj[] = []): Obj[] {
  if (Array.isArray(o)) for (const x of o) socketAddressesOf(x, out);
  else if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      if (k === 'socket_address' && v && typeof v === 'object') out.push(v as Obj);
      else socketAddressesOf(v, out);
    }
  }
  return out;
}

test('corpus fault-injection__envoy.yaml: no faults by default; abort and delay once the disk runtime layer sets them', async () => {
  const up = await startHttp1Upstream((_req, res) => res.end('backend'));
  const c = parse(readFileSync(join(CORPUS_DIR, 'fault-injection__envoy.yaml'), 'utf8')) as Obj;
  const sr = c.static_resources as { listeners: Obj[]; clusters: Obj[] };
  for (const a of socketAddressesOf(sr.listeners)) Object.assign(a, { address: '127.0.0.1', port_value: 0 });
  for (const a of socketAddressesOf(sr.clusters)) Object.assign(a, { address: '127.0.0.1', port_value: up.port });
  c.admin = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
  // The sandbox's /srv/runtime: v1/ holds the runtime tree, `current` links to it.
  const srv = mkdtempSync(join(tmpdir(), 'legate-srv-runtime-'));
  mkdirSync(join(srv, 'v1', 'envoy'), { recursive: true });
  symlinkSync(join(srv, 'v1'), join(srv, 'current'));
  const layer = (c.layered_runtime as { layers: Array<{ disk_layer: { symlink_root: string; subdirectory: string } }> }).layers[0]!;
  assert.equal(layer.disk_layer.subdirectory, 'envoy');
  layer.disk_layer.symlink_root = join(srv, 'current');
  /** What the example's enable/disable scripts do: write (or remove) files, then `ln -s v1 new && mv -Tf new current`. */
  const setRuntime = (values: Record<string, string | undefined>): void => {
    for (const [key, v] of Object.entries(values)) {
      const file = join(srv, 'v1', 'envoy', ...key.split('.'));
      mkdirSync(join(file, '..'), { recursive: true });
      if (v === undefined) unlinkSync(file);
      else writeFileSync(file, `${v}\n`);
    }
    symlinkSync(join(srv, 'v1'), join(srv, 'new'));
    renameSync(join(srv, 'new'), join(srv, 'current'));
  };
  const l = await startLegate(c, { concurrency: 2 });
  let port = 0;
  /** Polls until the workers have reloaded the layer (each watches for itself). */
  const until = async (pred: (r: Res) => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 5000;
    let streak = 0;
    while (streak < 6) {
      if (Date.now() > deadline) assert.fail(`runtime change not seen: ${what}`);
      streak = pred(await get(port)) ? streak + 1 : 0;
    }
  };
  try {
    const listeners = (await (await fetch(`${l.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ local_address: { socket_address: { port_value: number } } }> };
    port = listeners.listener_statuses[0]!.local_address.socket_address.port_value;
    const normal = await many(10, port);
    assert.ok(normal.every((r) => r.status === 200 && r.body === 'backend' && r.ms < 1000), JSON.stringify(normal));

    // enable_abort_fault_injection.sh
    setRuntime({ 'fault.http.abort.abort_percent': '100', 'fault.http.abort.http_status': '503' });
    await until((r) => r.status === 503 && r.body === 'fault filter abort', 'abort');
    assert.ok((await many(6, port)).every((r) => r.status === 503));
    // disable_abort_fault_injection.sh
    setRuntime({ 'fault.http.abort.abort_percent': undefined, 'fault.http.abort.http_status': undefined });
    await until((r) => r.status === 200, 'abort removed');

    // enable_delay_fault_injection.sh (with a 100 ms delay instead of 3 s, to keep the suite fast)
    setRuntime({ 'fault.http.delay.fixed_delay_percent': '100', 'fault.http.delay.fixed_duration_ms': '100' });
    await until((r) => r.status === 200 && r.ms >= 95, 'delay');
    assert.ok((await many(4, port)).every((r) => r.status === 200 && r.ms >= 95));

    const rt = (await (await fetch(`${l.admin}/runtime`)).json()) as { layers: string[]; entries: Record<string, { final_value: string }> };
    assert.deepEqual(rt.layers, ['disk_layer_0']);
    assert.equal(rt.entries['fault.http.delay.fixed_duration_ms']?.final_value, '100');
    // The example has no admin layer: Envoy refuses /runtime_modify.
    const m = await fetch(`${l.admin}/runtime_modify?fault.http.abort.abort_percent=100`, { method: 'POST' });
    assert.equal(m.status, 503);
    assert.equal(await m.text(), 'No admin layer specified');
    const s = await l.stats();
    assert.ok((s['http.ingress_http.fault.aborts_injected'] ?? 0) >= 12);
    assert.ok((s['http.ingress_http.fault.delays_injected'] ?? 0) >= 10);
    // The example's stdout access log (Envoy's default format) carries the FI and DI flags.
    assert.match(l.stdout(), /"GET \/ HTTP\/1\.1" 503 FI /);
    assert.match(l.stdout(), /"GET \/ HTTP\/1\.1" 200 DI /);
  } finally {
    await l.stop();
    await up.close();
    rmSync(srv, { recursive: true, force: true });
  }
});
