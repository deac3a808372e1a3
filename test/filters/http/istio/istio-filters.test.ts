// Istio's istio.metadata_exchange and istio.stats on one legate's inbound listener, fed by a real
// HTTP client and answered by a real upstream: a peer header made by protobufjs (not legate's
// codec) is read and removed, legate's own metadata comes back in the response and decodes with
// protobufjs to what Istio sends; an undecodable header is no peer; metric overrides (tags removed,
// replaced and added from CEL, a metric dropped); and configs legate cannot honour are refused
// with their field paths.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import protobuf from 'protobufjs';
import { startLegate, runCli, writeConfig, type Legate } from '../../../helpers/legate.ts';
import { promSeries } from '../../../helpers/prometheus.ts';

const TIMEOUT = { timeout: 30_000 };
type Obj = Record<string, unknown>;

const bundled = (protobuf.common as unknown as Record<string, protobuf.INamespace>)['google/protobuf/struct.proto'];
const root = protobuf.Root.fromJSON(bundled!);
const Struct = root.lookupType('google.protobuf.Struct');

type Json = null | string | number | boolean | Json[] | { [k: string]: Json };
function protoValue(v: Json): Obj {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(protoValue) } };
  return { structValue: protoStruct(v) };
}
function protoStruct(o: { [k: string]: Json }): Obj {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, protoValue(v)])) };
}
function jsonOf(v: Obj): Json {
  if (v.structValue) return structJson(v.structValue as Obj);
  if (v.listValue) return ((v.listValue as Obj).values as Obj[]).map(jsonOf);
  if (v.stringValue !== undefined) return v.stringValue as string;
  if (v.numberValue !== undefined) return v.numberValue as number;
  if (v.boolValue !== undefined) return v.boolValue as boolean;
  return null;
}
function structJson(s: Obj): { [k: string]: Json } {
  return Object.fromEntries(Object.entries((s.fields ?? {}) as Record<string, Obj>).map(([k, v]) => [k, jsonOf(v)]));
}

/** A peer's metadata header value as an Istio proxy encodes it (protobufjs here, not legate's codec). */
function peerHeader(metadata: { [k: string]: Json }): string {
  return Buffer.from(Struct.encode(Struct.fromObject(protoStruct(metadata))).finish()).toString('base64');
}

const NODE = {
  id: 'sidecar~10.0.0.9~ratings-v2-6d8f7-zzq.bookinfo~bookinfo.svc.cluster.local',
  metadata: {
    NAME: 'ratings-v2-6d8f7-zzq',
    NAMESPACE: 'bookinfo',
    WORKLOAD_NAME: 'ratings-v2',
    CLUSTER_ID: 'east',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/ratings-v2',
    MESH_ID: 'mesh1',
    LABELS: { app: 'ratings', version: 'v2', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'v2', team: 'stars' },
  },
};

function config(upstreamPort: number, statsConfig: Obj = {}, mx: Obj = {}): Obj {
  return {
    node: NODE,
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'inbound',
          traffic_direction: 'INBOUND',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'inbound_0.0.0.0_9080',
                    route_config: { virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
                    http_filters: [
                      {
                        name: 'istio.metadata_exchange',
                        typed_config: { '@type': 'type.googleapis.com/io.istio.http.peer_metadata.Config', downstream_discovery: [{ istio_headers: {} }], downstream_propagation: [{ istio_headers: {} }], additional_labels: ['team'], ...mx },
                      },
                      { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig', ...statsConfig } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'app', connect_timeout: '1s', load_assignment: { cluster_name: 'app', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: upstreamPort } } } }] }] } }],
    },
  };
}

let appSaw: http.IncomingHttpHeaders = {};
const app = http.createServer((req, res) => {
  appSaw = req.headers;
  req.resume();
  req.on('end', () => res.end('stars: 5'));
});
const started: Legate[] = [];
after(async () => {
  for (const l of started) await l.stop();
  app.close();
});

async function appPort(): Promise<number> {
  if (!app.listening) await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  return (app.address() as net.AddressInfo).port;
}

async function start(statsConfig: Obj = {}, mx: Obj = {}): Promise<{ legate: Legate; port: number }> {
  const legate = await startLegate(config(await appPort(), statsConfig, mx));
  started.push(legate);
  return { legate, port: await legate.listenerPort('inbound') };
}

function get(port: number, headers: http.OutgoingHttpHeaders): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/ratings/0', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

async function prometheus(l: Legate): Promise<string> {
  return (await fetch(`${l.admin}/stats/prometheus`)).text();
}

const PEER = {
  NAME: 'reviews-v3-5b6c9-qwe',
  NAMESPACE: 'bookinfo',
  WORKLOAD_NAME: 'reviews-v3',
  CLUSTER_ID: 'west',
  OWNER: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v3',
  LABELS: { app: 'reviews', version: 'v3', 'service.istio.io/canonical-name': 'reviews', 'service.istio.io/canonical-revision': 'v3' },
  // Fields Istio's older proxies send too: ignored.
  PLATFORM_METADATA: { gcp_project: 'p' },
  INSTANCE_IPS: '10.0.0.7',
  APP_CONTAINERS: ['reviews'],
  SOME_NUMBER: 3,
  SOME_FLAG: true,
};

test('a peer’s header (encoded by protobufjs) names the source; legate answers with its own metadata as Istio encodes it', TIMEOUT, async () => {
  const { legate, port } = await start();
  const res = await get(port, { 'x-envoy-peer-metadata-id': 'sidecar~10.0.0.7~reviews-v3-5b6c9-qwe.bookinfo~bookinfo.svc.cluster.local', 'x-envoy-peer-metadata': peerHeader(PEER) });
  assert.equal(res.status, 200);
  assert.equal(appSaw['x-envoy-peer-metadata'], undefined);
  assert.equal(appSaw['x-envoy-peer-metadata-id'], undefined);
  assert.equal(res.headers['x-envoy-peer-metadata-id'], NODE.id);
  const own = structJson(Struct.toObject(Struct.decode(Buffer.from(String(res.headers['x-envoy-peer-metadata']), 'base64'))) as Obj);
  assert.deepEqual(own, {
    NAME: 'ratings-v2-6d8f7-zzq',
    NAMESPACE: 'bookinfo',
    WORKLOAD_NAME: 'ratings-v2',
    CLUSTER_ID: 'east',
    // additional_labels keeps `team`; MESH_ID is not part of what Istio sends.
    LABELS: { app: 'ratings', version: 'v2', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'v2', team: 'stars' },
    OWNER: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/ratings-v2',
  });
  const [sample, ...rest] = promSeries(await prometheus(legate), 'istio_requests_total');
  assert.equal(rest.length, 0);
  assert.deepEqual(
    { ...sample!.labels },
    {
      reporter: 'destination',
      source_workload: 'reviews-v3',
      source_canonical_service: 'reviews',
      source_canonical_revision: 'v3',
      source_workload_namespace: 'bookinfo',
      source_principal: 'unknown',
      source_app: 'reviews',
      source_version: 'v3',
      source_cluster: 'west',
      destination_workload: 'ratings-v2',
      destination_workload_namespace: 'bookinfo',
      destination_principal: 'unknown',
      destination_app: 'ratings',
      destination_version: 'v2',
      destination_service: `127.0.0.1:${port}`,
      destination_canonical_service: 'ratings',
      destination_canonical_revision: 'v2',
      destination_service_name: `127.0.0.1:${port}`,
      destination_service_namespace: 'bookinfo',
      destination_cluster: 'east',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'none',
    },
  );
  // Without a peer header in the request, no metadata goes back (Istio answers only a peer).
  const plain = await get(port, {});
  assert.equal(plain.headers['x-envoy-peer-metadata'], undefined);
  assert.equal(plain.headers['x-envoy-peer-metadata-id'], undefined);
});

test('an undecodable peer header is no peer: the request goes on, the source is unknown', TIMEOUT, async () => {
  const { legate, port } = await start();
  for (const bad of ['!!!not base64!!!', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).toString('base64'), Buffer.from('\x0a\x05\x0a\x03abc\x12', 'latin1').toString('base64')]) {
    const res = await get(port, { 'x-envoy-peer-metadata': bad });
    assert.equal(res.status, 200);
    assert.equal(appSaw['x-envoy-peer-metadata'], undefined);
  }
  const samples = promSeries(await prometheus(legate), 'istio_requests_total');
  assert.equal(samples.length, 1);
  assert.equal(samples[0]!.labels.source_workload, 'unknown');
  assert.equal(samples[0]!.labels.source_canonical_revision, 'latest');
  assert.equal(samples[0]!.value, 3);
});

test('metric overrides: a tag removed, one replaced and one added by CEL, a metric dropped', TIMEOUT, async () => {
  const { legate, port } = await start({
    disable_host_header_fallback: true,
    metrics: [
      { name: 'requests_total', tags_to_remove: ['source_principal', 'destination_principal'], dimensions: { user: "request.headers['x-user']", response_code: "'any'", route: 'xds.cluster_name' } },
      { name: 'request_bytes', drop: true },
    ],
  });
  await get(port, { 'x-user': 'alice' });
  await get(port, {});
  const text = await prometheus(legate);
  const samples = promSeries(text, 'istio_requests_total');
  assert.deepEqual(samples.map((s) => [s.labels.user, s.labels.route, s.labels.response_code, s.labels.source_principal, s.value]).sort(), [
    ['alice', 'app', 'any', undefined, 1],
    ['unknown', 'app', 'any', undefined, 1],
  ]);
  assert.equal(samples[0]!.labels.destination_service, 'ratings', 'no Host fallback: the canonical name');
  assert.equal(promSeries(text, 'istio_request_bytes_count').length, 0);
  assert.equal(promSeries(text, 'istio_response_bytes_count').reduce((n, s) => n + s.value, 0), 2);
  // Other metrics keep their standard tags.
  assert.equal(promSeries(text, 'istio_response_bytes_count')[0]!.labels.response_code, '200');
});

test('what legate cannot honour is refused with its field path (--mode validate)', TIMEOUT, async () => {
  const cfg = config(1, {
    definitions: [{ name: 'custom_count', value: '1' }],
    metrics: [{ dimensions: { peer: 'filter_state.upstream_peer.labels["x"]' } }],
  }, { downstream_discovery: [{}] });
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
  assert.notEqual(r.code, 0);
  const http = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters';
  assert.match(r.stderr, new RegExp(`${http.replaceAll('.', '\\.').replaceAll('[', '\\[').replaceAll(']', '\\]')}\\[1\\]\\.typed_config\\.definitions\\[0\\]: custom metric definitions are not supported`));
  assert.match(r.stderr, /http_filters\[1\]\.typed_config\.metrics\[0\]\.dimensions\.peer: CEL expression 'filter_state\.upstream_peer\.labels\["x"\]' is not supported/);
  assert.match(r.stderr, /http_filters\[0\]\.typed_config\.downstream_discovery\[0\]: one of baggage, workload_discovery or istio_headers is required/);
});

test('a cluster’s upstream filters: Istio’s TCP exchange is taken, another is named in a warning, and the config serves', TIMEOUT, async () => {
  const cfg = config(1);
  const cluster = ((cfg.static_resources as Obj).clusters as Obj[])[0]!;
  cluster.filters = [
    { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', protocol: 'istio-peer-exchange' } },
    { name: 'envoy.filters.upstream_network.example' },
  ];
  const r = await runCli(['--mode', 'validate', '-c', writeConfig(cfg)]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /static_resources\.clusters\[0\]\.filters: upstream network filters are not run by legate \(envoy\.filters\.upstream_network\.example\)/);
  assert.doesNotMatch(r.stderr, /istio\.metadata_exchange/);
});
