// Istio's filters between two real legate sidecars (config/examples/mtls, copied, with Istio's node
// metadata, traffic directions, `istio.metadata_exchange`, `istio.alpn` and `istio.stats` added as
// istiod puts them): app → A (outbound) → mTLS h2 → B (inbound, two workers, serving only peers that
// offer Istio's ALPN, as istiod's inbound chains match) → app. The peers learn each other
// from the exchange headers, which neither app sees; both report istio_requests_total with Istio's
// standard labels, A as `source` and B as `destination`, and principals from the mTLS session.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import protobuf from 'protobufjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, spiffeId } from '../../src/proxy/tls/dev-ca.ts';
import { testPki, writePki } from '../helpers/certs.ts';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { listen, loadExample, rewriteExample, type Obj } from '../helpers/sidecar-examples.ts';
import { promSeries, type PromSample } from '../helpers/prometheus.ts';
import { ownFrame } from '../../src/filters/network/istio_metadata_exchange/frame.ts';
import type { LocalNode } from '../../src/proxy/local-info.ts';

const TIMEOUT = { timeout: 60_000 };

function node(id: string, workload: string, app: string): Obj {
  return {
    id,
    cluster: `${app}.default`,
    metadata: {
      NAME: `${workload}-7d4f9c8b6-x2x9q`,
      NAMESPACE: 'default',
      WORKLOAD_NAME: workload,
      CLUSTER_ID: 'Kubernetes',
      OWNER: `kubernetes://apis/apps/v1/namespaces/default/deployments/${workload}`,
      ISTIO_VERSION: '1.24.0',
      LABELS: { app, version: 'v1', 'service.istio.io/canonical-name': app, 'service.istio.io/canonical-revision': 'v1' },
    },
  };
}

const MX = { name: 'istio.metadata_exchange' };
const STATS = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig' } };

/** Istio's filters before the HCM's others, as istiod orders them. */
function withIstioFilters(listener: Obj, mx: Obj): void {
  const chains = listener.filter_chains as Obj[];
  const hcm = ((chains[0]!.filters as Obj[])[0]!.typed_config) as Obj;
  hcm.http_filters = [{ ...MX, typed_config: { '@type': 'type.googleapis.com/io.istio.http.peer_metadata.Config', ...mx } }, ...(hcm.http_filters as Obj[]).slice(0, -1), STATS, ...(hcm.http_filters as Obj[]).slice(-1)];
}

const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'legate-istio-telemetry-'));
const a = issueCertificate(pki.ca, { commonName: 'a', spiffeId: spiffeId('cluster.local', 'default', 'a'), keyType: 'ecdsa' });
const b = issueCertificate(pki.ca, { commonName: 'b', spiffeId: spiffeId('cluster.local', 'default', 'b'), dnsNames: ['b.default.svc.cluster.local'], keyType: 'ecdsa' });
writePki(dir, { a, b });
writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);

let appSaw: http.IncomingHttpHeaders = {};
const app = http.createServer((req, res) => {
  appSaw = req.headers;
  req.resume();
  req.on('end', () => res.end(req.url === '/missing' ? '' : 'reviews'));
});
const echo = net.createServer((sock) => sock.on('data', (d: Buffer) => sock.write(d)));
let sidecarA: Legate | undefined;
let sidecarB: Legate | undefined;
let outPort = 0;
let outTcpPort = 0;
let inTcpPort = 0;
const TCP_STATS = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig' } };
const AUTHN = { name: 'istio_authn', typed_config: { '@type': 'type.googleapis.com/io.istio.network.authn.Config' } };

/** Istio's TCP chain filters first: `extra` then istio.stats, before the listener's own. */
function withTcpFilters(listener: Obj, extra: Obj[]): void {
  const chain = (listener.filter_chains as Obj[])[0]!;
  chain.filters = [...extra, TCP_STATS, ...(chain.filters as Obj[])];
}

async function startPair(): Promise<void> {
  if (sidecarA) return;
  const appPort = await listen(app);
  const echoPort = await listen(echo);
  const cb = loadExample('sidecar-b.yaml');
  rewriteExample(cb, dir, (addr) => ({ 8080: appPort, 9000: echoPort })[Number(addr.port_value)] ?? 0);
  cb.node = node('sidecar~127.0.0.2~reviews-v1-7d4f9c8b6-x2x9q.default~default.svc.cluster.local', 'reviews-v1', 'reviews');
  const inbound = ((cb.static_resources as Obj).listeners as Obj[]).find((l) => l.name === 'inbound_http')!;
  inbound.traffic_direction = 'INBOUND';
  // As istiod's inbound chains: only a peer offering Istio's ALPN (istio.alpn on A) is served.
  inbound.listener_filters = [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }];
  (inbound.filter_chains as Obj[])[0]!.filter_chain_match = { application_protocols: ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'] };
  withIstioFilters(inbound, { downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], downstream_propagation: [{ istio_headers: {} }] });
  const inboundTcp = ((cb.static_resources as Obj).listeners as Obj[]).find((l) => l.name === 'inbound_tcp')!;
  inboundTcp.traffic_direction = 'INBOUND';
  withTcpFilters(inboundTcp, [AUTHN, { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', protocol: 'istio-peer-exchange' } }]);
  const tcpTls = (((inboundTcp.filter_chains as Obj[])[0]!.transport_socket as Obj).typed_config as Obj).common_tls_context as Obj;
  tcpTls.alpn_protocols = ['istio-peer-exchange', 'istio'];
  sidecarB = await startLegate(cb, { concurrency: 2 });
  const inPort = await sidecarB.listenerPort('inbound_http');
  inTcpPort = await sidecarB.listenerPort('inbound_tcp');

  const ca = loadExample('sidecar-a.yaml');
  rewriteExample(ca, dir, (addr) => ({ 15443: inPort, 15444: inTcpPort })[Number(addr.port_value)] ?? 0);
  ca.node = node('sidecar~127.0.0.1~productpage-v1-5b4c7f7d9-abcde.default~default.svc.cluster.local', 'productpage-v1', 'productpage');
  const sr = ca.static_resources as Obj;
  const outbound = (sr.listeners as Obj[]).find((l) => l.name === 'outbound_http')!;
  outbound.traffic_direction = 'OUTBOUND';
  withIstioFilters(outbound, { upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], upstream_propagation: [{ istio_headers: { skip_external_clusters: true } }] });
  const hcm = (((outbound.filter_chains as Obj[])[0]!.filters as Obj[])[0]!.typed_config) as Obj;
  (hcm.http_filters as Obj[]).splice(1, 0, {
    name: 'istio.alpn',
    typed_config: {
      '@type': 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig',
      alpn_override: [
        { alpn_override: ['istio-http/1.0', 'istio', 'http/1.0'] },
        { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio', 'http/1.1'] },
        { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio', 'h2'] },
      ],
    },
  });
  const bHttp = (sr.clusters as Obj[]).find((c) => c.name === 'b_http')!;
  bHttp.metadata = { filter_metadata: { istio: { services: [{ host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' }] } } };
  // As istiod's outbound TCP clusters: Istio's exchange ALPN and the exchange as an upstream filter.
  const bTcp = (sr.clusters as Obj[]).find((c) => c.name === 'b_tcp')!;
  (((bTcp.transport_socket as Obj).typed_config as Obj).common_tls_context as Obj).alpn_protocols = ['istio-peer-exchange', 'istio'];
  bTcp.filters = [{ name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', protocol: 'istio-peer-exchange' } }];
  const outboundTcp = (sr.listeners as Obj[]).find((l) => l.name === 'outbound_tcp')!;
  outboundTcp.traffic_direction = 'OUTBOUND';
  withTcpFilters(outboundTcp, []);
  sidecarA = await startLegate(ca);
  outPort = await sidecarA.listenerPort('outbound_http');
  outTcpPort = await sidecarA.listenerPort('outbound_tcp');
}

after(async () => {
  await sidecarA?.stop();
  await sidecarB?.stop();
  app.close();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A request with its own Host header (fetch does not let one set it). */
function get(port: number, path: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

async function requestsTotal(l: Legate): Promise<PromSample[]> {
  const text = await (await fetch(`${l.admin}/stats/prometheus`)).text();
  return promSeries(text, 'istio_requests_total');
}

test('the peers exchange metadata in headers neither app sees, and both report Istio’s standard labels', TIMEOUT, async () => {
  await startPair();
  const res = await get(outPort, '/reviews/1', { host: 'reviews:9080' });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'reviews');
  assert.equal(res.headers['x-envoy-peer-metadata'], undefined, 'A removes B’s metadata from the response');
  assert.equal(res.headers['x-envoy-peer-metadata-id'], undefined);
  assert.equal(appSaw['x-envoy-peer-metadata'], undefined, 'B removes A’s metadata from the request');
  assert.equal(appSaw['x-envoy-peer-metadata-id'], undefined);

  const common = {
    source_workload: 'productpage-v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_workload_namespace: 'default',
    source_app: 'productpage',
    source_version: 'v1',
    source_cluster: 'Kubernetes',
    destination_workload: 'reviews-v1',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/b',
    destination_app: 'reviews',
    destination_version: 'v1',
    destination_canonical_service: 'reviews',
    destination_canonical_revision: 'v1',
    destination_service_namespace: 'default',
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
  };
  const onB = await requestsTotal(sidecarB!);
  assert.deepEqual(onB, [
    {
      labels: {
        reporter: 'destination',
        ...common,
        source_principal: 'spiffe://cluster.local/ns/default/sa/a',
        // B's own service: no cluster metadata on its inbound side, so the Host header.
        destination_service: 'reviews:9080',
        destination_service_name: 'reviews:9080',
        connection_security_policy: 'mutual_tls',
      },
      value: 1,
    },
  ]);
  const onA = await requestsTotal(sidecarA!);
  assert.deepEqual(onA, [
    {
      labels: {
        reporter: 'source',
        ...common,
        source_principal: 'spiffe://cluster.local/ns/default/sa/a',
        // From the cluster's istio.services metadata.
        destination_service: 'reviews.default.svc.cluster.local',
        destination_service_name: 'reviews',
        connection_security_policy: 'unknown',
      },
      value: 1,
    },
  ]);
  const aText = await (await fetch(`${sidecarA!.admin}/stats/prometheus`)).text();
  assert.match(aText, /^istio_build\{component="proxy",tag="1\.24\.0"\} 1$/m);
  assert.equal(promSeries(aText, 'istio_request_duration_milliseconds_count')[0]?.value, 1);
  assert.equal(promSeries(aText, 'istio_response_bytes_sum')[0]?.value, 'reviews'.length);
  // /stats shows the joined name, as Envoy's does.
  const stats = await sidecarB!.stats();
  assert.ok(Object.keys(stats).some((k) => k.startsWith('istiocustom.istio_requests_total.reporter.destination.source_workload.productpage-v1.')));
});

test('TCP: the sidecars exchange metadata in-band (istio-peer-exchange) and report istio_tcp_* with both peers and the mTLS principals; the app’s bytes pass unchanged', TIMEOUT, async () => {
  await startPair();
  const sock = net.connect(outTcpPort, '127.0.0.1');
  const got = await new Promise<string>((resolve, reject) => {
    let data = '';
    sock.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.length >= 11) resolve(data);
    });
    sock.on('error', reject);
    sock.write('hello mesh!');
  });
  assert.equal(got, 'hello mesh!');
  sock.end();
  await new Promise((r) => sock.on('close', r));
  const read = async (l: Legate, metric: string): Promise<PromSample[]> => promSeries(await (await fetch(`${l.admin}/stats/prometheus`)).text(), metric);
  // The close reaches B through A; wait for both to report it.
  for (let i = 0; i < 50 && ((await read(sidecarB!, 'istio_tcp_connections_closed_total')).length === 0 || (await read(sidecarA!, 'istio_tcp_connections_closed_total')).length === 0); i++) await new Promise((r) => setTimeout(r, 100));
  const [opened] = await read(sidecarB!, 'istio_tcp_connections_opened_total');
  assert.equal(opened?.value, 1);
  assert.equal(opened?.labels.reporter, 'destination');
  assert.equal(opened?.labels.source_principal, 'spiffe://cluster.local/ns/default/sa/a');
  assert.equal(opened?.labels.destination_principal, 'spiffe://cluster.local/ns/default/sa/b');
  assert.equal(opened?.labels.source_workload_namespace, 'default', 'from the SPIFFE principal');
  assert.equal(opened?.labels.connection_security_policy, 'mutual_tls');
  assert.equal(opened?.labels.request_protocol, 'tcp');
  assert.equal(opened?.labels.destination_workload, 'reviews-v1');
  assert.equal(opened?.labels.source_workload, 'productpage-v1', 'from A’s exchange frame');
  assert.equal(opened?.labels.source_app, 'productpage');
  assert.equal((await read(sidecarB!, 'istio_tcp_connections_closed_total'))[0]?.value, 1);
  // B's downstream is A: the wire carries each side's exchange frame before the app's 11 bytes.
  const frameA = ownFrame(node('sidecar~127.0.0.1~productpage-v1-5b4c7f7d9-abcde.default~default.svc.cluster.local', 'productpage-v1', 'productpage') as unknown as LocalNode).length;
  const frameB = ownFrame(node('sidecar~127.0.0.2~reviews-v1-7d4f9c8b6-x2x9q.default~default.svc.cluster.local', 'reviews-v1', 'reviews') as unknown as LocalNode).length;
  assert.equal((await read(sidecarB!, 'istio_tcp_received_bytes_total'))[0]?.value, 11 + frameA);
  assert.equal((await read(sidecarB!, 'istio_tcp_sent_bytes_total'))[0]?.value, 11 + frameB);
  const [outOpened] = await read(sidecarA!, 'istio_tcp_connections_opened_total');
  assert.equal(outOpened?.labels.reporter, 'source');
  assert.equal(outOpened?.labels.source_workload, 'productpage-v1');
  assert.equal(outOpened?.labels.destination_principal, 'spiffe://cluster.local/ns/default/sa/b');
  assert.equal(outOpened?.labels.destination_workload, 'reviews-v1', 'from B’s exchange frame');
  assert.equal(outOpened?.labels.destination_canonical_revision, 'v1');
  assert.equal((await read(sidecarA!, 'istio_tcp_connections_closed_total'))[0]?.value, 1);
  assert.equal((await read(sidecarA!, 'istio_tcp_sent_bytes_total'))[0]?.value, 11);
  assert.equal((await read(sidecarA!, 'istio_tcp_received_bytes_total'))[0]?.value, 11);
});

// protobufjs's own Any and Struct (not legate's codec) make and read the exchange frames.
const wkt = protobuf.Root.fromJSON({ nested: { google: { nested: { protobuf: { nested: {
  ...((protobuf.common as unknown as Record<string, protobuf.INamespace>)['google/protobuf/struct.proto']!.nested!.google as { nested: { protobuf: { nested: object } } }).nested.protobuf.nested,
  ...((protobuf.common as unknown as Record<string, protobuf.INamespace>)['google/protobuf/any.proto']!.nested!.google as { nested: { protobuf: { nested: object } } }).nested.protobuf.nested,
} } } } } });
const AnyType = wkt.lookupType('google.protobuf.Any');
const StructType = wkt.lookupType('google.protobuf.Struct');
function sv(v: unknown): Obj {
  if (typeof v === 'string') return { stringValue: v };
  return { structValue: { fields: Object.fromEntries(Object.entries(v as Obj).map(([k, x]) => [k, sv(x)])) } };
}

test('TCP metadata exchange (istio-peer-exchange): B reads the client’s frame, answers with its own, and names the peer', TIMEOUT, async () => {
  await startPair();
  const peer = { [`x-envoy-peer-metadata`]: { NAMESPACE: 'default', WORKLOAD_NAME: 'details-v1', CLUSTER_ID: 'Kubernetes', LABELS: { app: 'details', version: 'v1' } }, 'x-envoy-peer-metadata-id': 'sidecar~10.0.0.3~details-v1-x.default~default.svc.cluster.local' };
  const any = AnyType.encode(AnyType.fromObject({ type_url: 'type.googleapis.com/google.protobuf.Struct', value: StructType.encode(StructType.fromObject({ fields: Object.fromEntries(Object.entries(peer).map(([k, v]) => [k, sv(v)])) })).finish() })).finish();
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x3d230467, 0);
  header.writeUInt32BE(any.length, 4);
  const sock = tls.connect({ host: '127.0.0.1', port: inTcpPort, servername: 'b.default.svc.cluster.local', ca: pki.ca.certPem, cert: a.certPem, key: a.keyPem, ALPNProtocols: ['istio-peer-exchange', 'istio'], checkServerIdentity: () => undefined });
  await new Promise<void>((r, j) => sock.once('secureConnect', r).once('error', j));
  assert.equal(sock.alpnProtocol, 'istio-peer-exchange');
  // The frame and the payload in two writes, the frame itself split, as a slow peer may send them.
  sock.write(Buffer.concat([header, any.subarray(0, 5)]));
  await new Promise((r) => setTimeout(r, 50));
  sock.write(Buffer.concat([any.subarray(5), Buffer.from('ping')]));
  let got = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 8 && got.length >= 8 + got.readUInt32BE(4) + 4) resolve();
    });
    sock.on('error', reject);
  });
  assert.equal(got.readUInt32BE(0), 0x3d230467);
  const size = got.readUInt32BE(4);
  const theirs = AnyType.decode(got.subarray(8, 8 + size)) as unknown as { type_url: string; value: Uint8Array };
  assert.equal(theirs.type_url, 'type.googleapis.com/google.protobuf.Struct');
  const fields = (StructType.toObject(StructType.decode(theirs.value)) as { fields: Record<string, Obj> }).fields;
  assert.equal(fields['x-envoy-peer-metadata-id']!.stringValue, 'sidecar~127.0.0.2~reviews-v1-7d4f9c8b6-x2x9q.default~default.svc.cluster.local');
  const md = (fields['x-envoy-peer-metadata']!.structValue as { fields: Record<string, Obj> }).fields;
  assert.equal(md.WORKLOAD_NAME!.stringValue, 'reviews-v1');
  assert.equal(got.subarray(8 + size).toString(), 'ping', 'the echo app got the payload without the frame');
  sock.end();
  await new Promise((r) => sock.on('close', r));
  let opened: PromSample | undefined;
  for (let i = 0; i < 50 && !opened; i++) {
    const text = await (await fetch(`${sidecarB!.admin}/stats/prometheus`)).text();
    opened = promSeries(text, 'istio_tcp_connections_closed_total').find((s) => s.labels.source_workload === 'details-v1');
    if (!opened) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(opened?.labels.source_app, 'details');
  assert.equal(opened?.labels.source_principal, 'spiffe://cluster.local/ns/default/sa/a');
  assert.equal(opened?.value, 1);
});
