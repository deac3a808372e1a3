// The gRPC statistics filter behind the real connection manager and router, between a real
// @grpc/grpc-js client and server (legate.e2e.Echo): calls and statuses counted per cluster, or per
// service and method (stats_for_all_methods, individual_method_stats_allowlist, dots replaced),
// request and response messages counted across streaming calls, trailers-only errors included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startProxy, type Proxy } from '../router/proxy-harness.ts';
import { clusterYaml } from '../router/harness.ts';
import { FrameCounter } from '../../../../src/filters/http/grpc_stats/frame-counter.ts';

const TIMEOUT = { timeout: 20_000 };

interface EchoRequest {
  message?: string;
  fail_code?: number;
}
interface EchoReply {
  message: string;
}
type Cb = (err: grpc.ServiceError | null, reply?: EchoReply) => void;
interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, cb: Cb): grpc.ClientUnaryCall;
  ClientStream(cb: Cb): grpc.ClientWritableStream<EchoRequest>;
  ServerStream(req: EchoRequest): grpc.ClientReadableStream<EchoReply>;
}

const PROTO = fileURLToPath(new URL('../../../e2e/fixtures/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as { legate: { e2e: { Echo: grpc.ServiceClientConstructor } } };

async function echoServer(): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(pkg.legate.e2e.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const code = call.request.fail_code ?? 0;
      if (code) return cb(Object.assign(new Error('failed'), { code, details: 'failed', metadata: new grpc.Metadata() }) as grpc.ServiceError);
      cb(null, { message: call.request.message ?? '' });
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      let n = 0;
      call.on('data', () => n++);
      call.on('end', () => cb(null, { message: String(n) }));
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      for (let i = 0; i < 4; i++) call.write({ message: String(i) });
      call.end();
    },
    Bidi() {},
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, close: () => server.forceShutdown() };
}

function hcm(filterConfig: Record<string, unknown>): string {
  return stringify({
    stat_prefix: 'ingress_http',
    codec_type: 'AUTO',
    route_config: { name: 'local', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'grpc' } }] }] },
    http_filters: [
      { name: 'envoy.filters.http.grpc_stats', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig', ...filterConfig } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
    ],
  });
}

async function withCalls(filterConfig: Record<string, unknown>, run: (p: Proxy, c: EchoClient) => Promise<void>): Promise<void> {
  const server = await echoServer();
  const proxy = await startProxy(hcm(filterConfig), [clusterYaml('grpc', server.port, true)]);
  const client = new pkg.legate.e2e.Echo(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  try {
    await run(proxy, client);
  } finally {
    client.close();
    await proxy.close();
    server.close();
  }
}

const unary = (c: EchoClient, req: EchoRequest): Promise<grpc.ServiceError | null> => new Promise((r) => c.Unary(req, (err) => r(err)));
const clientStream = (c: EchoClient, n: number): Promise<string | undefined> =>
  new Promise((r) => {
    const s = c.ClientStream((_e, reply) => r(reply?.message));
    for (let i = 0; i < n; i++) s.write({ message: String(i) });
    s.end();
  });
const serverStream = (c: EchoClient): Promise<number> =>
  new Promise((r) => {
    let n = 0;
    const s = c.ServerStream({ message: 'x' });
    s.on('data', () => n++);
    s.on('end', () => r(n));
    s.on('error', () => r(-1));
  });

test('default: every call counted under cluster.<name>.grpc., with statuses and messages both ways', TIMEOUT, async () => {
  await withCalls({ emit_filter_state: true }, async (p, c) => {
    assert.equal(await unary(c, { message: 'hi' }), null);
    assert.equal((await unary(c, { fail_code: grpc.status.NOT_FOUND }))?.code, grpc.status.NOT_FOUND);
    assert.equal(await clientStream(c, 3), '3');
    assert.equal(await serverStream(c), 4);
    const g = (n: string): number => p.counter(`cluster.grpc.grpc.${n}`);
    assert.equal(g('total'), 4);
    assert.equal(g('success'), 3);
    assert.equal(g('failure'), 1);
    assert.equal(g('0'), 3);
    assert.equal(g('5'), 1, 'the trailers-only NOT_FOUND');
    assert.equal(g('request_message_count'), 1 + 1 + 3 + 1);
    assert.equal(g('response_message_count'), 1 + 0 + 1 + 4);
    assert.equal(p.counter('cluster.grpc.grpc.legate.e2e.Echo.Unary.total'), 0, 'no per-method stats by default');
  });
});

test('stats_for_all_methods (dots replaced) and an allowlist give methods their own stats', TIMEOUT, async () => {
  await withCalls({ stats_for_all_methods: true, replace_dots_in_grpc_service_name: true }, async (p, c) => {
    await unary(c, { message: 'a' });
    await clientStream(c, 2);
    assert.equal(p.counter('cluster.grpc.grpc.legate_e2e_Echo.Unary.success'), 1);
    assert.equal(p.counter('cluster.grpc.grpc.legate_e2e_Echo.ClientStream.request_message_count'), 2);
    assert.equal(p.counter('cluster.grpc.grpc.total'), 0);
  });
  await withCalls({ individual_method_stats_allowlist: { services: [{ name: 'legate.e2e.Echo', method_names: ['Unary'] }] } }, async (p, c) => {
    await unary(c, { message: 'a' });
    assert.equal(await serverStream(c), 4);
    assert.equal(p.counter('cluster.grpc.grpc.legate.e2e.Echo.Unary.total'), 1);
    assert.equal(p.counter('cluster.grpc.grpc.legate.e2e.Echo.Unary.response_message_count'), 1);
    assert.equal(p.counter('cluster.grpc.grpc.total'), 1, 'ServerStream is not in the allowlist');
    assert.equal(p.counter('cluster.grpc.grpc.response_message_count'), 4);
  });
});

test('FrameCounter: messages split at every byte boundary are counted once each', () => {
  const frame = (n: number): Buffer => Buffer.concat([Buffer.from([0, 0, 0, 0, n]), Buffer.alloc(n, 7)]);
  const body = Buffer.concat([frame(3), frame(0), frame(300 % 256), frame(1)]);
  for (let cut = 1; cut < body.length; cut++) {
    const c = new FrameCounter();
    c.inspect(body.subarray(0, cut));
    c.inspect(body.subarray(cut));
    assert.equal(c.count, 4, `cut at ${cut}`);
  }
  const one = new FrameCounter();
  for (const b of body) one.inspect(Buffer.from([b]));
  assert.equal(one.count, 4);
});

test('emit_filter_state: the message counts reach istio.stats (istio_request_messages_total / istio_response_messages_total)', TIMEOUT, async () => {
  const server = await echoServer();
  const yaml = stringify({
    stat_prefix: 'ingress_http',
    codec_type: 'AUTO',
    route_config: { name: 'local', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'grpc' } }] }] },
    http_filters: [
      { name: 'envoy.filters.http.grpc_stats', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig', emit_filter_state: true } },
      { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig' } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
    ],
  });
  const proxy = await startProxy(yaml, [clusterYaml('grpc', server.port, true)]);
  const client = new pkg.legate.e2e.Echo(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  try {
    assert.equal(await clientStream(client, 3), '3');
    assert.equal(await serverStream(client), 4);
    const sum = (prefix: string): number => {
      const snap = proxy.stats.snapshot();
      return Object.entries(snap.counters).filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
    };
    // The streams end on the proxy a moment after the client sees them end.
    for (let i = 0; i < 50 && sum('istiocustom.istio_requests_total.') < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(sum('istiocustom.istio_requests_total.reporter.source.'), 2);
    assert.equal(sum('istiocustom.istio_request_messages_total.'), 3 + 1);
    assert.equal(sum('istiocustom.istio_response_messages_total.'), 1 + 4);
    const names = Object.keys(proxy.stats.snapshot().counters).filter((k) => k.startsWith('istiocustom.istio_requests_total.'));
    assert.ok(names.every((n) => n.includes('.request_protocol.grpc.') && n.includes('.grpc_response_status.0.')), names.join('\n'));
  } finally {
    client.close();
    await proxy.close();
    server.close();
  }
});
