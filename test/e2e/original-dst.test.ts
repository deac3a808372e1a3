// Original destinations, as an Istio sidecar runs: iptables (nat OUTPUT, REDIRECT) sends the test's
// connections to 127.0.0.1:<app port> into legate, which runs as its own group (SIDECAR_GID) so that
// its connections to the apps are not redirected. The outbound listener (use_original_dst) hands a
// connection to the listener for its original destination, or proxies it through an ORIGINAL_DST
// cluster (PassthroughCluster); the inbound listener (original_dst listener filter) picks filter
// chains by the original destination_port. Then x-envoy-original-dst-host, without iptables.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { request } from 'undici';
import { startLegate } from '../helpers/legate.ts';
import { hcm, socketAddress, TCP_PROXY_TYPE } from '../helpers/config.ts';
import { startHttp1Upstream } from '../helpers/upstreams.ts';
import { freePort } from '../helpers/xds/e2e.ts';
import { iptablesUnavailable, redirectPorts, SIDECAR_GID } from '../helpers/iptables.ts';

const tcpProxy = (statPrefix: string, cluster: string): object => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: statPrefix, cluster } });

const originalDstCluster = (name: string, extra: Record<string, unknown> = {}): object => ({ name, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '1s', ...extra });

/** A route config sending everything to `cluster`, naming the listener for the app and the addresses for the client. */
const routeTo = (cluster: string, listener: string): object => ({
  name: `${listener}_routes`,
  virtual_hosts: [{
    name: 'all',
    domains: ['*'],
    routes: [{ match: { prefix: '/' }, route: { cluster } }],
    request_headers_to_add: [{ header: { key: 'x-legate-listener', value: listener } }],
    response_headers_to_add: [{ header: { key: 'x-addresses', value: '%DOWNSTREAM_LOCAL_ADDRESS%' } }],
  }],
});

/** /clusters once `done` holds for it (the admin's copy of the workers' hosts is up to 1 s old); fails after 10 s. */
async function clustersWhen(admin: string, done: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`${admin}/clusters`)).text();
    if (done(text)) return text;
    assert.ok(Date.now() < deadline, `/clusters never got there:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startTcpEcho(): Promise<net.Server> {
  const s = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

async function tcpRoundTrip(port: number, text: string): Promise<string> {
  const c = net.connect(port, '127.0.0.1');
  c.end(text);
  let got = '';
  for await (const chunk of c) got += String(chunk);
  return got;
}

test('a sidecar behind iptables: use_original_dst hands over, ORIGINAL_DST passes through, original_dst matches destination_port', { timeout: 120_000 }, async (t) => {
  const why = iptablesUnavailable();
  if (why) return t.skip(why);
  const appA = await startHttp1Upstream();
  const appD = await startHttp1Upstream();
  const echoB = await startTcpEcho();
  const portB = (echoB.address() as AddressInfo).port;
  const portC = await freePort(); // nothing listens here: the inbound listener answers for it
  const legate = await startLegate(
    {
      static_resources: {
        listeners: [
          { name: 'virtualOutbound', address: socketAddress(0), use_original_dst: true, filter_chains: [{ filters: [tcpProxy('PassthroughCluster', 'PassthroughCluster')] }] },
          { name: 'outbound_http', address: socketAddress(appA.port, '0.0.0.0'), bind_to_port: false, filter_chains: [{ filters: [hcm(routeTo('PassthroughCluster', 'outbound_http'), { stat_prefix: 'outbound_http' })] }] },
          {
            name: 'virtualInbound',
            address: socketAddress(0),
            listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' } }],
            filter_chains: [
              {
                filter_chain_match: { destination_port: portC },
                filters: [hcm({ name: 'c', virtual_hosts: [{ name: 'c', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'inbound C' } } }], response_headers_to_add: [{ header: { key: 'x-addresses', value: '%DOWNSTREAM_LOCAL_ADDRESS%' } }] }] }, { stat_prefix: 'inbound_c' })],
              },
              { filters: [tcpProxy('InboundPassthroughCluster', 'InboundPassthroughCluster')] },
            ],
          },
        ],
        clusters: [originalDstCluster('PassthroughCluster'), originalDstCluster('InboundPassthroughCluster')],
      },
      admin: { address: socketAddress(0) },
    },
    { gid: SIDECAR_GID, concurrency: 2 },
  );
  const outbound = await legate.listenerPort('virtualOutbound');
  const inbound = await legate.listenerPort('virtualInbound');
  const removeRules = [redirectPorts([appA.port, portB], outbound, SIDECAR_GID), redirectPorts([portC, appD.port], inbound, SIDECAR_GID)];
  try {
    // HTTP to app A: redirected, handed to the bind_to_port:false listener for 0.0.0.0:<A>, proxied to A.
    for (let i = 0; i < 4; i++) {
      const r = await request(`http://127.0.0.1:${appA.port}/hello/${i}`);
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['x-addresses'], `127.0.0.1:${appA.port}`, 'the restored destination is the downstream local address');
      const seen = (await r.body.json()) as { path: string; headers: Record<string, string> };
      assert.equal(seen.path, `/hello/${i}`);
      assert.equal(seen.headers['x-legate-listener'], 'outbound_http');
    }
    assert.equal(appA.seen.length, 4, 'every request reached app A once (no loop through legate)');

    // TCP to B: no listener for <B>, so it stays on virtualOutbound: tcp_proxy to PassthroughCluster.
    assert.equal(await tcpRoundTrip(portB, 'ping through the passthrough'), 'ping through the passthrough');

    // Inbound: the chain for destination_port C answers itself; D goes through InboundPassthroughCluster.
    const c = await request(`http://127.0.0.1:${portC}/`);
    assert.equal(await c.body.text(), 'inbound C');
    assert.equal(c.headers['x-addresses'], `127.0.0.1:${portC}`);
    const d = await request(`http://127.0.0.1:${appD.port}/to-d`);
    assert.equal(d.statusCode, 200);
    assert.equal(((await d.body.json()) as { path: string }).path, '/to-d');
    assert.equal(appD.seen.length, 1);

    const s = await legate.stats();
    assert.ok((s[`listener.0.0.0.0_${appA.port}.downstream_cx_total`] ?? 0) >= 1, 'handed-over connections count on their new listener');
    assert.equal(s['http.outbound_http.downstream_rq_total'], 4);
    assert.equal(s['tcp.PassthroughCluster.downstream_cx_total'], 1, 'only the TCP connection to B stayed on virtualOutbound');
    assert.equal(s['http.inbound_c.downstream_rq_total'], 1);
    assert.equal(s['tcp.InboundPassthroughCluster.downstream_cx_total'], 1);
    assert.ok((s['cluster.PassthroughCluster.upstream_cx_total'] ?? 0) >= 2);
    // The hosts the cluster made on demand (on either worker) are listed as Envoy lists them.
    const clusters = await clustersWhen(legate.admin, (text) => text.includes(`InboundPassthroughCluster::127.0.0.1:${appD.port}::`));
    assert.match(clusters, new RegExp(`^PassthroughCluster::127\\.0\\.0\\.1:${appA.port}::cx_total::`, 'm'));
    assert.match(clusters, new RegExp(`^PassthroughCluster::127\\.0\\.0\\.1:${portB}::`, 'm'));
    assert.match(clusters, new RegExp(`^InboundPassthroughCluster::127\\.0\\.0\\.1:${appD.port}::`, 'm'));
  } finally {
    for (const remove of removeRules) remove();
    await legate.stop();
    await appA.close();
    await appD.close();
    echoB.close();
  }
});

test('ORIGINAL_DST with use_http_header: x-envoy-original-dst-host picks the host, upstream_port_override its port; unused hosts are cleaned up', { timeout: 60_000 }, async () => {
  const app = await startHttp1Upstream();
  const legate = await startLegate({
    static_resources: {
      listeners: [
        { name: 'edge', address: socketAddress(0), filter_chains: [{ filters: [hcm(routeTo('by_header', 'edge'))] }] },
        { name: 'edge_override', address: socketAddress(0), filter_chains: [{ filters: [hcm(routeTo('port_override', 'edge_override'), { stat_prefix: 'override' })] }] },
      ],
      clusters: [
        originalDstCluster('by_header', { cleanup_interval: '0.3s', original_dst_lb_config: { use_http_header: true } }),
        originalDstCluster('port_override', { original_dst_lb_config: { use_http_header: true, http_header_name: 'x-dst', upstream_port_override: app.port } }),
      ],
    },
    admin: { address: socketAddress(0) },
  });
  try {
    const edge = await legate.listenerPort('edge');
    const ok = await request(`http://127.0.0.1:${edge}/via-header`, { headers: { 'x-envoy-original-dst-host': `127.0.0.1:${app.port}` } });
    assert.equal(ok.statusCode, 200);
    const seen = (await ok.body.json()) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/via-header');
    assert.equal(seen.headers['x-envoy-original-dst-host'], `127.0.0.1:${app.port}`, 'Envoy forwards the header as it came');

    // Without the header, or with one that is no IP:port, the connection's own address was not
    // restored: no host (Envoy's "no healthy upstream"), and legate never proxies to itself.
    const none = await request(`http://127.0.0.1:${edge}/`);
    assert.equal(none.statusCode, 503);
    assert.equal(await none.body.text(), 'no healthy upstream');
    const bad = await request(`http://127.0.0.1:${edge}/`, { headers: { 'x-envoy-original-dst-host': 'app.example:80' } });
    assert.equal(bad.statusCode, 503);
    await bad.body.dump();

    const override = await request(`http://127.0.0.1:${await legate.listenerPort('edge_override')}/override`, { headers: { 'x-dst': '127.0.0.1:1' } });
    assert.equal(override.statusCode, 200);
    assert.equal(((await override.body.json()) as { path: string }).path, '/override');
    assert.equal(app.seen.length, 2);

    const s = await legate.stats();
    assert.equal(s['cluster.by_header.original_dst_host_invalid'], 1);
    assert.equal(s['cluster.by_header.upstream_cx_none_healthy'], 2, 'the two requests without a destination');
    // Both hosts are listed; the one unused for a whole cleanup_interval (0.3 s) then leaves, while
    // the default interval (5 s) keeps the other.
    await clustersWhen(legate.admin, (text) => text.includes(`port_override::127.0.0.1:${app.port}::`));
    const after = await clustersWhen(legate.admin, (text) => !text.includes(`by_header::127.0.0.1:${app.port}::`));
    assert.match(after, new RegExp(`^port_override::127\\.0\\.0\\.1:${app.port}::`, 'm'));
    assert.equal((await legate.stats())['cluster.by_header.membership_total'], 0);
  } finally {
    await legate.stop();
    await app.close();
  }
});
