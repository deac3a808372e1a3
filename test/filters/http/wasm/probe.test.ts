// Each Proxy-Wasm host function group, through a real legate, with what the probe plugin
// (test/fixtures/wasm/probe) observed reported back in response headers: header maps (replace,
// remove, pairs), clock, log level, properties read and written, metrics (counter, gauge,
// histogram, get) — also in /stats —, foreign functions (NOT_FOUND), timers, shared queues, and a
// gRPC call to a real @grpc/grpc-js server that holds the request until proxy_on_grpc_close;
// connection and upstream properties over plaintext and mTLS; a local reply from the response path.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin, wasmBootstrap } from '../../../helpers/wasm.ts';
import { CLIENT_ID, testPki } from '../../../helpers/certs.ts';

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
    // An error before any response metadata: grpc-js answers trailers-only, grpc-message percent-encoded.
    if (call.request.name === 'fail!') return cb({ code: grpc.status.NOT_FOUND, details: 'no such name: 100% sure' });
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
  assert.equal(r.headers.get('x-probe-grpc-message'), 'OK', 'grpc-js sends grpc-message: OK');
  assert.equal(grpcMetadata.at(-1), '1');
  // A trailers-only error: NOT_FOUND (5), no message, and grpc-message decoded ('%' came as %25).
  const f = await fetch(`http://127.0.0.1:${port}/grpc-fail`);
  assert.equal(f.status, 200);
  assert.equal(f.headers.get('x-probe-grpc'), '5:0:');
  assert.equal(f.headers.get('x-probe-grpc-message'), 'no such name: 100% sure');
});

test('a local reply sent from onResponseHeaders replaces the upstream response (status, body, headers), over HTTP/1.1 and h2c', { timeout: 60_000 }, async () => {
  const port = legate ? await legate.listenerPort('ingress') : await start();
  const before = seen.length;
  const r = await fetch(`http://127.0.0.1:${port}/deny-late`);
  assert.equal(r.status, 403);
  assert.equal(await r.text(), 'denied after the upstream answered');
  assert.equal(r.headers.get('x-late'), 'yes');
  assert.equal(seen.length, before + 1, 'the upstream had answered');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const h2 = await new Promise<{ status: number; late: unknown; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/deny-late' });
      let status = 0;
      let late: unknown;
      let body = '';
      s.on('response', (h) => {
        status = Number(h[':status']);
        late = h['x-late'];
      });
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.on('end', () => resolve({ status, late, body }));
      s.on('error', reject);
      s.end();
    });
    assert.deepEqual(h2, { status: 403, late: 'yes', body: 'denied after the upstream answered' });
  } finally {
    session.close();
  }
  // The connection and the VM go on serving.
  assert.equal((await fetch(`http://127.0.0.1:${port}/after`)).status, 200);
});

const PROPS = [
  'source.address', 'source.port', 'destination.address', 'destination.port', 'connection.id', 'connection.mtls', 'connection.tls_version',
  'connection.requested_server_name', 'connection.uri_san_peer_certificate', 'cluster_name', 'route_name', 'upstream.address', 'upstream.port',
  'plugin_root_id', 'node.id', 'no.such',
];

/** What the probe read for each of PROPS ("!1" is NOT_FOUND). */
function propsOf(header: string | string[] | undefined | null): Record<string, string> {
  return Object.fromEntries(String(header ?? '').split(';').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

test('connection and upstream properties (path segments NUL-separated, as SDKs send them): addresses, ports as 8-byte integers, names; over plaintext and over mTLS with SNI', { timeout: 60_000 }, async (t) => {
  // Plaintext, on the listener the tests above started (or a new one when run alone).
  const port = legate ? await legate.listenerPort('ingress') : await start();
  const plain = await new Promise<{ headers: http.IncomingHttpHeaders; local: number }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/props', headers: { 'x-probe-props': PROPS.join(',') }, agent: false }, (res) => {
      res.resume();
      resolve({ headers: res.headers, local: res.socket.localPort! });
    });
    req.on('error', reject);
  });
  const p = propsOf(plain.headers['x-probe-props']);
  assert.equal(p['source.address'], `127.0.0.1:${plain.local}`);
  assert.equal(p['source.port'], String(plain.local));
  assert.equal(p['destination.address'], `127.0.0.1:${port}`);
  assert.equal(p['destination.port'], String(port));
  assert.match(p['connection.id']!, /^\d+$/);
  assert.equal(p['connection.mtls'], 'false');
  assert.equal(p['connection.tls_version'], '!1', 'no TLS: NOT_FOUND');
  assert.equal(p['connection.uri_san_peer_certificate'], '!1');
  assert.equal(p['connection.requested_server_name'], '');
  assert.equal(p['cluster_name'], 'app');
  assert.equal(p['route_name'], '', 'an unnamed route');
  assert.equal(p['upstream.address'], `127.0.0.1:${appPort}`);
  assert.equal(p['upstream.port'], String(appPort));
  assert.equal(p['plugin_root_id'], 'probe');
  assert.equal(p['node.id'], 'probe-node');
  assert.equal(p['no.such'], '!1');

  // A second legate whose listener requires a client certificate; a named route.
  const pki = testPki();
  const b = wasmBootstrap([{ name: 'probe', rootId: 'probe', file: examplePlugin('probe'), configuration: 'probe' }], { app: appPort, grpc: grpcPort });
  const listener = (b.static_resources as { listeners: Array<{ filter_chains: Array<Record<string, unknown>> }> }).listeners[0]!;
  const chain = listener.filter_chains[0]!;
  chain.transport_socket = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { inline_string: pki.server.certPem }, private_key: { inline_string: pki.server.keyPem } }],
        validation_context: { trusted_ca: { inline_string: pki.ca.certPem } },
      },
    },
  };
  const hcm = (chain.filters as Array<{ typed_config: { route_config: { virtual_hosts: Array<{ routes: Array<Record<string, unknown>> }> } } }>)[0]!.typed_config;
  hcm.route_config.virtual_hosts[0]!.routes[0]!.name = 'to-app';
  b.node = { id: 'probe-node', cluster: 'probe-cluster' }; // the probe reads node.id on every request
  const tlsLegate = await startLegate(b);
  t.after(() => tlsLegate.stop());
  const tlsPort = await tlsLegate.listenerPort('ingress');
  const mtls = await new Promise<{ headers: http.IncomingHttpHeaders; local: number }>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem, path: '/props', headers: { 'x-probe-props': PROPS.join(',') }, agent: false }, (res) => {
      res.resume();
      resolve({ headers: res.headers, local: res.socket.localPort! });
    });
    req.on('error', reject);
  });
  const q = propsOf(mtls.headers['x-probe-props']);
  assert.equal(q['source.address'], `127.0.0.1:${mtls.local}`);
  assert.equal(q['destination.port'], String(tlsPort));
  assert.equal(q['connection.mtls'], 'true');
  assert.match(q['connection.tls_version']!, /^TLSv1\.[23]$/);
  assert.equal(q['connection.requested_server_name'], 'localhost');
  assert.equal(q['connection.uri_san_peer_certificate'], CLIENT_ID);
  assert.equal(q['route_name'], 'to-app');
  assert.equal(q['upstream.port'], String(appPort));
});
