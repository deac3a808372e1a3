// Active health checking behind the real connection manager and router: upstreams that fail their
// checks on purpose (HTTP /healthz toggled, TCP payloads, gRPC grpc.health.v1 NOT_SERVING), with
// short intervals. Asserts routing, host flags and Envoy's health_check.* stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Client, ROUTER_FILTER, startProxy, type Proxy } from '../../filters/http/router/proxy-harness.ts';
import { healthFlagNames } from '../../../src/proxy/upstream/health-check/flags.ts';

const TIMEOUT = { timeout: 20_000 };

interface Up {
  port: number;
  hits: number;
  healthz: number;
  checks: number;
  lastCheck: http.IncomingHttpHeaders | undefined;
  close(): Promise<void>;
}

async function upstream(healthz: number): Promise<Up> {
  const up: Up = { port: 0, hits: 0, healthz, checks: 0, lastCheck: undefined, close: async () => {} };
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      up.checks++;
      up.lastCheck = req.headers;
      res.statusCode = up.healthz;
      return res.end();
    }
    up.hits++;
    res.end(String(up.port));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  up.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

function hcm(): string {
  return `
stat_prefix: ingress_http
route_config:
  virtual_hosts:
  - { name: vh, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: up } }] }
${ROUTER_FILTER}`;
}

function cluster(ports: number[], healthCheck: string, extra = ''): string {
  return `
name: up
connect_timeout: 1s
load_assignment:
  cluster_name: up
  endpoints:
  - lb_endpoints:
${ports.map((p) => `    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`).join('\n')}
health_checks:
- timeout: 0.3s
  interval: 0.05s
  no_traffic_interval: 0.05s
  unhealthy_threshold: 2
  healthy_threshold: 2
  ${healthCheck}
${extra}`;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function flags(proxy: Proxy): string[] {
  return proxy.cm.get('up')!.hosts().map((h) => healthFlagNames(h).join('/') || 'healthy');
}

test('HTTP: a host failing /healthz is skipped, and restored after healthy_threshold passes', TIMEOUT, async () => {
  const a = await upstream(200);
  const b = await upstream(503);
  const proxy = await startProxy(hcm(), [
    cluster([a.port, b.port], `http_health_check: { path: /healthz, host: hc.example, request_headers_to_add: [{ header: { key: x-hc, value: "1" } }] }`),
  ]);
  const c = new Client('h1', proxy.port);
  const hc = (n: string): number => proxy.counter(`cluster.up.health_check.${n}`);
  try {
    // The cluster warmed after the first round: b already failed (a non-expected status fails at once).
    assert.deepEqual(flags(proxy), ['healthy', 'failed_active_hc']);
    assert.equal(proxy.gauge('cluster.up.health_check.healthy'), 1);
    assert.equal(a.lastCheck?.host, 'hc.example');
    assert.equal(a.lastCheck?.['user-agent'], 'Envoy/HC');
    assert.equal(a.lastCheck?.['x-hc'], '1');
    for (let i = 0; i < 20; i++) assert.equal((await c.request({ path: '/' })).body.toString(), String(a.port));
    assert.equal(b.hits, 0);
    assert.ok(hc('failure') >= 1);
    assert.ok(hc('success') >= 1);
    b.healthz = 200;
    const checksBefore = b.checks;
    await until(() => proxy.gauge('cluster.up.health_check.healthy') === 2);
    assert.ok(b.checks - checksBefore >= 2, 'healthy_threshold passes were needed');
    assert.deepEqual(flags(proxy), ['healthy', 'healthy']);
    for (let i = 0; i < 20; i++) await c.request({ path: '/' });
    assert.ok(b.hits > 0, 'restored host takes traffic');
    assert.ok(hc('attempt') >= hc('success') + hc('failure'));
    assert.equal(hc('network_failure'), 0);
  } finally {
    c.close();
    await proxy.close();
    await a.close();
    await b.close();
  }
});

test('HTTP over HTTP/2 (codec_client_type: HTTP2): h2c checks on one reused session per host; expected_statuses ranges', TIMEOUT, async () => {
  const http2 = await import('node:http2');
  interface H2Up { port: number; status: number; checks: number; sessions: number; authority?: string; version?: string; server: import('node:http2').Http2Server }
  const h2up = async (status: number): Promise<H2Up> => {
    const server = http2.createServer();
    const up: H2Up = { port: 0, status, checks: 0, sessions: 0, server };
    server.on('session', () => up.sessions++);
    server.on('request', (req, res) => {
      if (req.url === '/healthz') {
        up.checks++;
        up.authority = req.headers[':authority'];
        up.version = req.httpVersion;
        res.statusCode = up.status;
        return res.end();
      }
      res.end(String(up.port));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    up.port = (server.address() as AddressInfo).port;
    return up;
  };
  const a = await h2up(204);
  const b = await h2up(302);
  // 200-299 and 204 as [start, end): a (204) passes, b (302) fails.
  const proxy = await startProxy(hcm(), [
    cluster([a.port, b.port], 'http_health_check: { path: /healthz, host: hc.example, codec_client_type: HTTP2, expected_statuses: [{ start: 200, end: 300 }] }', 'http2_protocol_options: {}'),
  ]);
  const c = new Client('h1', proxy.port);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'failed_active_hc']);
    assert.equal(a.version, '2.0');
    assert.equal(a.authority, 'hc.example');
    for (let i = 0; i < 10; i++) assert.equal((await c.request({ path: '/' })).body.toString(), String(a.port));
    b.status = 200;
    await until(() => proxy.gauge('cluster.up.health_check.healthy') === 2);
    assert.ok(a.checks >= 3 && b.checks >= 3, `checks a ${a.checks}, b ${b.checks}`);
    // reuse_connection (default true): the checks ran as streams on one session per host (b took
    // no traffic; a also has the router's session).
    assert.equal(b.sessions, 1, `b: ${b.sessions} sessions for ${b.checks} checks`);
    assert.ok(a.sessions <= 2, `a: ${a.sessions} sessions`);
    assert.equal(proxy.counter('cluster.up.health_check.network_failure'), 0);
  } finally {
    c.close();
    await proxy.close();
    for (const u of [a, b]) await new Promise<void>((r) => u.server.close(() => r()));
  }
});

test('HTTP: a check that times out sets failed_active_hc and active_hc_timeout, counted as a network failure', TIMEOUT, async () => {
  const a = await upstream(200);
  // Accepts and never answers: every check times out.
  const hang = net.createServer(() => {});
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const hangPort = (hang.address() as AddressInfo).port;
  const proxy = await startProxy(hcm(), [cluster([a.port, hangPort], `http_health_check: { path: /healthz }`).replace('timeout: 0.3s', 'timeout: 0.05s')]);
  try {
    await until(() => flags(proxy)[1] === 'failed_active_hc/active_hc_timeout');
    assert.ok(proxy.counter('cluster.up.health_check.network_failure') >= 1);
    assert.equal(flags(proxy)[0], 'healthy');
  } finally {
    await proxy.close();
    await a.close();
    hang.close();
  }
});

test('panic threshold: with every host failing its checks, traffic still reaches all of them', TIMEOUT, async () => {
  const a = await upstream(500);
  const b = await upstream(500);
  const proxy = await startProxy(hcm(), [cluster([a.port, b.port], `http_health_check: { path: /healthz }`)]);
  const c = new Client('h1', proxy.port);
  try {
    assert.deepEqual(flags(proxy), ['failed_active_hc', 'failed_active_hc']);
    assert.equal(proxy.gauge('cluster.up.membership_healthy'), 0);
    for (let i = 0; i < 30; i++) assert.equal((await c.request({ path: '/' })).status, 200);
    assert.ok(a.hits > 0 && b.hits > 0, `panic spreads over all hosts (${a.hits}/${b.hits})`);
    assert.equal(proxy.counter('cluster.up.lb_healthy_panic'), 30, 'each pick in panic is counted');
  } finally {
    c.close();
    await proxy.close();
    await a.close();
    await b.close();
  }
});

test('panic threshold honours common_lb_config.healthy_panic_threshold: 0 disables panic', TIMEOUT, async () => {
  const a = await upstream(500);
  const b = await upstream(500);
  const proxy = await startProxy(hcm(), [cluster([a.port, b.port], `http_health_check: { path: /healthz }`, 'common_lb_config: { healthy_panic_threshold: { value: 0 } }')]);
  const c = new Client('h1', proxy.port);
  try {
    const r = await c.request({ path: '/' });
    assert.equal(r.status, 503, 'no healthy upstream');
    assert.equal(a.hits + b.hits, 0);
  } finally {
    c.close();
    await proxy.close();
    await a.close();
    await b.close();
  }
});

async function tcpServer(onData: (sock: net.Socket, d: Buffer) => void): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('data', (d) => onData(sock, d));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as AddressInfo).port,
    close: () => {
      for (const x of sockets) x.destroy();
      s.close();
    },
  };
}

test('TCP: send/receive hex payloads; a wrong answer times out and fails', TIMEOUT, async () => {
  const ping = Buffer.from('ping').toString('hex');
  const pong = Buffer.from('pong').toString('hex');
  const good = await tcpServer((sock, d) => d.toString() === 'ping' && sock.write('po'.concat('ng')));
  const wrong = await tcpServer((sock) => sock.write('nope'));
  const proxy = await startProxy(hcm(), [
    cluster([good.port, wrong.port], `tcp_health_check: { send: { text: "${ping}" }, receive: [{ text: "${pong}" }] }`).replace('timeout: 0.3s', 'timeout: 0.1s').replace('unhealthy_threshold: 2', 'unhealthy_threshold: 1'),
  ]);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'failed_active_hc/active_hc_timeout']);
    assert.ok(proxy.counter('cluster.up.health_check.network_failure') >= 1);
    assert.ok(proxy.counter('cluster.up.health_check.success') >= 1);
  } finally {
    await proxy.close();
    good.close();
    wrong.close();
  }
});

test('TCP: connect-only check; a refused connection counts as a network failure', TIMEOUT, async () => {
  const good = await tcpServer(() => {});
  const gone = await tcpServer(() => {});
  const gonePort = gone.port;
  gone.close();
  const proxy = await startProxy(hcm(), [cluster([good.port, gonePort], 'tcp_health_check: {}').replace('unhealthy_threshold: 2', 'unhealthy_threshold: 1')]);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'failed_active_hc']);
    assert.ok(proxy.counter('cluster.up.health_check.network_failure') >= 1);
  } finally {
    await proxy.close();
    good.close();
  }
});

async function grpcHealthServer(status: () => number): Promise<{ port: number; services: string[]; close(): Promise<void> }> {
  const services: string[] = [];
  const server = new grpc.Server();
  const ident = (b: Buffer): Buffer => b;
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: ident,
        requestDeserialize: ident,
        responseSerialize: ident,
        responseDeserialize: ident,
      },
    },
    {
      Check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const req = call.request;
        services.push(req.length > 2 ? req.subarray(2, 2 + req[1]!).toString() : '');
        cb(null, Buffer.from([0x08, status()]));
      },
    },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, services, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

test('gRPC: grpc.health.v1 SERVING passes, NOT_SERVING fails; service_name is sent', TIMEOUT, async () => {
  let bStatus = 2; // NOT_SERVING
  const a = await grpcHealthServer(() => 1);
  const b = await grpcHealthServer(() => bStatus);
  const proxy = await startProxy(hcm(), [cluster([a.port, b.port], 'grpc_health_check: { service_name: svc.v1 }', 'http2_protocol_options: {}')]);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'failed_active_hc']);
    assert.equal(a.services[0], 'svc.v1');
    bStatus = 1;
    await until(() => flags(proxy)[1] === 'healthy');
    assert.equal(proxy.gauge('cluster.up.health_check.healthy'), 2);
  } finally {
    await proxy.close();
    await a.close();
    await b.close();
  }
});
