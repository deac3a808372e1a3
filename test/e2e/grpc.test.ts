// gRPC through legate's connection manager and router (config from YAML, real sockets): a real
// @grpc/grpc-js server upstream (h2c, cluster with explicit HTTP/2) and a real @grpc/grpc-js client. All four call kinds, metadata and
// trailers, error statuses, deadlines, 4 MiB messages, and the cluster stats they move.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startProxy, ROUTER_FILTER, type Proxy } from '../filters/http/router/proxy-harness.ts';
import { clusterYaml } from '../filters/http/router/harness.ts';

interface EchoRequest {
  message?: string;
  count?: number;
  sleep_ms?: number;
  fail_code?: number;
  payload?: Buffer;
  reply_bytes?: number;
}
interface EchoReply {
  message: string;
  index: number;
  payload: Buffer;
}

type UnaryCb = (err: grpc.ServiceError | null, reply?: EchoReply) => void;
interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: UnaryCb): grpc.ClientUnaryCall;
  ServerStream(req: EchoRequest, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: UnaryCb): grpc.ClientWritableStream<EchoRequest>;
  Bidi(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>;
}

const PROTO = fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url));
const MAX_MSG = 8 * 1024 * 1024; // bytes; the 4 MiB messages need more than grpc-js's 4 MiB default
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as {
  legate: { e2e: { Echo: grpc.ServiceClientConstructor } };
};
const Echo = pkg.legate.e2e.Echo;

let server: grpc.Server;
let legate: Proxy;
let client: EchoClient;
/** Calls the upstream saw cancelled (the downstream went away). */
let cancelled = 0;
/** For calls that sleep: the deadline the upstream saw, ms from arrival (Infinity when none). */
const deadlines: number[] = [];

function fail(code: number, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}

function trailerMd(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-trailer', 'bye');
  return md;
}

const impl: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
    const req = call.request;
    call.on('cancelled', () => cancelled++);
    const md = new grpc.Metadata();
    md.set('x-echo-meta', String(call.metadata.get('x-client-meta')[0] ?? ''));
    // Early response headers only when answering at once, so a timed-out call has no response started.
    if (!req.sleep_ms) call.sendMetadata(md);
    else deadlines.push(Number(call.getDeadline()) - Date.now());
    setTimeout(() => {
      if (call.cancelled) return;
      if (req.fail_code) return cb(fail(req.fail_code, `failed: ${req.message}`));
      if (req.sleep_ms) call.sendMetadata(md);
      cb(null, { message: req.message ?? '', index: req.payload?.length ?? 0, payload: Buffer.alloc(req.reply_bytes ?? 0, 7) }, trailerMd());
    }, req.sleep_ms ?? 0);
  },
  ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
    const n = call.request.count ?? 0;
    for (let i = 0; i < n; i++) call.write({ message: call.request.message ?? '', index: i, payload: Buffer.alloc(0) });
    if (call.request.fail_code) call.emit('error', fail(call.request.fail_code, 'stream failed'));
    else call.end(trailerMd());
  },
  ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
    const parts: string[] = [];
    call.on('data', (r: EchoRequest) => parts.push(r.message ?? ''));
    call.on('end', () => cb(null, { message: parts.join(','), index: parts.length, payload: Buffer.alloc(0) }, trailerMd()));
  },
  Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
    let i = 0;
    call.on('data', (r: EchoRequest) => call.write({ message: `echo:${r.message}`, index: i++, payload: Buffer.alloc(0) }));
    call.on('end', () => call.end());
  },
};

before(async () => {
  server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MSG, 'grpc.max_send_message_length': MAX_MSG });
  server.addService(Echo.service, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  legate = await startProxy(
    `
stat_prefix: ingress_http
codec_type: AUTO
route_config:
  name: local
  virtual_hosts:
  - name: grpc
    domains: ["*"]
    routes:
    # grpc-timeout is honoured (capped at 100 ms) only on this route.
    - match: { prefix: /, headers: [{ name: x-route, string_match: { exact: capped } }] }
      route: { cluster: grpc, max_stream_duration: { grpc_timeout_header_max: 0.1s } }
    - match: { prefix: /, headers: [{ name: x-route, string_match: { exact: none } }] }
      direct_response: { status: 404 }
    - match: { prefix: / }
      route: { cluster: grpc }
${ROUTER_FILTER}`,
    [clusterYaml('grpc', port, true)],
  );
  const lport = legate.port;
  client = new Echo(`127.0.0.1:${lport}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MSG,
    'grpc.max_send_message_length': MAX_MSG,
  }) as unknown as EchoClient;
});

after(async () => {
  client?.close();
  await legate?.close();
  await new Promise<void>((r) => (server ? server.tryShutdown(() => r()) : r()));
});

function unary(req: EchoRequest, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ err: grpc.ServiceError | null; reply?: EchoReply; headers?: grpc.Metadata; status?: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let status: grpc.StatusObject | undefined;
    let result: { err: grpc.ServiceError | null; reply?: EchoReply } | undefined;
    const done = (): void => {
      if (result && status) resolve({ ...result, headers, status });
    };
    const call = client.Unary(req, md, opts, (err, reply) => {
      result = { err, reply };
      done();
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      done();
    });
  });
}

test('unary with request/response metadata and trailers', { timeout: 20_000 }, async () => {
  const md = new grpc.Metadata();
  md.set('x-client-meta', 'hello-meta');
  const r = await unary({ message: 'hi' }, md);
  assert.equal(r.err, null);
  assert.equal(r.reply?.message, 'hi');
  assert.equal(r.headers?.get('x-echo-meta')[0], 'hello-meta');
  assert.ok(r.headers?.get('x-envoy-upstream-service-time')[0] !== undefined, 'router adds x-envoy-upstream-service-time');
  assert.equal(r.status?.code, grpc.status.OK);
  assert.equal(r.status?.metadata.get('x-trailer')[0], 'bye');
});

test('server streaming', { timeout: 20_000 }, async () => {
  const got: EchoReply[] = [];
  const call = client.ServerStream({ message: 'm', count: 50 });
  const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
    call.on('data', (r: EchoReply) => got.push(r));
    call.on('status', resolve);
    call.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.OK ? undefined : reject(e)));
  });
  assert.equal(status.code, grpc.status.OK);
  assert.equal(status.metadata.get('x-trailer')[0], 'bye');
  assert.deepEqual(
    got.map((r) => r.index),
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('client streaming', { timeout: 20_000 }, async () => {
  const reply = await new Promise<EchoReply>((resolve, reject) => {
    const call = client.ClientStream(new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!)));
    for (const m of ['a', 'b', 'c', 'd']) call.write({ message: m });
    call.end();
  });
  assert.equal(reply.message, 'a,b,c,d');
  assert.equal(reply.index, 4);
});

test('bidi streaming, one reply per message, in order', { timeout: 20_000 }, async () => {
  const call = client.Bidi();
  const got: string[] = [];
  const done = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  // Ping-pong: each reply arrives before the next message goes out.
  for (let i = 0; i < 10; i++) {
    const next = new Promise<EchoReply>((r) => call.once('data', r));
    call.write({ message: `m${i}` });
    got.push((await next).message);
  }
  call.end();
  assert.equal((await done).code, grpc.status.OK);
  assert.deepEqual(
    got,
    Array.from({ length: 10 }, (_, i) => `echo:m${i}`),
  );
});

test('non-OK statuses reach the client with their message', { timeout: 20_000 }, async () => {
  const r = await unary({ message: 'missing-thing', fail_code: grpc.status.NOT_FOUND });
  assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  assert.equal(r.err?.details, 'failed: missing-thing');
  const p = await unary({ message: 'x', fail_code: grpc.status.PERMISSION_DENIED });
  assert.equal(p.err?.code, grpc.status.PERMISSION_DENIED);
  // A streaming call that fails after messages.
  const call = client.ServerStream({ message: 'm', count: 3, fail_code: grpc.status.RESOURCE_EXHAUSTED });
  let n = 0;
  call.on('data', () => n++);
  const err = await new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.equal(err.details, 'stream failed');
  assert.equal(n, 3);
});

test('client deadline: DEADLINE_EXCEEDED, and the upstream call is cancelled', { timeout: 20_000 }, async () => {
  const before = cancelled;
  const t0 = performance.now();
  const r = await unary({ message: 'slow', sleep_ms: 2000 }, new grpc.Metadata(), { deadline: Date.now() + 200 });
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(performance.now() - t0 < 1500);
  // The client's RST_STREAM reaches legate, which resets the upstream stream.
  const until = Date.now() + 3000;
  while (cancelled === before && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
  assert.equal(cancelled, before + 1);
});

// Trailers-only gRPC answers (local replies, upstream DEADLINE_EXCEEDED) must arrive as one HEADERS
// frame with END_STREAM: regression tests for the HTTP/2 codec sending HEADERS then an empty DATA.

test('grpc-timeout honoured via max_stream_duration.grpc_timeout_header_max: capped at 100 ms', { timeout: 20_000}, async () => {
  const s0 = legate.stats.snapshot().counters;
  const md = new grpc.Metadata();
  md.set('x-route', 'capped');
  const t0 = performance.now();
  deadlines.length = 0;
  const r = await unary({ message: 'slow', sleep_ms: 2000 }, md, { deadline: Date.now() + 5000 });
  const dt = performance.now() - t0;
  // legate's stream duration timer (a local DEADLINE_EXCEEDED) and the upstream's own deadline
  // (the rewritten grpc-timeout: 100m) expire together; either way the call ends at ~100 ms with
  // DEADLINE_EXCEEDED, not at 2 s or 5 s.
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `code ${r.err?.code}: ${r.err?.details}`);
  assert.ok(dt < 1500, `answered after ${dt} ms`);
  assert.equal(deadlines.length, 1);
  assert.ok(deadlines[0]! <= 150, `the upstream saw grpc-timeout rewritten to the capped value (${deadlines[0]} ms left)`);
  const s1 = legate.stats.snapshot().counters;
  assert.equal((s1['cluster.grpc.upstream_rq_timeout'] ?? 0) - (s0['cluster.grpc.upstream_rq_timeout'] ?? 0), 0, 'the router has no timeout on a route with max_stream_duration');
});

test('a gRPC local reply (direct_response 404) arrives as a gRPC status', { timeout: 20_000}, async () => {
  const md = new grpc.Metadata();
  md.set('x-route', 'none');
  const r = await unary({ message: 'x' }, md);
  // Envoy maps a local 404 to UNIMPLEMENTED.
  assert.equal(r.err?.code, grpc.status.UNIMPLEMENTED, `code ${r.err?.code}: ${r.err?.details}`);
});

test('4 MiB messages each way', { timeout: 30_000 }, async () => {
  const payload = Buffer.alloc(4 * 1024 * 1024, 3);
  const r = await unary({ message: 'big', payload, reply_bytes: 4 * 1024 * 1024 });
  assert.equal(r.err, null);
  assert.equal(r.reply?.index, payload.length, 'the server got all 4 MiB');
  assert.equal(r.reply?.payload.length, 4 * 1024 * 1024);
  assert.ok(r.reply!.payload.every((b) => b === 7));
});

test('cluster stats moved', { timeout: 20_000 }, async () => {
  const s = { ...legate.stats.snapshot().counters, ...legate.stats.snapshot().gauges };
  assert.ok((s['cluster.grpc.upstream_rq_total'] ?? 0) >= 8, `upstream_rq_total ${s['cluster.grpc.upstream_rq_total']}`);
  assert.ok((s['cluster.grpc.upstream_rq_200'] ?? 0) >= 7, `upstream_rq_200 ${s['cluster.grpc.upstream_rq_200']}`);
  assert.equal(s['cluster.grpc.upstream_cx_total'], 1, 'one HTTP/2 connection carries every call');
  assert.equal(s['cluster.grpc.upstream_rq_active'], 0);
});
