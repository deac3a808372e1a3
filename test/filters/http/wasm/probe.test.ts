// Each Proxy-Wasm host function group, through a real legate, with what the probe plugin
// (test/fixtures/wasm/probe) observed reported back in response headers: header maps (replace,
// remove, pairs), clock, log level, properties read and written, metrics (counter, gauge,
// histogram, get) — also in /stats —, foreign functions (NOT_FOUND), timers, shared queues, and a
// gRPC call to a real @grpc/grpc-js server that holds the request until proxy_on_grpc_close.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';

const seen: http.IncomingHttpHeaders[] = [];
const app = http.createServer((req, res) => {
  seen.push(req.headers);
  res.end('ok');
});
await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
const appPort = (app.address() as net.AddressInfo).port;

const grpcMetadata: string[] = [];
const def = protoLoader.loadSync(fileURLToPath(new URL('../../../fixtures/hello.proto', import.meta.url)));
const pkg = grpc.loadPackageDefinition(def) as unknown as { legate: { test: { Greeter: grpc.ServiceClientConstructor } } };
const server = new grpc.Server();
server.addService(pkg.legate.test.Greeter.service, {
  SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<{ message: string }>) => {
    grpcMetadata.push(String(call.metadata.get('x-probe')[0] ?? ''));
    cb(null, { message: `hi ${call.request.name}` });
  },
});
const grpcPort = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

let legate: Legate | undefined;
after(async () => {
  await legate?.stop();
  app.close();
  server.forceShutdown();
});

async function start(): Promise<number> {
  const b = wasmBootstrap([{ name: 'probe', rootId: 'probe', file: examplePlugin('probe'), configuration: 'probe' }], { app: appPort, grpc: grpcPort });
  const clusters = (b.static_resources as { clusters: Array<Record<string, unknown>> }).clusters;
  clusters[1]!.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
  };
  b.node = { id: 'probe-node', cluster: 'probe-cluster' };
  legate = await startLegate(b);
  return legate.listenerPort('ingress');
}

test('header maps, clock, log level, properties, metrics, foreign functions, timers and queues', { timeout: 60_000 }, async () => {
  const port = await start();
  await fetch(`http://127.0.0.1:${port}/warm`); // the VM starts on the first stream; its tick timer then runs
  await new Promise((r) => setTimeout(r, 300));
  const r = await fetch(`http://127.0.0.1:${port}/probe`, { headers: { 'x-replace': 'original', 'x-remove': 'gone' } });
  assert.equal(r.status, 200);
  const upstream = seen.at(-1)!;
  assert.equal(upstream['x-replace'], 'replaced');
  assert.equal(upstream['x-remove'], undefined);
  const probe = Object.fromEntries((r.headers.get('x-probe') ?? '').split(';').map((kv) => kv.split('=') as [string, string]));
  assert.ok(Number(probe.pairs) >= 4, `pairs ${probe.pairs}`);
  assert.equal(probe.clock, 'ok');
  assert.equal(probe.loglevel, '2', 'info');
  assert.equal(probe.props, '/probe|probe|v1|probe-node');
  assert.equal(probe.counter, '2');
  assert.equal(probe.foreign, '1', 'NOT_FOUND');
  assert.equal(r.headers.get('x-probe-ticks'), 'yes');
  assert.equal(r.headers.get('x-probe-queue'), 'tick-1');
  const s = await legate!.stats();
  assert.equal(s['wasmcustom.probe_requests'], 2);
  assert.equal(s['wasmcustom.probe_gauge'], 42);
});

test('a gRPC call from the plugin reaches a real gRPC server with its metadata; the reply and status come back', { timeout: 60_000 }, async () => {
  const port = await legate!.listenerPort('ingress');
  const r = await fetch(`http://127.0.0.1:${port}/grpc`);
  assert.equal(r.status, 200);
  // status OK (0), the server's initial metadata seen (count), the decoded HelloReply.
  assert.match(r.headers.get('x-probe-grpc') ?? '', /^0:\d+:hi probe$/);
  assert.equal(grpcMetadata.at(-1), '1');
});
