// Active health checks of TLS clusters and per-endpoint health_check_config, behind the real
// connection manager and router, against real HTTPS, HTTP/2-over-TLS, gRPC-over-TLS and TLS echo
// upstreams on 127.0.0.1 with certificates the test mints: checks connect over the host's transport
// socket (client certificate, SNI, SAN checks, tls_options ALPN, transport_socket_match_criteria),
// go to the endpoint's health-check address and port, send its hostname, skip endpoints that
// disable them, and mark a host degraded on x-envoy-degraded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import type tls from 'node:tls';
import { once } from 'node:events';
import { stringify } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import { Client, ROUTER_FILTER, startProxy, type Proxy } from '../../filters/http/router/proxy-harness.ts';
import { healthFlagNames } from '../../../src/proxy/upstream/health-check/flags.ts';
import { CLIENT_ID, SERVER_ID, testPki } from '../../helpers/certs.ts';
import { tlsEchoUpstream, upstreamTls } from './tls-upstreams.ts';

const TIMEOUT = { timeout: 20_000 };

const HCM = `
stat_prefix: ingress_http
route_config:
  virtual_hosts:
  - { name: vh, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: up } }] }
${ROUTER_FILTER}`;

interface Check {
  readonly host: string | undefined;
  readonly sni: string | false;
  readonly alpn: string | false | null;
  readonly peerUris: readonly string[];
}

interface HttpsUp {
  readonly port: number;
  /** /healthz answers this status. */
  status: number;
  /** /healthz answers with x-envoy-degraded when set. */
  degraded: boolean;
  readonly checks: Check[];
  hits: number;
  close(): Promise<void>;
}

function uris(s: tls.TLSSocket): string[] {
  const alt = s.getPeerCertificate()?.subjectaltname ?? '';
  return alt
    .split(', ')
    .filter((x) => x.startsWith('URI:'))
    .map((x) => x.slice(4));
}

function checkOf(s: tls.TLSSocket, host: string | undefined): Check {
  return { host, sni: (s as tls.TLSSocket & { servername?: string | false }).servername ?? false, alpn: s.alpnProtocol, peerUris: uris(s) };
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** An HTTPS upstream requiring a client certificate from the test CA; /healthz is the check. */
async function httpsUpstream(cert: { certPem: string; keyPem: string }, ca: string): Promise<HttpsUp> {
  const sockets = new Set<net.Socket>();
  const up: HttpsUp = { port: 0, status: 200, degraded: false, checks: [], hits: 0, close: async () => {} };
  const server = https.createServer({ key: cert.keyPem, cert: cert.certPem, ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      up.checks.push(checkOf(req.socket as tls.TLSSocket, req.headers.host));
      if (up.degraded) res.setHeader('x-envoy-degraded', '');
      res.statusCode = up.status;
      return res.end();
    }
    up.hits++;
    res.end(`tls:${up.port}`);
  });
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  Object.assign(up, { port });
  up.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return up;
}

function flags(proxy: Proxy): string[] {
  return proxy.cm.get('up')!.hosts().map((h) => healthFlagNames(h).join('/') || 'healthy');
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface EndpointOpts {
  readonly port: number;
  /** Endpoint.health_check_config. */
  readonly hc?: Record<string, unknown>;
}

/** A cluster of 127.0.0.1 endpoints with one health check (short intervals). */
function clusterYaml(endpoints: readonly EndpointOpts[], healthCheck: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return stringify({
    name: 'up',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'up',
      endpoints: [{ lb_endpoints: endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: e.port } }, ...(e.hc ? { health_check_config: e.hc } : {}) } })) }],
    },
    health_checks: [{ timeout: '1s', interval: '0.05s', no_traffic_interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, ...healthCheck }],
    ...extra,
  });
}

const http2Options = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

test('HTTP/1.1 checks of an mTLS cluster go over its transport socket: client certificate, SNI, no ALPN; the server\'s SAN is checked', TIMEOUT, async () => {
  const pki = testPki();
  const a = await httpsUpstream(pki.server, pki.ca.certPem);
  const b = await httpsUpstream(pki.server, pki.ca.certPem);
  const tlsSocket = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost', sans: [{ type: 'URI', value: SERVER_ID }] });
  const proxy = await startProxy(HCM, [clusterYaml([{ port: a.port }, { port: b.port }], { http_health_check: { path: '/healthz' } }, { transport_socket: tlsSocket })]);
  const c = new Client('h1', proxy.port);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'healthy']);
    const check = a.checks[0]!;
    assert.deepEqual(check.peerUris, [CLIENT_ID], 'the check presented legate’s client certificate');
    assert.equal(check.sni, 'localhost');
    assert.equal(check.alpn, false, 'a check offers no ALPN unless the context or tls_options names one (Envoy)');
    assert.equal(check.host, 'up', 'Host: the cluster name');
    assert.ok(proxy.counter('cluster.up.ssl.handshake') >= 2, 'handshakes counted in the cluster’s ssl stats');
    b.status = 503;
    await until(() => flags(proxy)[1] === 'failed_active_hc');
    for (let i = 0; i < 6; i++) assert.equal((await c.request({ path: '/' })).body.toString(), `tls:${a.port}`);
    assert.equal(b.hits, 0);
    assert.equal(proxy.counter('cluster.up.health_check.network_failure'), 0);
  } finally {
    c.close();
    await proxy.close();
    await a.close();
    await b.close();
  }
});

test('a TLS check the server\'s certificate fails (SAN mismatch) is a network failure, counted in ssl.fail_verify_san', TIMEOUT, async () => {
  const pki = testPki();
  const a = await httpsUpstream(pki.server, pki.ca.certPem);
  const tlsSocket = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sans: [{ type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/someone-else' }] });
  const proxy = await startProxy(HCM, [clusterYaml([{ port: a.port }], { http_health_check: { path: '/healthz' } }, { transport_socket: tlsSocket })]);
  try {
    assert.deepEqual(flags(proxy), ['failed_active_hc']);
    assert.ok(proxy.counter('cluster.up.health_check.network_failure') >= 1);
    assert.ok(proxy.counter('cluster.up.ssl.fail_verify_san') >= 1);
    assert.equal(a.checks.length, 0, 'no check request was sent to the unverified server');
  } finally {
    await proxy.close();
    await a.close();
  }
});

test('HTTP/2 checks over TLS offer tls_options.alpn_protocols; x-envoy-degraded marks a passing host degraded until it stops', TIMEOUT, async () => {
  const pki = testPki();
  const seen: Check[] = [];
  let degraded = true;
  const server = http2.createSecureServer({ key: pki.server.keyPem, cert: pki.server.certPem, allowHTTP1: false });
  server.on('stream', (stream, headers) => {
    if (headers[':path'] === '/healthz') {
      seen.push(checkOf(stream.session!.socket as tls.TLSSocket, String(headers[':authority'])));
      return void stream.respond({ ':status': 200, ...(degraded ? { 'x-envoy-degraded': '' } : {}) }, { endStream: true });
    }
    stream.respond({ ':status': 200 });
    stream.end('h2');
  });
  server.on('unknownProtocol', (s: net.Socket) => s.destroy());
  const port = await listen(server);
  const tlsSocket = upstreamTls({ ca: pki.ca.certPem, sni: 'localhost' });
  const hc = { http_health_check: { path: '/healthz', host: 'hc.example', codec_client_type: 'HTTP2' }, tls_options: { alpn_protocols: ['h2'] } };
  const proxy = await startProxy(HCM, [clusterYaml([{ port }], hc, { transport_socket: tlsSocket, ...http2Options })]);
  try {
    assert.deepEqual(flags(proxy), ['degraded_active_hc']);
    assert.equal(proxy.cm.get('up')!.hosts()[0]!.health, 'degraded');
    assert.equal(proxy.gauge('cluster.up.health_check.degraded'), 1);
    assert.equal(proxy.gauge('cluster.up.health_check.healthy'), 1, 'a degraded host still passes its checks');
    assert.equal(seen[0]!.alpn, 'h2');
    assert.equal(seen[0]!.sni, 'localhost');
    assert.equal(seen[0]!.host, 'hc.example');
    degraded = false;
    await until(() => flags(proxy)[0] === 'healthy');
    assert.equal(proxy.gauge('cluster.up.health_check.degraded'), 0);
    assert.equal(proxy.counter('cluster.up.health_check.network_failure'), 0);
  } finally {
    await proxy.close();
    server.close();
  }
});

test('gRPC checks over TLS reach a grpc-js TLS server only when tls_options offers h2 (checks get no pool ALPN fallback)', TIMEOUT, async () => {
  const pki = testPki();
  const ident = (b: Buffer): Buffer => b;
  const server = new grpc.Server();
  server.addService(
    { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident } },
    { Check: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from([0x08, 1])) },
  );
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(pki.ca.certPem), [{ private_key: Buffer.from(pki.server.keyPem), cert_chain: Buffer.from(pki.server.certPem) }], true);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))));
  const tlsSocket = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost', sans: [{ type: 'URI', value: SERVER_ID }] });
  const withAlpn = await startProxy(HCM, [clusterYaml([{ port }], { grpc_health_check: {}, tls_options: { alpn_protocols: ['h2'] } }, { transport_socket: tlsSocket, ...http2Options })]);
  try {
    assert.deepEqual(flags(withAlpn), ['healthy']);
    assert.ok(withAlpn.counter('cluster.up.health_check.success') >= 1);
  } finally {
    await withAlpn.close();
  }
  const without = await startProxy(HCM, [clusterYaml([{ port }], { grpc_health_check: {} }, { transport_socket: tlsSocket, ...http2Options })]);
  try {
    assert.deepEqual(flags(without), ['failed_active_hc']);
    assert.ok(without.counter('cluster.up.health_check.network_failure') >= 1);
  } finally {
    await without.close();
    // forceShutdown: the refused connection would hold tryShutdown for grpc-js's 10 s.
    server.forceShutdown();
  }
});

test('TCP checks of a TLS cluster: send/receive over the TLS connection', TIMEOUT, async () => {
  const pki = testPki();
  const echo = await tlsEchoUpstream({ cert: pki.server, clientCa: pki.ca.certPem });
  const tlsSocket = upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost' });
  const hex = Buffer.from('ping').toString('hex');
  const proxy = await startProxy(HCM, [clusterYaml([{ port: echo.port }], { tcp_health_check: { send: { text: hex }, receive: [{ text: hex }] } }, { transport_socket: tlsSocket })]);
  try {
    assert.deepEqual(flags(proxy), ['healthy']);
    assert.deepEqual(echo.seen[0]!.peerUris, [CLIENT_ID]);
    assert.ok(proxy.counter('cluster.up.ssl.handshake') >= 1);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('transport_socket_match_criteria and health_check_config.port_value: plaintext traffic, checks over TLS to another port', TIMEOUT, async () => {
  const pki = testPki();
  const tlsHc = await httpsUpstream(pki.server, pki.ca.certPem);
  let plainChecks = 0;
  const plain = http.createServer((req, res) => {
    if (req.url === '/healthz') plainChecks++;
    res.end('plain');
  });
  const port = await listen(plain);
  const matches = [{ name: 'hc-mtls', match: { purpose: 'hc' }, transport_socket: upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'localhost' }) }];
  const hc = { http_health_check: { path: '/healthz' }, transport_socket_match_criteria: { purpose: 'hc' } };
  const proxy = await startProxy(HCM, [clusterYaml([{ port, hc: { port_value: tlsHc.port } }], hc, { transport_socket_matches: matches })]);
  const c = new Client('h1', proxy.port);
  try {
    assert.deepEqual(flags(proxy), ['healthy']);
    assert.ok(tlsHc.checks.length >= 1);
    assert.deepEqual(tlsHc.checks[0]!.peerUris, [CLIENT_ID], 'the check used the matched mTLS socket');
    assert.equal(plainChecks, 0, 'no check went to the serving port');
    assert.equal((await c.request({ path: '/' })).body.toString(), 'plain', 'traffic stays on the endpoint’s own (plaintext) socket');
    tlsHc.status = 500;
    await until(() => flags(proxy)[0] === 'failed_active_hc');
  } finally {
    c.close();
    await proxy.close();
    await tlsHc.close();
    plain.close();
  }
});

test('health_check_config: address + port, hostname over the check\'s host, and disable_active_health_check', TIMEOUT, async () => {
  interface PlainUp { port: number; checks: Array<string | undefined>; hits: number; server: http.Server }
  const plainUp = async (status: number): Promise<PlainUp> => {
    const up: PlainUp = { port: 0, checks: [], hits: 0, server: http.createServer() };
    up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      if (req.url === '/healthz') {
        up.checks.push(req.headers.host);
        res.statusCode = status;
        return res.end();
      }
      up.hits++;
      res.end(String(up.port));
    });
    up.port = await listen(up.server);
    return up;
  };
  const served = await plainUp(503); // its own /healthz fails: only the health-check address is asked
  const checker = await plainUp(200);
  const unchecked = await plainUp(503); // would fail every check, but none is sent
  const proxy = await startProxy(HCM, [
    clusterYaml(
      [
        { port: served.port, hc: { address: { socket_address: { address: '127.0.0.1', port_value: checker.port } }, hostname: 'ep.example' } },
        { port: unchecked.port, hc: { disable_active_health_check: true } },
      ],
      { http_health_check: { path: '/healthz', host: 'cluster.example' } },
    ),
  ]);
  const c = new Client('h1', proxy.port);
  try {
    assert.deepEqual(flags(proxy), ['healthy', 'healthy']);
    assert.equal(served.checks.length, 0);
    assert.ok(checker.checks.length >= 1);
    assert.equal(checker.checks[0], 'ep.example', 'the endpoint’s hostname wins over the check’s host');
    const bodies = new Set<string>();
    for (let i = 0; i < 20; i++) bodies.add((await c.request({ path: '/' })).body.toString());
    assert.deepEqual([...bodies].sort(), [String(served.port), String(unchecked.port)].sort(), 'the unchecked host takes traffic');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(unchecked.checks.length, 0, 'no check reached the endpoint that disables them');
    assert.equal(proxy.gauge('cluster.up.health_check.healthy'), 1, 'only checked hosts count');
  } finally {
    c.close();
    await proxy.close();
    for (const u of [served, checker, unchecked]) u.server.close();
  }
});

test('config: a health_check_config address must be an IP socket address', TIMEOUT, async () => {
  await assert.rejects(
    startProxy(HCM, [clusterYaml([{ port: 1, hc: { address: { socket_address: { address: 'checker.example', port_value: 80 } } } }], { tcp_health_check: {} })]),
    /health_check_config\.address\.socket_address\.address.*malformed IP address/,
  );
});
