// Worker 0 of a config with no control plane runs on the main thread (main-thread-worker.ts): when
// it does and when it does not, that it serves and reports as a worker thread does, beside worker
// threads too, and that the launcher gives the main thread a worker's young generation.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { holdsWasm, mayServeOnMainThread } from '../../../src/proxy/worker/main-thread-worker.ts';
import { loadBootstrap } from '../../../src/config/bootstrap.ts';
import { collectUnpacked } from '../../../src/config/decode.ts';
import { startLegate, LAUNCHER, type Legate } from '../../helpers/legate.ts';
import { httpBootstrap } from '../../helpers/config.ts';
import { startHttp1Upstream } from '../../helpers/upstreams.ts';
import { examplePlugin, wasmBootstrap } from '../../helpers/wasm.ts';

const upstream = await startHttp1Upstream();
after(() => upstream.close());

const ON_MAIN = /serving 1 listener\(s\) on 1 worker\(s\) \(worker 0 on the main thread\)/;
const ON_THREAD = /serving 1 listener\(s\) on 1 worker\(s\), admin/;

/** The start-up line ("serving …") comes after the admin address is written: waits for it (up to 5 s). */
async function servingLine(l: Legate): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = /serving .*/.exec(l.stderr())?.[0];
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no "serving" line:\n${l.stderr()}`);
}

function staticConfig(): object {
  return httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }], clusters: { app: { ports: [upstream.port] } } });
}

test('only a config with no xDS and no SDS, without --dedicated-main-thread, may use the main thread', () => {
  const base = { dedicatedMainThread: false, dynamic: undefined, sdsRefs: [] };
  assert.equal(mayServeOnMainThread(base), true);
  assert.equal(mayServeOnMainThread({ ...base, dedicatedMainThread: true }), false);
  assert.equal(mayServeOnMainThread({ ...base, dynamic: { ads: true } }), false);
  assert.equal(mayServeOnMainThread({ ...base, sdsRefs: [{ name: 'default' }] }), false);
});

test('holdsWasm finds a Proxy-Wasm HTTP filter nested in the HCM, and nothing in a plain config', () => {
  const decode = (b: object): ReturnType<typeof collectUnpacked> => {
    const r = loadBootstrap({ configYaml: JSON.stringify(b) });
    assert.ok(r.ok, JSON.stringify(r));
    return collectUnpacked(r.value);
  };
  assert.equal(holdsWasm(decode(staticConfig())), false);
  const wasm = wasmBootstrap([{ name: 'header-filter', rootId: 'header_filter', file: examplePlugin('header-filter') }], { app: upstream.port });
  assert.equal(holdsWasm(decode(wasm)), true);
});

for (const dedicated of [false, true]) {
  test(`a static config at --concurrency 1${dedicated ? ' with --dedicated-main-thread: a worker thread' : ': the main thread'} serves, reports stats and clusters, and drains`, async () => {
    const l = await startLegate(staticConfig(), { args: dedicated ? ['--dedicated-main-thread'] : [] });
    try {
      assert.match(await servingLine(l), dedicated ? ON_THREAD : ON_MAIN);
      const port = await l.listenerPort('http');
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`http://127.0.0.1:${port}/n${i}`);
        assert.equal(r.status, 200);
        assert.equal(((await r.json()) as { path: string }).path, `/n${i}`);
      }
      const s = await l.stats();
      assert.equal(s['cluster.app.upstream_rq_total'], 3);
      assert.equal(s['http.ingress_http.downstream_rq_2xx'], 3);
      assert.equal(s['server.concurrency'], 1);
      const clusters = await (await fetch(`${l.admin}/clusters`)).text();
      assert.match(clusters, new RegExp(`app::127\\.0\\.0\\.1:${upstream.port}::health_flags::healthy`), 'the worker answered /clusters');
    } finally {
      assert.equal(await l.stop('SIGTERM'), 0);
    }
  });
}

test('--concurrency 2: worker 0 on the main thread and worker 1 on its own thread both take connections', async () => {
  const l = await startLegate(staticConfig(), { concurrency: 2 });
  try {
    assert.match(await servingLine(l), /serving 1 listener\(s\) on 2 worker\(s\) \(worker 0 on the main thread\)/);
    const port = await l.listenerPort('http');
    // A new connection per request: the kernel spreads them over both listening sockets (reusePort).
    const n = 40;
    for (let i = 0; i < n; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/c${i}`, { headers: { connection: 'close' } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    const s = await l.stats();
    const perWorker = [0, 1].map((w) => s[`listener.127.0.0.1_${port}.worker_${w}.downstream_cx_total`] ?? 0);
    assert.equal(perWorker[0]! + perWorker[1]!, n, JSON.stringify(perWorker));
    assert.ok(perWorker[0]! > 0 && perWorker[1]! > 0, `both workers served: ${JSON.stringify(perWorker)}`);
    assert.equal(s['cluster.app.upstream_rq_total'], n);
  } finally {
    assert.equal(await l.stop('SIGTERM'), 0);
  }
});

test('a config with a Proxy-Wasm plugin keeps its worker on a thread the watchdog can restart', async () => {
  const l = await startLegate(wasmBootstrap([{ name: 'header-filter', rootId: 'header_filter', file: examplePlugin('header-filter'), configuration: 'on-a-thread', vmId: 'vm-1' }], { app: upstream.port }));
  try {
    assert.match(await servingLine(l), ON_THREAD);
    const r = await fetch(`http://127.0.0.1:${await l.listenerPort('ingress')}/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-wasm-response'), 'on-a-thread');
  } finally {
    assert.equal(await l.stop('SIGTERM'), 0);
  }
});

test('the launcher gives the main thread the young generation of a worker unless the user set one; a static config gets the optimizing compilers back at its first connection', async () => {
  const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const l = await startLegate(staticConfig(), { entry: LAUNCHER, args: ['-l', 'debug'] });
  try {
    // The same pid serves (execve): what signals and pilot-agent see is the proxy itself.
    const argv = cmdline(l.proc.pid!);
    assert.equal(argv[1], '--max-semi-space-size=4');
    assert.ok(argv.includes(LAUNCHER));
    assert.match(await servingLine(l), ON_MAIN);
    // The launcher held Sparkplug, Maglev and TurboFan back for the start-up (v8-flags.ts); with a
    // static config they stay held while idle, and the first connection to a listener brings them back.
    const resumed = /Sparkplug, Maglev and TurboFan are on again/;
    assert.equal((await fetch(`${l.admin}/ready`)).status, 200);
    assert.doesNotMatch(l.stderr(), resumed, 'idle (an admin request is not traffic): still held');
    assert.equal((await fetch(`http://127.0.0.1:${await l.listenerPort('http')}/`)).status, 200);
    for (let i = 0; i < 100 && !resumed.test(l.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(l.stderr().match(new RegExp(resumed, 'g'))?.length, 1, 'turned on once, by the first connection');
  } finally {
    assert.equal(await l.stop('SIGTERM'), 0);
  }
  const own = await startLegate(staticConfig(), { entry: LAUNCHER, env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=8' } });
  try {
    assert.ok(!cmdline(own.proc.pid!).some((a) => a.startsWith('--max-semi-space-size')), 'NODE_OPTIONS already sets it: no re-exec');
    assert.equal((await fetch(`${own.admin}/ready`)).status, 200);
  } finally {
    assert.equal(await own.stop('SIGTERM'), 0);
  }
});
