import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { parse as parseYaml } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { formatErrors } from '../../../../src/config/result.ts';
import type { Cluster__Output } from '../../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { TcpProxy__Output } from '../../../../src/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.ts';
import { parseCluster } from '../../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../../src/proxy/upstream/cluster-manager.ts';
import type { ClusterConfig, ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { type StreamInfo, newStreamInfo } from '../../../../src/proxy/http/stream-info.ts';
import { type TcpProxyConfig, parseTcpProxy, pickCluster } from '../../../../src/filters/network/tcp_proxy/config.ts';
import { TcpProxyFactory } from '../../../../src/filters/network/tcp_proxy/filter.ts';
import { registerTcpProxy } from '../../../../src/filters/network/tcp_proxy/index.ts';
import { ExtensionRegistry } from '../../../../src/filters/registry.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';
import { relayModeTest } from '../../../helpers/tcp-relay-modes.ts';

function clusterConfig(name: string, ports: number[]): ClusterConfig {
  const eps = ports.map((p) => `    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`).join('\n');
  const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parseYaml(`
name: ${name}
connect_timeout: 1s
load_assignment:
  cluster_name: ${name}
  endpoints:
  - lb_endpoints:
${eps}
`));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = parseCluster(d.value, 'c');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function tcpProxy(yamlText: string, clusterNames?: string[]): TcpProxyConfig {
  const d = decodeJson<TcpProxy__Output>('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', parseYaml(yamlText));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = parseTcpProxy(d.value, { path: 'tcp', clusterNames: clusterNames ? new Set(clusterNames) : undefined });
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Upstream that echoes, optionally not reading for `stallMs` first (to force backpressure). */
function echoServer(stallMs = 0): net.Server {
  return net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    if (stallMs > 0) {
      s.pause();
      setTimeout(() => s.pipe(s), stallMs);
    } else s.pipe(s);
  });
}

interface Harness {
  port: number;
  stats: StatsStore;
  cm: ClusterManager;
  infos: StreamInfo[];
  /** Resolves each StreamInfo once its access log would have been written. */
  close(): Promise<void>;
}

async function proxy(config: TcpProxyConfig, clusters: ClusterConfig[]): Promise<Harness> {
  const stats = new StatsStore();
  const cm = createClusterManager(clusters, { stats, workerId: 0 });
  await cm.ready();
  const factory = new TcpProxyFactory(config, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  const infos: StreamInfo[] = [];
  let id = 0;
  // Default allowHalfOpen (false), as a listener may create it: tcp_proxy must cope.
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const info = newStreamInfo({
      downstreamRemote: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
      downstreamLocal: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      connectionId: id++,
    });
    infos.push(info);
    factory.takeOver(config, { socket, streamInfo: info, bufferLimitBytes: 1024 * 1024, continueReading: () => socket.resume(), close: (m) => (m === 'flush' ? socket.end() : socket.destroy()) });
  });
  const port = await listen(server);
  return {
    port,
    stats,
    cm,
    infos,
    async close() {
      server.close();
      await factory.close();
      await cm.close();
    },
  };
}

/** Connects, sends `data` (then FIN if `end`), and collects everything until the proxy closes. */
async function roundTrip(port: number, data: Buffer | string, end = true): Promise<Buffer> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.on('error', () => {});
  c.on('end', () => c.end());
  await once(c, 'connect');
  if (end) c.end(data);
  else c.write(data);
  await once(c, 'close');
  return Buffer.concat(chunks);
}

const waitFor = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

relayModeTest('tcp_proxy: bytes both ways, stats, StreamInfo and access log', async (t) => {
  const upstream = echoServer();
  const upPort = await listen(upstream);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'legate-tcp-'));
  const logPath = path.join(dir, 'access.log');
  const h = await proxy(
    tcpProxy(`
stat_prefix: echo_tcp
cluster: echo
access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${logPath}
    log_format: { text_format_source: { inline_string: "%UPSTREAM_CLUSTER% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS%\\n" } }
`, ['echo']),
    [clusterConfig('echo', [upPort])],
  );
  t.after(async () => {
    await h.close();
    upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const got = await roundTrip(h.port, 'hello proxy');
  assert.equal(got.toString(), 'hello proxy');
  await waitFor(() => h.infos[0]?.durationMs !== undefined);
  const c = h.stats.snapshot().counters;
  assert.equal(c['tcp.echo_tcp.downstream_cx_total'], 1);
  assert.equal(c['tcp.echo_tcp.downstream_cx_rx_bytes_total'], 11);
  assert.equal(c['tcp.echo_tcp.downstream_cx_tx_bytes_total'], 11);
  assert.equal(c['cluster.echo.upstream_cx_total'], 1);
  assert.equal(h.stats.snapshot().gauges['tcp.echo_tcp.downstream_cx_tx_bytes_buffered'], 0);
  const info = h.infos[0]!;
  assert.equal(info.clusterName, 'echo');
  assert.deepEqual(info.upstreamHost, { address: '127.0.0.1', port: upPort });
  assert.equal(info.bytesReceived, 11);
  assert.equal(info.bytesSent, 11);
  assert.equal(info.responseFlags.size, 0);
  await h.close();
  assert.equal(fs.readFileSync(logPath, 'utf8'), 'echo 11 11 -\n');
});

relayModeTest('tcp_proxy: 10 MiB both ways through a stalled upstream (backpressure)', async (t) => {
  const upstream = echoServer(300);
  const upPort = await listen(upstream);
  const h = await proxy(tcpProxy('stat_prefix: big\ncluster: echo\n'), [clusterConfig('echo', [upPort])]);
  t.after(async () => {
    await h.close();
    upstream.close();
  });
  const payload = crypto.randomBytes(10 * 1024 * 1024);
  const c = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
  const hash = crypto.createHash('sha256');
  let received = 0;
  c.on('data', (d: Buffer) => {
    hash.update(d);
    received += d.length;
  });
  await once(c, 'connect');
  c.end(payload);
  await once(c, 'close');
  assert.equal(received, payload.length);
  assert.equal(hash.digest('hex'), crypto.createHash('sha256').update(payload).digest('hex'));
  const counters = h.stats.snapshot().counters;
  assert.ok((counters['tcp.big.downstream_flow_control_paused_reading_total'] ?? 0) >= 1, 'paused reading at least once');
  assert.equal(counters['tcp.big.downstream_flow_control_resumed_reading_total'], counters['tcp.big.downstream_flow_control_paused_reading_total']);
  assert.equal(counters['tcp.big.downstream_cx_rx_bytes_total'], payload.length);
  assert.equal(counters['tcp.big.downstream_cx_tx_bytes_total'], payload.length);
});

relayModeTest('tcp_proxy: half-close — client FIN, then still receives the server reply', async (t) => {
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => setTimeout(() => s.end(`got:${got}`), 50));
  });
  const upPort = await listen(upstream);
  const h = await proxy(tcpProxy('stat_prefix: half\ncluster: c\n'), [clusterConfig('c', [upPort])]);
  t.after(async () => {
    await h.close();
    upstream.close();
  });
  assert.equal((await roundTrip(h.port, 'request')).toString(), 'got:request');

  // And the other way: the server finishes first, the client keeps sending.
  const early = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.end('server-first;');
    s.on('data', (d) => (got += d));
    s.on('end', () => fs.writeFileSync(path.join(os.tmpdir(), `legate-half-${process.pid}`), got));
  });
  const earlyPort = await listen(early);
  t.after(() => early.close());
  const h2 = await proxy(tcpProxy('stat_prefix: half2\ncluster: c\n'), [clusterConfig('c', [earlyPort])]);
  t.after(() => h2.close());
  const c = net.connect({ port: h2.port, host: '127.0.0.1', allowHalfOpen: true });
  let got = '';
  c.on('data', (d) => (got += d));
  await once(c, 'end');
  c.end('client-after-server-fin');
  await once(c, 'close');
  assert.equal(got, 'server-first;');
  const file = path.join(os.tmpdir(), `legate-half-${process.pid}`);
  await waitFor(() => fs.existsSync(file));
  assert.equal(fs.readFileSync(file, 'utf8'), 'client-after-server-fin');
  fs.rmSync(file);
});

test('tcp_proxy: weighted_clusters spread connections by weight', async (t) => {
  const named = (name: string) => net.createServer((s) => s.end(name));
  const a = named('a');
  const b = named('b');
  const [pa, pb] = [await listen(a), await listen(b)];
  const cfg = tcpProxy(`
stat_prefix: w
weighted_clusters:
  clusters:
  - { name: a, weight: 1 }
  - { name: b, weight: 3 }
`);
  assert.equal(pickCluster(cfg, 0), 'a');
  assert.equal(pickCluster(cfg, 0.249), 'a');
  assert.equal(pickCluster(cfg, 0.25), 'b');
  assert.equal(pickCluster(cfg, 0.999), 'b');
  const h = await proxy(cfg, [clusterConfig('a', [pa]), clusterConfig('b', [pb])]);
  t.after(async () => {
    await h.close();
    a.close();
    b.close();
  });
  const results = await Promise.all(Array.from({ length: 80 }, () => roundTrip(h.port, '', true)));
  const bs = results.filter((r) => r.toString() === 'b').length;
  const as = results.filter((r) => r.toString() === 'a').length;
  assert.equal(as + bs, 80);
  assert.ok(bs > 40 && bs < 75, `b got ${bs}/80`);
});

test('tcp_proxy: connect failure closes the client, counts, flags UF; retries reach a live host', async (t) => {
  const dead = net.createServer();
  const deadPort = await listen(dead);
  dead.close();
  await once(dead, 'close');
  const h = await proxy(tcpProxy('stat_prefix: fail\ncluster: dead\n'), [clusterConfig('dead', [deadPort])]);
  t.after(() => h.close());
  const got = await roundTrip(h.port, 'x', false);
  assert.equal(got.length, 0);
  await waitFor(() => h.infos[0]?.durationMs !== undefined);
  assert.ok(h.infos[0]!.responseFlags.has('UF'));
  const c = h.stats.snapshot().counters;
  assert.equal(c['cluster.dead.upstream_cx_connect_fail'], 1);
  assert.equal(c['cluster.dead.upstream_cx_connect_attempts_exceeded'], 1);
  assert.equal(c['tcp.fail.downstream_cx_total'], 1);

  const upstream = echoServer();
  const upPort = await listen(upstream);
  t.after(() => upstream.close());
  const h2 = await proxy(tcpProxy('stat_prefix: retry\ncluster: mixed\nmax_connect_attempts: 2\n'), [clusterConfig('mixed', [deadPort, upPort])]);
  t.after(() => h2.close());
  for (let i = 0; i < 4; i++) assert.equal((await roundTrip(h2.port, `r${i}`)).toString(), `r${i}`);
  assert.ok((h2.stats.snapshot().counters['cluster.mixed.upstream_cx_connect_fail'] ?? 0) >= 1);
});

test('tcp_proxy: cluster missing at run time → downstream_cx_no_route, NC', async (t) => {
  const h = await proxy(tcpProxy('stat_prefix: nr\ncluster: nowhere\n'), []);
  t.after(() => h.close());
  assert.equal((await roundTrip(h.port, 'x', false)).length, 0);
  await waitFor(() => h.infos[0]?.durationMs !== undefined);
  assert.equal(h.stats.snapshot().counters['tcp.nr.downstream_cx_no_route'], 1);
  assert.ok(h.infos[0]!.responseFlags.has('NC'));
});

relayModeTest('tcp_proxy: idle timeout closes both sides and counts', async (t) => {
  const upstream = echoServer();
  const upPort = await listen(upstream);
  const h = await proxy(tcpProxy('stat_prefix: idle\ncluster: c\nidle_timeout: 0.2s\n'), [clusterConfig('c', [upPort])]);
  t.after(async () => {
    await h.close();
    upstream.close();
  });
  const started = Date.now();
  const c = net.connect({ port: h.port, host: '127.0.0.1' });
  let echoed = '';
  c.on('data', (d) => (echoed += d));
  await once(c, 'connect');
  // Traffic at 100 ms keeps it alive past 200 ms.
  setTimeout(() => c.write('ping'), 100);
  await once(c, 'close');
  const elapsed = Date.now() - started;
  assert.equal(echoed, 'ping');
  assert.ok(elapsed >= 280 && elapsed < 1500, `closed after ${elapsed} ms`);
  assert.equal(h.stats.snapshot().counters['tcp.idle.idle_timeout'], 1);
});

test('tcp_proxy config: defaults and errors with paths', () => {
  const cfg = tcpProxy('stat_prefix: s\ncluster: c\n');
  assert.equal(cfg.idleTimeoutMs, 60 * 60 * 1000);
  assert.equal(cfg.maxConnectAttempts, 1);
  assert.ok(Object.isFrozen(cfg));
  assert.equal(tcpProxy('stat_prefix: s\ncluster: c\nidle_timeout: 0s\n').idleTimeoutMs, 0);

  const errs = (y: string, names?: string[]): string => {
    const d = decodeJson<TcpProxy__Output>('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', parseYaml(y), { path: 'f.typed_config' });
    if (!d.ok) return formatErrors(d.errors); // some rules are PGV's, checked by the decoder
    const r = parseTcpProxy(d.value, { path: 'f.typed_config', clusterNames: names ? new Set(names) : undefined });
    assert.equal(r.ok, false);
    return r.ok ? '' : formatErrors(r.errors);
  };
  assert.match(errs('cluster: c\n'), /f\.typed_config\.stat_prefix: value length must be at least 1/);
  assert.match(errs('stat_prefix: s\ncluster: other\n', ['c']), /f\.typed_config\.cluster: unknown cluster 'other'/);
  assert.match(errs('stat_prefix: s\n'), /cluster_specifier|\[cluster, weighted_clusters\]/);
  assert.match(errs('stat_prefix: s\nweighted_clusters: { clusters: [{ name: a, weight: 0 }] }\n'), /weighted_clusters\.clusters\[0\]\.weight/);
  assert.match(errs('stat_prefix: s\nweighted_clusters: { clusters: [{ name: zz, weight: 1 }] }\n', ['a']), /weighted_clusters\.clusters\[0\]\.name: unknown cluster 'zz'/);
  assert.match(errs('stat_prefix: s\ncluster: c\nmax_connect_attempts: 0\n'), /max_connect_attempts/);
  assert.match(errs('stat_prefix: s\ncluster: c\ntunneling_config: { hostname: h }\n'), /tunneling_config/);

  const reg = new ExtensionRegistry();
  registerTcpProxy(reg);
  assert.equal(reg.find('network', 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', undefined)?.name, 'envoy.filters.network.tcp_proxy');
  assert.equal(reg.find('network', undefined, 'envoy.tcp_proxy')?.name, 'envoy.filters.network.tcp_proxy');
});

relayModeTest('tcp_proxy after listener filters: peeked bytes reach the upstream first', async (t) => {
  const { runListenerFilters } = await import('../../../../src/proxy/listener/listener-filters.ts');
  const { TlsInspector } = await import('../../../../src/filters/listener/tls_inspector/filter.ts');
  const { HttpInspector } = await import('../../../../src/filters/listener/http_inspector/filter.ts');
  const upstream = echoServer();
  const upPort = await listen(upstream);
  const stats = new StatsStore();
  const cm = createClusterManager([clusterConfig('c', [upPort])], { stats, workerId: 0 });
  await cm.ready();
  const config = tcpProxy('stat_prefix: lf\ncluster: c\n');
  const factory = new TcpProxyFactory(config, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  const alpn: string[][] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    void runListenerFilters(socket, [new TlsInspector({ statPrefix: 'tls_inspector.' }, stats), new HttpInspector({ statPrefix: 'http_inspector.' }, stats)], 2000, false).then((input) => {
      if (!input) return;
      alpn.push([...input.applicationProtocols]);
      const info = newStreamInfo({ downstreamRemote: { address: input.sourceIp, port: input.sourcePort }, downstreamLocal: { address: input.destinationIp, port: input.destinationPort }, connectionId: 1 });
      factory.takeOver(config, { socket, streamInfo: info, bufferLimitBytes: 1024 * 1024, continueReading: () => socket.resume(), close: () => socket.destroy() });
    });
  });
  const port = await listen(server);
  t.after(async () => {
    server.close();
    await factory.close();
    await cm.close();
    upstream.close();
  });
  const req = 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n';
  // No FIN with the request: a FIN read before tcp_proxy takes over keeps the JS pumps (the C
  // relay starts only on open sockets), and the peeked bytes must reach the upstream either way.
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let echoed = '';
  c.on('data', (d: Buffer) => (echoed += d.toString()));
  c.on('end', () => c.end());
  await once(c, 'connect');
  c.write(req);
  await waitFor(() => echoed.length >= req.length);
  c.end();
  await once(c, 'close');
  assert.equal(echoed, req);
  assert.deepEqual(alpn, [['http/1.1']]);
  assert.equal(stats.snapshot().counters['tcp.lf.downstream_cx_rx_bytes_total'], req.length);
});

relayModeTest('tcp_proxy: closing the filter (listener stop) closes live connections', async (t) => {
  const upstream = echoServer();
  const upPort = await listen(upstream);
  const h = await proxy(tcpProxy('stat_prefix: stop\ncluster: echo\n'), [clusterConfig('echo', [upPort])]);
  t.after(() => upstream.close());
  const c = net.connect({ port: h.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  c.write('before');
  await once(c, 'data');
  const closed = new Promise((r) => c.once('close', r));
  await h.close();
  await closed;
  await waitFor(() => h.infos[0]?.durationMs !== undefined);
  assert.equal(h.infos[0]!.bytesReceived, 6);
});
