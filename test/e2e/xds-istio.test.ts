// Istio's filters delivered as istiod delivers them: delta ADS over a Unix socket replaces the
// listeners with ones carrying istio.metadata_exchange, istio.alpn and istio.stats (HTTP) and the
// TCP exchange, istio_authn and istio.stats before tcp_proxy, and a cluster with Istio's service
// metadata and the exchange as its upstream filter. Legate ACKs every update (the Istio types are
// decoded from their protobuf bytes on the main thread and handed to the worker), and the traffic
// that follows is reported as Istio reports it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../helpers/xds/control-plane.ts';
import { bodyOr, edsCluster, eventually, rdsListener, tcpListener } from '../helpers/xds/e2e.ts';
import { T, setup } from '../helpers/xds/ads-env.ts';
import { promSeries } from '../helpers/prometheus.ts';

type Obj = Record<string, unknown>;
const ISTIO_MX = { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/io.istio.http.peer_metadata.Config', upstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], upstream_propagation: [{ istio_headers: { skip_external_clusters: true } }] } };
const ISTIO_ALPN = {
  name: 'istio.alpn',
  typed_config: {
    '@type': 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig',
    alpn_override: [{ alpn_override: ['istio-http/1.0', 'istio', 'http/1.0'] }, { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio', 'http/1.1'] }, { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio', 'h2'] }],
  },
};
const ISTIO_STATS = { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig', reporter: 'UNSPECIFIED' } };
const TCP_MX = { name: 'istio.metadata_exchange', typed_config: { '@type': 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', protocol: 'istio-peer-exchange' } };
const AUTHN = { name: 'istio_authn', typed_config: { '@type': 'type.googleapis.com/io.istio.network.authn.Config' } };

test('delta ADS over a Unix socket: istiod-shaped listeners and clusters with Istio’s filters are ACKed and serve, reported as Istio reports', T, async (t) => {
  const env = await setup(t, 'delta', 'uds', { tcp: true });
  const { cp, legate } = env;
  const http = rdsListener('http', env.httpPort, 'routes', { statPrefix: 'outbound_0.0.0.0_80' }) as Obj;
  http.traffic_direction = 'OUTBOUND';
  const hcm = (((http.filter_chains as Obj[])[0]!.filters as Obj[])[0]!.typed_config) as Obj;
  hcm.http_filters = [ISTIO_MX, ISTIO_ALPN, ...(hcm.http_filters as Obj[]).slice(0, -1), ISTIO_STATS, ...(hcm.http_filters as Obj[]).slice(-1)];
  const tcp = tcpListener('tcp', env.tcpPort, 'tcp_backend', 'tcp_v2') as Obj;
  tcp.traffic_direction = 'INBOUND';
  const chain = (tcp.filter_chains as Obj[])[0]!;
  chain.filters = [TCP_MX, AUTHN, ISTIO_STATS, ...(chain.filters as Obj[])];
  const backend = edsCluster('backend') as Obj;
  backend.metadata = { filter_metadata: { istio: { services: [{ host: 'backend.default.svc.cluster.local', name: 'backend', namespace: 'default' }] } } };
  const tcpBackend = edsCluster('tcp_backend') as Obj;
  tcpBackend.filters = [TCP_MX];
  cp.update((s) => {
    s.setJson(CLUSTER_TYPE, 'backend', backend);
    s.setJson(CLUSTER_TYPE, 'tcp_backend', tcpBackend);
    s.setJson(LISTENER_TYPE, 'http', http);
    s.setJson(LISTENER_TYPE, 'tcp', tcp);
  }, 'v2');
  await cp.ack(CLUSTER_TYPE, 'v2');
  await cp.ack(LISTENER_TYPE, 'v2');
  assert.equal(cp.requests.filter((r) => r.request.error_detail).length, 0, 'nothing NACKed');

  // HTTP: the new listener (replaced in place) reports the request as a client sidecar.
  let sample: ReturnType<typeof promSeries>[number] | undefined;
  await eventually(async () => {
    if ((await bodyOr(env.httpPort)) !== 'a') return false;
    sample = promSeries(await (await fetch(`${legate.admin}/stats/prometheus`)).text(), 'istio_requests_total')[0];
    return sample !== undefined;
  }, () => `istio_requests_total after the update\n${legate.stderr()}`);
  assert.equal(sample!.labels.reporter, 'source');
  assert.equal(sample!.labels.destination_service, 'backend.default.svc.cluster.local');
  assert.equal(sample!.labels.destination_service_name, 'backend');
  assert.equal(sample!.labels.response_code, '200');
  assert.equal(sample!.labels.destination_workload, 'unknown', 'a plain upstream sends no peer metadata');

  // TCP: plaintext, so no exchange and no principals; the bytes pass unchanged.
  const echoed = await new Promise<string>((resolve, reject) => {
    const s = net.connect(env.tcpPort, '127.0.0.1');
    let data = '';
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes('ping')) s.end();
    });
    s.on('close', () => resolve(data));
    s.on('error', reject);
    s.write('ping');
  });
  assert.match(echoed, /ping/);
  await eventually(async () => promSeries(await (await fetch(`${legate.admin}/stats/prometheus`)).text(), 'istio_tcp_connections_closed_total').length > 0, 'istio_tcp_connections_closed_total');
  const text = await (await fetch(`${legate.admin}/stats/prometheus`)).text();
  const opened = promSeries(text, 'istio_tcp_connections_opened_total')[0];
  assert.equal(opened?.labels.reporter, 'destination');
  assert.equal(opened?.labels.connection_security_policy, 'none');
  assert.equal(opened?.labels.source_principal, 'unknown');
});
