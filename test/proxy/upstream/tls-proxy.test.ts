// Upstream TLS end to end in one process: a real @grpc/grpc-js client → legate's connection manager
// (h2c) → router → an HTTP/2 cluster over mTLS → a real @grpc/grpc-js server with TLS credentials
// checking legate's certificate; and tcp_proxy originating TLS to an echo server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';
import { startProxy, ROUTER_FILTER } from '../../filters/http/router/proxy-harness.ts';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { TcpProxy__Output } from '../../../src/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { newStreamInfo, type StreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { parseTcpProxy } from '../../../src/filters/network/tcp_proxy/config.ts';
import { TcpProxyFactory } from '../../../src/filters/network/tcp_proxy/filter.ts';
import { testRuntime } from '../../helpers/runtime-context.ts';
import { tlsClusterYaml, tlsEchoUpstream, upstreamTls } from './tls-upstreams.ts';

const TIMEOUT = { timeout: 30_000 };

interface EchoRequest {
  message?: string;
}
interface EchoReply {
  message: string;
}
interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, r?: EchoReply) => void): grpc.ClientUnaryCall;
}

const PROTO = fileURLToPath(new URL('../../e2e/fixtures/echo.proto', import.meta.url));
const Echo = (grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as { legate: { e2e: { Echo: grpc.ServiceClientConstructor } } }).legate.e2e.Echo;

const HCM = `
stat_prefix: ingress_http
codec_type: AUTO
route_config:
  name: local
  virtual_hosts:
  - name: grpc
    domains: ["*"]
    routes:
    - match: { prefix: / }
      route: { cluster: grpc_tls }
${ROUTER_FILTER}`;

test('gRPC unary over an mTLS HTTP/2 cluster: the grpc-js server sees legate’s SPIFFE certificate', TIMEOUT, async () => {
  const pki = testPki();
  const peers: string[] = [];
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      const alt = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '';
      peers.push(alt);
      cb(null, { message: `echo:${call.request.message ?? ''}` });
    },
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(pki.ca.certPem), [{ private_key: Buffer.from(pki.server.keyPem), cert_chain: Buffer.from(pki.server.certPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  const tls = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost', sans: [{ type: 'URI', value: SERVER_ID }] });
  const legate = await startProxy(HCM, [tlsClusterYaml('grpc_tls', [{ port }], { http2: true, transportSocket: tls })]);
  const client = new Echo(`127.0.0.1:${legate.port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
  try {
    for (const m of ['a', 'b']) {
      const reply = await new Promise<EchoReply>((resolve, reject) => client.Unary({ message: m }, new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r!))));
      assert.equal(reply.message, `echo:${m}`);
    }
    assert.equal(peers.length, 2);
    for (const p of peers) assert.ok(p.includes(`URI:${CLIENT_ID}`), p);
    assert.equal(legate.counter('cluster.grpc_tls.ssl.handshake'), 1);
    assert.equal(legate.counter('cluster.grpc_tls.upstream_cx_http2_total'), 1);
    assert.equal(legate.counter('cluster.grpc_tls.upstream_rq_200'), 2);
  } finally {
    client.close();
    await legate.close();
    server.forceShutdown();
  }
});

function tcpHarnessConfig(yaml: string): TcpProxy__Output {
  const d = decodeJson<TcpProxy__Output>('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', parseYaml(yaml));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  return d.value;
}

test('tcp_proxy to a TLS upstream: bytes echoed through TLS, upstream TLS on the StreamInfo', TIMEOUT, async () => {
  const pki = testPki();
  const up = await tlsEchoUpstream({ cert: pki.server, clientCa: pki.ca.certPem });
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parseYaml(tlsClusterYaml('echo', [{ port: up.port }], { transportSocket: upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost', sans: [{ type: 'URI', value: SERVER_ID }] }) })));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const cluster = parseCluster(d.value, 'c');
  if (!cluster.ok) throw new Error(formatErrors(cluster.errors));
  const tp = parseTcpProxy(tcpHarnessConfig('{ stat_prefix: echo_tls, cluster: echo }'), { path: 'tcp', clusterNames: undefined });
  if (!tp.ok) throw new Error(formatErrors(tp.errors));
  const stats = new StatsStore();
  const cm = createClusterManager([cluster.value], { stats, workerId: 0 });
  await cm.ready();
  const factory = new TcpProxyFactory(tp.value, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  const infos: StreamInfo[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const info = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: socket.remotePort ?? 0 }, downstreamLocal: { address: '127.0.0.1', port: socket.localPort ?? 0 }, connectionId: infos.length });
    infos.push(info);
    factory.takeOver(tp.value, { socket, streamInfo: info, bufferLimitBytes: 1024 * 1024, continueReading: () => socket.resume(), close: (m) => (m === 'flush' ? socket.end() : socket.destroy()) });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  try {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.on('error', () => {});
    await once(c, 'connect');
    const payload = Buffer.alloc(256 * 1024, 'x');
    c.write(payload);
    const got: Buffer[] = [];
    let n = 0;
    await new Promise<void>((resolve) =>
      c.on('data', (b: Buffer) => {
        got.push(b);
        n += b.length;
        if (n >= payload.length) resolve();
      }),
    );
    assert.ok(Buffer.concat(got).equals(payload));
    assert.equal(up.seen.length, 1);
    assert.deepEqual(up.seen[0]!.peerUris, [CLIENT_ID]);
    assert.equal(up.seen[0]!.sni, 'localhost');
    assert.equal(up.seen[0]!.alpn, false, 'no ALPN offered: none configured and TCP has no fallback');
    assert.deepEqual(infos[0]!.upstreamTls?.peerUriSans, [SERVER_ID]);
    c.destroy();
    assert.equal(stats.snapshot().counters['cluster.echo.ssl.handshake'], 1);
    assert.equal(stats.snapshot().counters['cluster.echo.upstream_cx_total'], 1);
  } finally {
    server.close();
    await factory.close();
    await cm.close();
    await up.close();
  }
});

test('tcp_proxy: a failed upstream handshake is a connect failure with the TLS error as the transport failure reason', TIMEOUT, async () => {
  const pki = testPki();
  const up = await tlsEchoUpstream({ cert: pki.server });
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parseYaml(tlsClusterYaml('echo', [{ port: up.port }], { transportSocket: upstreamTls({ ca: pki.otherCa.certPem }) })));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const cluster = parseCluster(d.value, 'c');
  if (!cluster.ok) throw new Error(formatErrors(cluster.errors));
  const tp = parseTcpProxy(tcpHarnessConfig('{ stat_prefix: echo_tls, cluster: echo }'), { path: 'tcp', clusterNames: undefined });
  if (!tp.ok) throw new Error(formatErrors(tp.errors));
  const stats = new StatsStore();
  const cm = createClusterManager([cluster.value], { stats, workerId: 0 });
  await cm.ready();
  const factory = new TcpProxyFactory(tp.value, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  const infos: StreamInfo[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const info = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 1 }, downstreamLocal: { address: '127.0.0.1', port: 2 }, connectionId: 0 });
    infos.push(info);
    factory.takeOver(tp.value, { socket, streamInfo: info, bufferLimitBytes: 1024 * 1024, continueReading: () => socket.resume(), close: (m) => (m === 'flush' ? socket.end() : socket.destroy()) });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const c = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
    c.on('error', () => {});
    await once(c, 'close');
    const info = infos[0]!;
    assert.ok(info.responseFlags.has('UF'));
    assert.match(info.upstreamTransportFailureReason ?? '', /^TLS_error:\|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:.*:TLS_error_end$/);
    const counters = stats.snapshot().counters;
    assert.equal(counters['cluster.echo.ssl.fail_verify_error'], 1);
    assert.equal(counters['cluster.echo.upstream_cx_connect_fail'], 1);
    assert.equal(counters['cluster.echo.upstream_cx_total'], 1);
  } finally {
    server.close();
    await factory.close();
    await cm.close();
    await up.close();
  }
});
