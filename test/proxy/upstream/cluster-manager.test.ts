import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { parse } from 'yaml';
import { exchange } from './http1-exchange.ts';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../src/proxy/upstream/cluster-manager.ts';
import { ErrorCode, ProxyError, ResponseFlag } from '../../../src/proxy/errors.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import type { Cluster, ClusterConfig } from '../../../src/proxy/upstream/types.ts';
import { freePort } from '../../helpers/free-port.ts';

function cluster(yaml: string): ClusterConfig {
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(yaml));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const r = parseCluster(d.value, 'c');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function staticCluster(name: string, port: number, extra = ''): ClusterConfig {
  return cluster(`
name: ${name}
connect_timeout: 1s
${extra}
load_assignment:
  cluster_name: ${name}
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } }`);
}

/** A port nothing listens on (below the ephemeral range, where no other test's listen(0) lands). */
const closedPort = freePort;

function stat(stats: StatsStore, name: string): number | undefined {
  const s = stats.snapshot();
  return s.counters[name] ?? s.gauges[name];
}

test('STRICT_DNS resolves localhost (V4_ONLY) and LOGICAL_DNS keeps one host', { timeout: 10_000 }, async () => {
  const stats = new StatsStore();
  const dns = (type: string, n: string): ClusterConfig =>
    cluster(`
name: ${n}
type: ${type}
dns_lookup_family: V4_ONLY
dns_refresh_rate: 60s
load_assignment:
  cluster_name: ${n}
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: localhost, port_value: 9 } } }`);
  const cm = createClusterManager([dns('STRICT_DNS', 'strict'), dns('LOGICAL_DNS', 'logical')], { stats, workerId: 0 });
  try {
    await cm.ready();
    const strict = cm.get('strict')!;
    assert.ok(strict.hosts().length >= 1);
    assert.ok(strict.hosts().some((h) => h.key === '127.0.0.1:9'));
    assert.equal(strict.hosts()[0]!.hostname, 'localhost');
    const logical = cm.get('logical')!;
    assert.deepEqual(logical.hosts().map((h) => h.key), ['127.0.0.1:9']);
    assert.equal(logical.chooseHost({ hashKey: undefined })!.key, '127.0.0.1:9');
    assert.equal(stat(stats, 'cluster.strict.membership_total'), strict.hosts().length);
    assert.equal(stat(stats, 'cluster.logical.membership_healthy'), 1);
    assert.equal(stat(stats, 'cluster.logical.update_success'), 1);
    assert.deepEqual([...cm.names()].sort(), ['logical', 'strict']);
  } finally {
    await cm.close();
  }
});

test('a name that does not resolve leaves the cluster empty, not failed', { timeout: 10_000 }, async () => {
  const stats = new StatsStore();
  const c = cluster(`
name: bad
type: STRICT_DNS
dns_lookup_family: V4_ONLY
load_assignment:
  cluster_name: bad
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: no-such-host.invalid, port_value: 80 } } }`);
  const cm = createClusterManager([c], { stats, workerId: 0 });
  try {
    await cm.ready();
    assert.equal(cm.get('bad')!.hosts().length, 0);
    assert.equal(cm.get('bad')!.chooseHost({ hashKey: undefined }), undefined);
    assert.equal(stat(stats, 'cluster.bad.update_failure'), 1);
  } finally {
    await cm.close();
  }
});

test('http1Pool reuses a keep-alive connection; cx stats', { timeout: 10_000 }, async () => {
  const server = http.createServer((req, res) => res.end(`hello ${req.url}`)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const stats = new StatsStore();
  const cm = createClusterManager([staticCluster('web', port)], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('web')!;
    const host = c.chooseHost({ hashKey: undefined })!;
    for (const path of ['/a', '/b']) {
      const res = await exchange(c.http1Pool(host), { path });
      assert.equal(res.status, 200);
      assert.equal(res.body, `hello ${path}`);
    }
    assert.equal(c.http1Pool(host), c.http1Pool(host));
    assert.equal(stat(stats, 'cluster.web.upstream_cx_total'), 1);
    assert.equal(stat(stats, 'cluster.web.upstream_cx_http1_total'), 1);
    assert.equal(stat(stats, 'cluster.web.upstream_cx_active'), 1);
    server.closeAllConnections();
    for (let i = 0; i < 50 && stat(stats, 'cluster.web.upstream_cx_active') !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stat(stats, 'cluster.web.upstream_cx_active'), 0);
    assert.equal(stat(stats, 'cluster.web.upstream_cx_destroy'), 1);
    // The pool opens a new connection once the old one is gone.
    assert.equal((await exchange(c.http1Pool(host), { path: '/x' })).body, 'hello /x');
    assert.equal(stat(stats, 'cluster.web.upstream_cx_total'), 2);
  } finally {
    await cm.close();
    server.close();
  }
});

test('http1Pool: connection refused → retryable ProxyError (UF) and upstream_cx_connect_fail', { timeout: 10_000 }, async () => {
  const stats = new StatsStore();
  const cm = createClusterManager([staticCluster('dead', await closedPort())], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('dead')!;
    const host = c.chooseHost({ hashKey: undefined })!;
    await assert.rejects(exchange(c.http1Pool(host)), (e: unknown) => {
      assert.ok(e instanceof ProxyError);
      assert.equal(e.code, ErrorCode.UPSTREAM_CONNECT_FAILURE);
      assert.equal(e.flag, ResponseFlag.UpstreamConnectionFailure);
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal(stat(stats, 'cluster.dead.upstream_cx_connect_fail'), 1);
    assert.equal(stat(stats, 'cluster.dead.upstream_cx_total'), 1);
    assert.equal(stat(stats, 'cluster.dead.upstream_cx_active'), 0);
  } finally {
    await cm.close();
  }
});

async function h2Get(c: Cluster, path: string): Promise<string> {
  const host = c.chooseHost({ hashKey: undefined })!;
  const session = await c.http2Session(host);
  let body = '';
  await new Promise<void>((resolve, reject) => {
    const stream = session.request([':method', 'GET', ':scheme', 'http', ':authority', 'test', ':path', path], true, {
      headers: (_raw, end) => end && resolve(),
      data: (d, end) => {
        body += d.toString('utf8');
        if (end) resolve();
      },
      trailers: () => resolve(),
      streamReset: (reason) => reject(new Error(reason)),
      writable: () => {},
    });
    if (!stream) reject(new Error('session closed'));
  });
  return body;
}

test('http2Session: streams share one session; connect failure is a ProxyError', { timeout: 10_000 }, async () => {
  const server = http2.createServer((req, res) => res.end(`h2 ${req.url}`)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const stats = new StatsStore();
  const extra = 'http2_protocol_options: {}';
  const cm = createClusterManager([staticCluster('h2', port, extra), staticCluster('h2dead', await closedPort(), extra)], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('h2')!;
    assert.equal(c.info.protocol, 'http2');
    const [a, b] = await Promise.all([h2Get(c, '/one'), h2Get(c, '/two')]);
    assert.deepEqual([a, b], ['h2 /one', 'h2 /two']);
    assert.equal(await h2Get(c, '/three'), 'h2 /three');
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_total'), 1);
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_http2_total'), 1);
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_active'), 1);
    const dead = cm.get('h2dead')!;
    await assert.rejects(dead.http2Session(dead.hosts()[0]!), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_CONNECT_FAILURE && e.retryable);
    assert.equal(stat(stats, 'cluster.h2dead.upstream_cx_connect_fail'), 1);
  } finally {
    await cm.close();
    server.close();
  }
  assert.equal(stat(stats, 'cluster.h2.upstream_cx_active'), 0);
});

test('http2Session: max_requests_per_connection — a connection that has had its streams closes once idle, the next request gets a new one', { timeout: 10_000 }, async () => {
  const server = http2.createServer((req, res) => res.end(`h2 ${req.url}`)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const stats = new StatsStore();
  const cm = createClusterManager([staticCluster('h2', port, 'http2_protocol_options: {}\nmax_requests_per_connection: 2')], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('h2')!;
    for (let i = 0; i < 5; i++) assert.equal(await h2Get(c, `/${i}`), `h2 /${i}`);
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_http2_total'), 3);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_active'), 1, 'the used-up connections closed');
  } finally {
    await cm.close();
    server.close();
  }
});

test('http2Session: max_concurrent_streams per connection — a stream past it gets a new connection', { timeout: 10_000 }, async () => {
  const server = http2.createServer((req, res) => setTimeout(() => res.end(`h2 ${req.url}`), 50)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const stats = new StatsStore();
  const cm = createClusterManager([staticCluster('h2', port, 'http2_protocol_options: { max_concurrent_streams: 1 }')], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('h2')!;
    const [a, b] = await Promise.all([h2Get(c, '/one'), h2Get(c, '/two')]);
    assert.deepEqual([a, b], ['h2 /one', 'h2 /two']);
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_http2_total'), 2);
    assert.equal(await h2Get(c, '/three'), 'h2 /three', 'an idle connection is reused');
    assert.equal(stat(stats, 'cluster.h2.upstream_cx_http2_total'), 2);
  } finally {
    await cm.close();
    server.close();
  }
});

test('connect (tcp_proxy): a socket to the host; refused → ProxyError and stats', { timeout: 10_000 }, async () => {
  const server = net.createServer((s) => s.end('tcp-hello')).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const stats = new StatsStore();
  const cm = createClusterManager([staticCluster('tcp', port), staticCluster('tcpdead', await closedPort())], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('tcp')!;
    const sock = await c.connect(c.hosts()[0]!);
    sock.setEncoding('utf8');
    let data = '';
    sock.on('data', (d: string) => (data += d));
    await once(sock, 'close');
    assert.equal(data, 'tcp-hello');
    assert.equal(stat(stats, 'cluster.tcp.upstream_cx_total'), 1);
    assert.equal(stat(stats, 'cluster.tcp.upstream_cx_destroy'), 1);
    assert.equal(stat(stats, 'cluster.tcp.upstream_cx_active'), 0);
    const dead = cm.get('tcpdead')!;
    await assert.rejects(dead.connect(dead.hosts()[0]!), (e: unknown) => e instanceof ProxyError && e.code === ErrorCode.UPSTREAM_CONNECT_FAILURE);
    assert.equal(stat(stats, 'cluster.tcpdead.upstream_cx_connect_fail'), 1);
  } finally {
    await cm.close();
    server.close();
  }
});

test('healthChanged rebuilds the balancer and membership gauges', { timeout: 10_000 }, async () => {
  const stats = new StatsStore();
  const c2 = cluster(`
name: two
load_assignment:
  cluster_name: two
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1001 } } }
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1002 } } }
  - priority: 1
    lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1003 } } }`);
  const cm = createClusterManager([c2], { stats, workerId: 0 });
  try {
    await cm.ready();
    const c = cm.get('two')!;
    assert.equal(stat(stats, 'cluster.two.membership_healthy'), 3);
    for (const h of c.hosts()) if (h.priority === 0) h.health = 'unhealthy';
    c.healthChanged();
    assert.equal(stat(stats, 'cluster.two.membership_healthy'), 1);
    for (let i = 0; i < 20; i++) assert.equal(c.chooseHost({ hashKey: undefined })!.key, '127.0.0.1:1003');
  } finally {
    await cm.close();
  }
});
