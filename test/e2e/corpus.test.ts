// The shared corpus of real Envoy configs: each validates, or fails naming only features that
// later issues bring. The ones whose upstreams a test can stand up on 127.0.0.1 serve real
// traffic (addresses rewritten in a copy, never in the file); dynamic-config-fs serves through
// filesystem xDS from copies of its LDS/CDS files and picks up a change to them without restart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { runCli, startLegate, writeConfig } from '../helpers/legate.ts';
import { CORPUS_DIR } from '../helpers/corpus.ts';
import { freePort } from '../helpers/free-port.ts';

const CORPUS = CORPUS_DIR + '/';
const LATER = /not supported yet|legate does not implement this extension|unknown HTTP filter/;
/** What each failing file may fail on (features of later issues). */
const EXPECTED_FAILURES: Record<string, RegExp> = {};

type Obj = Record<string, unknown>;
const load = (f: string): Obj => parse(readFileSync(CORPUS + f, 'utf8')) as Obj;

for (const f of readdirSync(CORPUS).filter((n) => n.endsWith('.yaml') && !n.startsWith('dynamic-config-fs__configs'))) {
  test(`corpus ${f} validates or names only later features`, async () => {
    const r = await runCli(['--mode', 'validate', '-c', CORPUS + f]);
    const expected = EXPECTED_FAILURES[f];
    if (!expected) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'OK');
      return;
    }
    assert.equal(r.code, 1, `expected ${f} to fail on ${expected}`);
    assert.match(r.stderr, expected);
    for (const line of r.stderr.trim().split('\n')) assert.match(line, LATER, `unexpected error in ${f}: ${line}`);
  });
}


/**
 * Starts legate on a config that needs fixed ports (`place` writes freshly picked free ports into
 * it). A port is free when picked but not reserved: another test file running at the same time may
 * take it before legate binds it, so a start that fails with EADDRINUSE is tried again.
 */
async function startOnFreePorts(c: Obj, place: () => Promise<void>): Promise<Awaited<ReturnType<typeof startLegate>>> {
  for (let attempt = 1; ; attempt++) {
    await place();
    try {
      return await startLegate(c);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
}

function socketAddressesOf(o: unknown, out: Obj[] = []): Obj[] {
  if (Array.isArray(o)) for (const x of o) socketAddressesOf(x, out);
  else if (o && typeof o === 'object') {
    for (const [k, v] of Object.entries(o)) {
      if (k === 'socket_address' && v && typeof v === 'object') out.push(v as Obj);
      else socketAddressesOf(v, out);
    }
  }
  return out;
}

function listeners(c: Obj): Obj[] {
  return (c.static_resources as { listeners: Obj[] }).listeners;
}
function clusterNamed(c: Obj, name: string): Obj {
  return (c.static_resources as { clusters: Obj[] }).clusters.find((x) => x.name === name)!;
}
function setAdmin(c: Obj): void {
  c.admin = { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
}

test('corpus envoy-demo serves: listener_0 proxies to listener_1, whose local reply is mapped to HTML', async () => {
  const c = load('configs__envoy-demo.yaml');
  const [l0, l1] = listeners(c);
  for (const a of socketAddressesOf(l0)) Object.assign(a, { address: '127.0.0.1', port_value: 0 });
  setAdmin(c);
  const l = await startOnFreePorts(c, async () => {
    const p1 = await freePort();
    for (const a of socketAddressesOf(l1)) Object.assign(a, { address: '127.0.0.1', port_value: p1 });
    for (const a of socketAddressesOf(clusterNamed(c, 'loopback'))) Object.assign(a, { address: '127.0.0.1', port_value: p1 });
  });
  try {
    const port = await l.listenerPort('listener_0');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await res.text(), /Welcome to Envoy/);
    const s = await l.stats();
    assert.equal(s['http.ingress_http.downstream_rq_4xx'], 1);
    assert.equal(s['http.loopback_http.downstream_rq_4xx'], 1);
    assert.equal(s['cluster.loopback.upstream_rq_total'], 1);
  } finally {
    await l.stop();
  }
});

test('corpus grpc-bridge server proxy serves a real gRPC call to a STRICT_DNS HTTP/2 cluster', async () => {
  const def = protoLoader.loadSync(fileURLToPath(new URL('../fixtures/hello.proto', import.meta.url)));
  const pkg = grpc.loadPackageDefinition(def) as unknown as { legate: { test: { Greeter: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  server.addService(pkg.legate.test.Greeter.service, {
    SayHello: (call: grpc.ServerUnaryCall<{ name: string }, unknown>, cb: grpc.sendUnaryData<{ message: string }>) => cb(null, { message: `hello ${call.request.name}` }),
  });
  const upPort = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const c = load('grpc-bridge__server__envoy-proxy.yaml');
  for (const a of socketAddressesOf(listeners(c)[0])) Object.assign(a, { address: '127.0.0.1', port_value: 0 });
  for (const a of socketAddressesOf(clusterNamed(c, 'backend_grpc_service'))) Object.assign(a, { address: 'localhost', port_value: upPort });
  (clusterNamed(c, 'backend_grpc_service') as Obj).dns_lookup_family = 'V4_ONLY';
  setAdmin(c);
  const l = await startLegate(c);
  try {
    const lst = (await (await fetch(`${l.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ name: string; local_address: { socket_address: { port_value: number } } }> };
    const port = lst.listener_statuses[0]!.local_address.socket_address.port_value;
    const client = new pkg.legate.test.Greeter(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const reply = await new Promise<{ message: string }>((res, rej) => client.SayHello!({ name: 'corpus' }, (e: Error | null, r: { message: string }) => (e ? rej(e) : res(r))));
    assert.equal(reply.message, 'hello corpus');
    client.close();
    const s = await l.stats();
    assert.equal(s['cluster.backend_grpc_service.upstream_rq_200'], 1);
    assert.match(l.stdout(), /"POST \/legate\.test\.Greeter\/SayHello HTTP\/2" 200/);
  } finally {
    await l.stop();
    server.forceShutdown();
  }
});

/** The self-signed `CN=front-envoy` pair inlined in front-proxy's TLS listener. */
function frontEnvoyPair(): { cert: string; key: string } {
  const front = load('front-proxy__envoy.yaml');
  const tlsCtx = (front.static_resources as { listeners: Array<{ filter_chains: Array<{ transport_socket: { typed_config: { common_tls_context: { tls_certificates: Array<{ certificate_chain: { inline_string: string }; private_key: { inline_string: string } }> } } } }> }> }).listeners[1]!.filter_chains[0]!.transport_socket.typed_config.common_tls_context.tls_certificates[0]!;
  return { cert: tlsCtx.certificate_chain.inline_string, key: tlsCtx.private_key.inline_string };
}

/** An HTTPS GET over a fresh connection that trusts only the corpus's self-signed certificate. */
function httpsGet(port: number, path: string, ca: string): Promise<{ status: number; body: string; peerCn: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      // The certificate names no host (CN=front-envoy, no SAN): trust it by pinning, as curl -k would.
      { host: '127.0.0.1', port, path, ca, agent: false, checkServerIdentity: () => undefined },
      (res) => {
        const sock = res.socket as tls.TLSSocket;
        const peerCn = String(sock.getPeerCertificate().subject?.CN ?? '');
        const protocol = sock.getProtocol() ?? '';
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, peerCn, protocol }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A plain HTTP upstream answering with its name and the request path. */
async function namedUpstream(name: string, servers: net.Server[]): Promise<number> {
  const s = http.createServer((req, res) => res.end(`${name} ${req.url} proto=${String(req.headers['x-forwarded-proto'])}`));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

function pointClusterAt(c: Obj, name: string, port: number): void {
  for (const a of socketAddressesOf(clusterNamed(c, name))) Object.assign(a, { address: 'localhost', port_value: port });
  clusterNamed(c, name).dns_lookup_family = 'V4_ONLY';
}

test('corpus tls (envoy-https-http): TLS terminated with the inline certificate, HTTP to the plaintext service', async (t) => {
  const { cert } = frontEnvoyPair();
  const servers: net.Server[] = [];
  t.after(() => servers.forEach((x) => x.close()));
  const c = load('tls__envoy-https-http.yaml');
  for (const a of socketAddressesOf(listeners(c)[0])) Object.assign(a, { address: '127.0.0.1', port_value: 0 });
  pointClusterAt(c, 'service-http', await namedUpstream('service-http', servers));
  setAdmin(c);
  const l = await startLegate(c);
  try {
    const lst = (await (await fetch(`${l.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ local_address: { socket_address: { port_value: number } } }> };
    const port = lst.listener_statuses[0]!.local_address.socket_address.port_value;
    const r = await httpsGet(port, '/anything', cert);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'service-http /anything proto=https');
    assert.equal(r.peerCn, 'front-envoy');
    assert.match(r.protocol, /^TLSv1\.[23]$/);
    // Plaintext to the TLS port is refused (no HTTP response).
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
    const s = await l.stats();
    assert.equal(s[`listener.127.0.0.1_${port}.ssl.handshake`], 1);
    assert.equal(s['cluster.service-http.upstream_rq_200'], 1);
  } finally {
    await l.stop();
  }
});

test('corpus front-proxy: /service/1 and /service/2 over HTTP (8080) and HTTPS (8443); /config_dump redacts the key', async (t) => {
  const { cert, key } = frontEnvoyPair();
  const servers: net.Server[] = [];
  t.after(() => servers.forEach((x) => x.close()));
  const c = load('front-proxy__envoy.yaml');
  pointClusterAt(c, 'service1-envoy', await namedUpstream('service1', servers));
  pointClusterAt(c, 'service2-envoy', await namedUpstream('service2', servers));
  setAdmin(c);
  // Two free ports: the listeners have no names, so Envoy names them by address.
  const l = await startOnFreePorts(c, async () => {
    for (const l of listeners(c)) {
      const port = await freePort();
      for (const a of socketAddressesOf(l)) Object.assign(a, { address: '127.0.0.1', port_value: port });
    }
  });
  try {
    const lst = (await (await fetch(`${l.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ local_address: { socket_address: { port_value: number } } }> };
    const [plainPort, tlsPort] = lst.listener_statuses.map((x) => x.local_address.socket_address.port_value) as [number, number];
    for (const n of [1, 2]) {
      const plain = await fetch(`http://127.0.0.1:${plainPort}/service/${n}`);
      assert.equal(await plain.text(), `service${n} /service/${n} proto=http`);
      const secure = await httpsGet(tlsPort, `/service/${n}`, cert);
      assert.equal(secure.status, 200);
      assert.equal(secure.body, `service${n} /service/${n} proto=https`);
      assert.equal(secure.peerCn, 'front-envoy');
    }
    assert.equal((await httpsGet(tlsPort, '/elsewhere', cert)).status, 404);
    const s = await l.stats();
    assert.equal(s[`listener.127.0.0.1_${tlsPort}.ssl.handshake`], 3);
    assert.equal(s['cluster.service1-envoy.upstream_rq_200'], 2);
    assert.equal(s['cluster.service2-envoy.upstream_rq_200'], 2);
    // The dump shows the certificate, never the private key (Envoy's sensitive-field redaction).
    const dump = await (await fetch(`${l.admin}/config_dump`)).text();
    const keyBody = key.split('\n')[1]!;
    assert.ok(!dump.includes(keyBody), 'private key printed in /config_dump');
    assert.equal(dump.match(/"private_key":\s*\{\s*"inline_string":\s*"\[redacted\]"\s*\}/g)?.length, 2, 'bootstrap and listener dumps');
    assert.ok(dump.includes(JSON.stringify(cert).slice(1, 60)), 'certificate chain missing from /config_dump');
  } finally {
    await l.stop();
  }
});

test('corpus tls-inspector routes TLS by ALPN and plaintext to the default chain via tcp_proxy', async () => {
  const { cert, key } = frontEnvoyPair();
  const servers: net.Server[] = [];
  const tlsServer = async (name: string, alpn: string): Promise<number> => {
    const s = tls.createServer({ cert, key, ALPNProtocols: [alpn] }, (sock) => sock.end(`${name}\n`));
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as net.AddressInfo).port;
  };
  const https1 = await tlsServer('https1', 'h2');
  const https0 = await tlsServer('https0', 'http/1.1');
  const plain = net.createServer((sock) => sock.end('plain\n'));
  servers.push(plain);
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const c = load('tls-inspector__envoy.yaml');
  for (const a of socketAddressesOf(listeners(c)[0])) Object.assign(a, { address: '127.0.0.1', port_value: 0 });
  const upstreams: Record<string, number> = { 'service-https1': https1, 'service-https0': https0, 'service-http': (plain.address() as net.AddressInfo).port };
  for (const [name, port] of Object.entries(upstreams)) {
    for (const a of socketAddressesOf(clusterNamed(c, name))) Object.assign(a, { address: 'localhost', port_value: port });
    clusterNamed(c, name).dns_lookup_family = 'V4_ONLY';
  }
  setAdmin(c);
  const l = await startLegate(c);
  try {
    const lst = (await (await fetch(`${l.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ local_address: { socket_address: { port_value: number } } }> };
    const port = lst.listener_statuses[0]!.local_address.socket_address.port_value;
    const viaTls = (alpn: string): Promise<string> =>
      new Promise((res, rej) => {
        const s = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: [alpn], rejectUnauthorized: false, servername: 'example.com' }, () => undefined);
        let d = '';
        s.on('data', (b: Buffer) => (d += b));
        s.on('end', () => res(d));
        s.on('error', rej);
      });
    assert.equal(await viaTls('h2'), 'https1\n');
    assert.equal(await viaTls('http/1.1'), 'https0\n');
    const viaPlain = await new Promise<string>((res, rej) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('hello'));
      let d = '';
      s.on('data', (b: Buffer) => (d += b));
      s.on('end', () => res(d));
      s.on('error', rej);
    });
    assert.equal(viaPlain, 'plain\n');
    const s = await l.stats();
    assert.equal(s['tcp.https_passthrough.downstream_cx_total'], 2);
    assert.equal(s['tcp.ingress_http.downstream_cx_total'], 1);
    assert.equal(s['tls_inspector.tls_found'], 2);
  } finally {
    await l.stop();
    for (const s of servers) s.close();
  }
});

test('corpus dynamic-config-fs serves through filesystem xDS; switching the cluster in cds.yaml (service1 → service2) applies without restart', { timeout: 60_000 }, async (t) => {
  const servers: net.Server[] = [];
  t.after(() => servers.forEach((x) => x.close()));
  const service1 = await namedUpstream('service1', servers);
  const service2 = await namedUpstream('service2', servers);
  const dir = mkdtempSync(join(tmpdir(), 'legate-corpus-fs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const c = load('dynamic-config-fs__envoy.yaml');
  const lds = load('dynamic-config-fs__configs__lds.yaml');
  const cds = load('dynamic-config-fs__configs__cds.yaml');
  const port = await freePort();
  for (const a of socketAddressesOf(lds)) Object.assign(a, { address: '127.0.0.1', port_value: port });
  for (const a of socketAddressesOf(cds)) Object.assign(a, { address: '127.0.0.1', port_value: service1 });
  const ldsPath = join(dir, 'lds.yaml');
  const cdsPath = join(dir, 'cds.yaml');
  writeFileSync(ldsPath, stringify(lds));
  writeFileSync(cdsPath, stringify(cds));
  const dr = c.dynamic_resources as { lds_config: { path_config_source: { path: string } }; cds_config: { path_config_source: { path: string } } };
  assert.equal(dr.lds_config.path_config_source.path, '/var/lib/envoy/lds.yaml');
  dr.lds_config.path_config_source.path = ldsPath;
  dr.cds_config.path_config_source.path = cdsPath;
  setAdmin(c);
  const copy = writeConfig(c);
  t.after(() => rmSync(join(copy, '..'), { recursive: true, force: true }));
  const v = await runCli(['--mode', 'validate', '-c', copy]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), 'OK');
  const l = await startLegate(c);
  try {
    const body = async (): Promise<string | undefined> => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        return r.status === 200 ? await r.text() : undefined;
      } catch {
        return undefined;
      }
    };
    const until = async (want: string): Promise<void> => {
      const deadline = Date.now() + 20_000;
      let last: string | undefined;
      while ((last = await body()) !== want) {
        if (Date.now() > deadline) assert.fail(`expected ${JSON.stringify(want)}, last ${JSON.stringify(last)}\n${l.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until('service1 / proto=http');
    // The example's README: `sed -i s/service1/service2/ cds.yaml` — an atomic replace of the file.
    for (const a of socketAddressesOf(cds)) Object.assign(a, { port_value: service2 });
    writeFileSync(`${cdsPath}.tmp`, stringify(cds));
    renameSync(`${cdsPath}.tmp`, cdsPath);
    await until('service2 / proto=http');
    const s = await l.stats();
    assert.ok((s['cluster_manager.cds.update_success'] ?? 0) >= 2, JSON.stringify(s['cluster_manager.cds.update_success']));
    assert.ok((s['listener_manager.lds.update_success'] ?? 0) >= 1);
    assert.equal(s['http.ingress_http.downstream_rq_2xx'] !== undefined, true);
  } finally {
    await l.stop();
  }
});
