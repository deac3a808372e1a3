// The gRPC-Web filter behind the real connection manager and router, in front of a real
// @grpc/grpc-js server (h2c): a gRPC-Web client's requests (binary and base64 text, over HTTP/1.1
// with undici and over h2c with node:http2) reach it as gRPC; its replies, streams, errors and
// trailers come back in gRPC-Web framing, and a non-gRPC upstream's 503 becomes a grpc-status.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { startProxy, type Proxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';

/** Messages are raw bytes: the service (de)serialises nothing, so frames carry exactly what was sent. */
const raw = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const SERVICE: grpc.ServiceDefinition = {
  Say: { path: '/test.Echo/Say', requestStream: false, responseStream: false, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
  Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize },
};

let server: grpc.Server;
let plain: http.Server;
let proxy: Proxy;
/** What the gRPC server saw of each call's request headers. */
const seen: Array<Record<string, string>> = [];

before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    Say(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      seen.push(Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)])));
      const text = call.request.toString();
      if (text === 'missing') return cb(Object.assign(new Error('no such thing'), { code: grpc.status.NOT_FOUND, details: 'no such thing: "missing"' }));
      const md = new grpc.Metadata();
      md.set('x-trailer', 'bye');
      cb(null, Buffer.from(`hello ${text}`), md);
    },
    Count(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(`#${i}`));
      call.end();
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  plain = http.createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/html' });
    res.end('<h1>maintenance</h1> back at 5%');
  });
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  proxy = await startProxy(
    filterHcm(
      { name: 'envoy.filters.http.grpc_web', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb' } },
      { routes: [{ match: { prefix: '/plain.' }, route: { cluster: 'plain' } }, { match: { prefix: '/' }, route: { cluster: 'grpc' } }] },
    ),
    [oneHostCluster('grpc', grpcPort, true), oneHostCluster('plain', (plain.address() as AddressInfo).port)],
  );
});

after(async () => {
  await proxy?.close();
  plain?.close();
  await new Promise<void>((r) => (server ? server.tryShutdown(() => r()) : r()));
});

function frame(message: string | Buffer, flags = 0): Buffer {
  const body = Buffer.from(message);
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

interface WebFrame {
  readonly trailers: boolean;
  readonly data: Buffer;
}

function parseFrames(body: Buffer): WebFrame[] {
  const out: WebFrame[] = [];
  for (let i = 0; i < body.length; ) {
    const len = body.readUInt32BE(i + 1);
    out.push({ trailers: (body[i]! & 0x80) !== 0, data: body.subarray(i + 5, i + 5 + len) });
    i += 5 + len;
  }
  return out;
}

function trailersOf(frames: readonly WebFrame[]): Record<string, string> {
  const t = frames.find((f) => f.trailers);
  assert.ok(t, 'a trailers frame ends the body');
  return Object.fromEntries(t.data.toString().trim().split('\r\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

/** A gRPC-Web call over HTTP/1.1 (undici), as a browser's fetch makes it. */
async function webCall(path: string, body: Buffer | string, contentType = 'application/grpc-web+proto', accept?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const r = await request(`http://127.0.0.1:${proxy.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, 'x-grpc-web': '1', 'x-user-agent': 'grpc-web-javascript/0.1', ...(accept ? { accept } : {}) },
    body,
  });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

test('binary gRPC-Web over HTTP/1.1: the upstream gets gRPC; the reply, then its trailers in a trailers frame', { timeout: 20_000 }, async () => {
  const r = await webCall('/test.Echo/Say', frame('web'));
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(r.headers['grpc-status'], undefined, 'grpc-status comes in the body');
  const frames = parseFrames(r.body);
  assert.equal(frames.length, 2);
  assert.equal(frames[0]!.data.toString(), 'hello web');
  assert.deepEqual(trailersOf(frames), { 'grpc-status': '0', 'grpc-message': 'OK', 'x-trailer': 'bye' });
  const last = seen.at(-1)!;
  assert.equal(last['x-grpc-web'], '1', 'other request headers go on as they were');
  assert.equal(proxy.counter('cluster.grpc.grpc-web.test.Echo.Say.success'), 1);
  assert.equal(proxy.counter('cluster.grpc.grpc-web.test.Echo.Say.total'), 1);
});

test('text (base64) gRPC-Web: the request decoded, every response frame and the trailers encoded', { timeout: 20_000 }, async () => {
  const req = frame('text').toString('base64');
  const r = await webCall('/test.Echo/Count', Buffer.from(frame('3').toString('base64')), 'application/grpc-web-text', 'application/grpc-web-text');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/grpc-web-text+proto');
  // Each frame is base64 on its own (with its padding): decode them one by one.
  const pieces = r.body.toString('latin1').match(/[A-Za-z0-9+/]+={0,2}/g) ?? [];
  const frames = pieces.flatMap((p) => parseFrames(Buffer.from(p, 'base64')));
  assert.deepEqual(frames.filter((f) => !f.trailers).map((f) => f.data.toString()), ['#1', '#2', '#3']);
  assert.equal(trailersOf(frames)['grpc-status'], '0');
  const unary = await webCall('/test.Echo/Say', Buffer.from(req), 'application/grpc-web-text+proto');
  assert.equal(parseFrames(unary.body)[0]!.data.toString(), 'hello text', 'a text request may ask for a binary reply');
});

test('errors: a trailers-only gRPC error keeps its status in the headers; a non-gRPC 503 becomes UNAVAILABLE with its body as grpc-message; bad base64 is a local 400, sent as gRPC INTERNAL', { timeout: 20_000 }, async () => {
  // grpc-js answers an error with headers only (trailers-only): gRPC-Web clients read those.
  const nf = await webCall('/test.Echo/Say', frame('missing'));
  assert.equal(nf.status, 200);
  assert.equal(nf.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(nf.headers['grpc-status'], '5');
  assert.equal(decodeURIComponent(String(nf.headers['grpc-message'])), 'no such thing: "missing"');
  assert.equal(nf.body.length, 0);
  assert.equal(proxy.counter('cluster.grpc.grpc-web.test.Echo.Say.failure'), 1);
  assert.equal(proxy.counter('cluster.grpc.grpc-web.test.Echo.Say.5'), 1);

  const down = await webCall('/plain.Svc/Call', frame('x'));
  assert.equal(down.status, 503);
  assert.equal(down.headers['grpc-status'], '14');
  assert.equal(down.headers['grpc-message'], '<h1>maintenance</h1> back at 5%25');
  assert.equal(down.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(down.body.length, 0);

  // Bad base64: Envoy's 400 local reply, which goes out as gRPC (the request is gRPC by then): INTERNAL.
  const bad = await webCall('/test.Echo/Say', 'not base64!', 'application/grpc-web-text');
  assert.equal(bad.status, 200);
  assert.equal(bad.headers['content-type'], 'application/grpc-web+proto');
  assert.equal(bad.headers['grpc-status'], '13');
  assert.equal(bad.headers['grpc-message'], 'Bad gRPC-web request, invalid base64 data.');
  const short = await webCall('/test.Echo/Say', 'AAAA' + 'AA', 'application/grpc-web-text');
  assert.equal(short.headers['grpc-status'], '13', 'a body that does not end on a whole base64 group');
  assert.equal(seen.filter((h) => h['x-grpc-web'] === '1').length, 3, 'neither bad request reached the server');
});

test('over h2c, and requests that are not gRPC-Web pass untouched', { timeout: 20_000 }, async () => {
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const st = s.request({ ':method': 'POST', ':path': '/test.Echo/Say', 'content-type': 'application/grpc-web+proto' });
    st.end(frame('h2'));
    const [headers] = (await once(st, 'response')) as [http2.IncomingHttpHeaders];
    const chunks: Buffer[] = [];
    for await (const c of st) chunks.push(c as Buffer);
    assert.equal(headers['content-type'], 'application/grpc-web+proto');
    const frames = parseFrames(Buffer.concat(chunks));
    assert.equal(frames[0]!.data.toString(), 'hello h2');
    assert.equal(trailersOf(frames)['grpc-status'], '0');
  } finally {
    s.close();
  }
  // A plain request to the same route reaches the HTTP/1.1 upstream as it was sent.
  const r = await request(`http://127.0.0.1:${proxy.port}/plain.page`, { headers: { 'content-type': 'text/plain' } });
  assert.equal(r.statusCode, 503);
  assert.equal(r.headers['grpc-status'], undefined);
  assert.equal(await r.body.text(), '<h1>maintenance</h1> back at 5%');
});
