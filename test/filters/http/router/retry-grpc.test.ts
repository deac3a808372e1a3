// gRPC retries through the router: a real @grpc/grpc-js server answers the first call of each
// message with UNAVAILABLE (a trailers-only response), the route retries on `unavailable`, and a real
// grpc-js client sees OK. A status in trailers after a response body is never retried (as Envoy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { clusterYaml } from './harness.ts';
import { startRetryProxy } from './retry-harness.ts';

interface EchoRequest {
  message?: string;
}
interface EchoReply {
  message: string;
}
type UnaryCb = (err: grpc.ServiceError | null, reply?: EchoReply) => void;
interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: UnaryCb): grpc.ClientUnaryCall;
}

const PROTO = fileURLToPath(new URL('../../../e2e/fixtures/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as { legate: { e2e: { Echo: grpc.ServiceClientConstructor } } };

test('gRPC: UNAVAILABLE in a trailers-only response is retried to OK; a status after a body is not', { timeout: 20_000 }, async () => {
  const calls = new Map<string, number>();
  const server = new grpc.Server();
  server.addService(pkg.legate.e2e.Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const m = call.request.message ?? '';
      const n = (calls.get(m) ?? 0) + 1;
      calls.set(m, n);
      // Headers sent first: the status arrives in trailers after them, which Envoy does not retry.
      if (m === 'late') call.sendMetadata(new grpc.Metadata());
      if (n === 1 || m === 'late') return cb(Object.assign(new Error('try again'), { code: grpc.status.UNAVAILABLE, details: 'try again', metadata: new grpc.Metadata() }) as grpc.ServiceError);
      cb(null, { message: `${m} #${n}` });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const p = await startRetryProxy(`    - { match: { prefix: / }, route: { cluster: grpc, retry_policy: { retry_on: "unavailable,cancelled", num_retries: 2 } } }`, [clusterYaml('grpc', port, true)]);
  const client = new pkg.legate.e2e.Echo(`127.0.0.1:${p.port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  const unary = (message: string) =>
    new Promise<{ err: grpc.ServiceError | null; reply: EchoReply | undefined }>((resolve) => client.Unary({ message }, new grpc.Metadata(), {}, (err, reply) => resolve({ err, reply })));
  try {
    const ok = await unary('hello');
    assert.equal(ok.err, null);
    assert.equal(ok.reply?.message, 'hello #2');
    assert.equal(calls.get('hello'), 2);
    assert.equal(p.counter('cluster.grpc.upstream_rq_retry'), 1);
    assert.equal(p.counter('cluster.grpc.upstream_rq_retry_success'), 1);

    const late = await unary('late');
    assert.equal(late.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(calls.get('late'), 1);
    assert.equal(p.counter('cluster.grpc.upstream_rq_retry'), 1);
  } finally {
    client.close();
    await p.close();
    server.forceShutdown();
  }
});
