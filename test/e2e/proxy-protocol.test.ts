// envoy.filters.listener.proxy_protocol behind a real HAProxy that sends PROXY headers (send-proxy,
// send-proxy-v2): legate sees the client's address as the remote one and HAProxy's frontend as the
// local one, while %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% stays HAProxy; the header never reaches the
// upstream; connections without a header, with a malformed one or with a disallowed version are
// closed and counted under proxy_proto.<stat_prefix>.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { startLegate } from '../helpers/legate.ts';
import { hcm, socketAddress, TCP_PROXY_TYPE } from '../helpers/config.ts';
import { freePort } from '../helpers/xds/e2e.ts';
import { debianBinary } from '../helpers/debian.ts';

const PROXY_PROTOCOL_TYPE = 'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol';

const addressesRoute = {
  name: 'r',
  virtual_hosts: [{
    name: 'v',
    domains: ['*'],
    routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }],
    response_headers_to_add: [
      { header: { key: 'x-remote', value: '%DOWNSTREAM_REMOTE_ADDRESS%' } },
      { header: { key: 'x-direct', value: '%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%' } },
      { header: { key: 'x-local', value: '%DOWNSTREAM_LOCAL_ADDRESS%' } },
    ],
  }],
};

/** HAProxy in TCP mode, one `listen` section per [frontend port, backend port, server options]. */
async function startHaproxy(sections: ReadonlyArray<readonly [number, number, string]>): Promise<{ stop(): Promise<void> }> {
  const bin = debianBinary('haproxy', 'haproxy');
  const dir = mkdtempSync(join(tmpdir(), 'legate-haproxy-'));
  const conf = [
    'global', '  nbthread 1',
    'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
    ...sections.flatMap(([front, back, opts], i) => [`listen l${i}`, `  bind 127.0.0.1:${front}`, `  server s 127.0.0.1:${back} ${opts}`]),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), conf);
  const child = spawn(bin, ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const deadline = Date.now() + 10_000;
  for (const [front] of sections) {
    for (;;) {
      const ok = await new Promise<boolean>((r) => net.connect(front, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); r(true); }).once('error', () => r(false)));
      if (ok) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`HAProxy did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One HTTP/1.1 request on a raw socket: the response's headers, and the socket's own local port. */
async function get(port: number): Promise<{ headers: Record<string, string>; localPort: number }> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  const localPort = (s.address() as AddressInfo).port;
  s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  let text = '';
  for await (const c of s) text += String(c);
  const headers: Record<string, string> = {};
  for (const line of text.split('\r\n\r\n')[0]!.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, localPort };
}

/** Sends `data`, half-closes, and returns everything read until the peer closes ('' when it closed at once). */
async function exchange(port: number, data: string | Buffer): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.end(data);
  let got = '';
  for await (const c of s) got += String(c);
  return got;
}

test('behind HAProxy send-proxy and send-proxy-v2: the client is the remote address, HAProxy the direct one; bad or missing headers close the connection', { timeout: 120_000 }, async () => {
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const legate = await startLegate({
    static_resources: {
      listeners: [
        {
          name: 'http_pp',
          address: socketAddress(0),
          listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE, stat_prefix: 'edge' } }],
          filter_chains: [{ filters: [hcm(addressesRoute)] }],
        },
        {
          name: 'tcp_pp',
          address: socketAddress(0),
          listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol', typed_config: { '@type': PROXY_PROTOCOL_TYPE, stat_prefix: 'tcp', allow_requests_without_proxy_protocol: true, disallowed_versions: ['V1'] } }],
          filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'echo', cluster: 'echo' } }] }],
        },
      ],
      clusters: [{ name: 'echo', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'echo', endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress((echo.address() as AddressInfo).port) } }] }] } }],
    },
    admin: { address: socketAddress(0) },
  });
  const httpPort = await legate.listenerPort('http_pp');
  const tcpPort = await legate.listenerPort('tcp_pp');
  const [v1Front, v2Front, v2TcpFront, v1TcpFront] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const haproxy = await startHaproxy([
    [v1Front, httpPort, 'send-proxy'],
    [v2Front, httpPort, 'send-proxy-v2 proxy-v2-options unique-id'],
    [v2TcpFront, tcpPort, 'send-proxy-v2'],
    [v1TcpFront, tcpPort, 'send-proxy'],
  ]);
  // HAProxy's readiness probes above reached legate too: count from here.
  await new Promise((r) => setTimeout(r, 200));
  const before = await legate.stats();
  try {
    for (const front of [v1Front, v2Front]) {
      const { headers, localPort } = await get(front);
      assert.equal(headers['x-remote'], `127.0.0.1:${localPort}`, 'the remote address is the client HAProxy saw');
      assert.equal(headers['x-local'], `127.0.0.1:${front}`, 'the local address is the HAProxy frontend the client reached');
      assert.match(headers['x-direct'] ?? '', /^127\.0\.0\.1:\d+$/);
      assert.notEqual(headers['x-direct'], headers['x-remote'], 'the direct remote address stays HAProxy’s own connection');
    }
    // The header is taken off the stream: the echo server gets the client's bytes only.
    assert.equal(await exchange(v2TcpFront, 'hello through v2'), 'hello through v2');
    assert.equal(await exchange(tcpPort, 'hello without a header'), 'hello without a header', 'allow_requests_without_proxy_protocol');
    assert.equal(await exchange(v1TcpFront, 'not echoed'), '', 'version 1 is disallowed on this listener');
    assert.equal(await exchange(httpPort, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n'), '', 'no header, not allowed');
    assert.equal(await exchange(httpPort, 'PROXY TCP4 10.0.0.1 nonsense 1 2\r\nGET / HTTP/1.1\r\n\r\n'), '', 'a malformed header');

    const after = await legate.stats();
    const d = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0);
    assert.equal(d('proxy_proto.edge.versions.v1.found'), 1);
    assert.equal(d('proxy_proto.edge.versions.v2.found'), 1);
    assert.equal(d('proxy_proto.edge.not_found_disallowed'), 1);
    assert.equal(d('proxy_proto.edge.versions.v1.error'), 1);
    assert.equal(d('proxy_proto.tcp.versions.v2.found'), 1);
    assert.equal(d('proxy_proto.tcp.not_found_allowed'), 1);
    assert.equal(d('proxy_proto.tcp.versions.v1.disallowed'), 1);
    assert.equal(d(`listener.127.0.0.1_${httpPort}.downstream_listener_filter_error`), 2);
  } finally {
    await haproxy.stop();
    await legate.stop();
    echo.close();
  }
});
