// The README's sidecar pair (config/examples/mtls): two real legate processes talking mutual TLS
// with SPIFFE identities, carrying HTTP (h2 between the sidecars) and raw TCP to real apps, and
// sidecar B's RBAC allowing spiffe://cluster.local/ns/default/sa/a and refusing another workload
// of the same mesh, over HTTP and TCP. The example files are copied; only addresses and
// certificate paths are rewritten in the copy.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, spiffeId, type Issued } from '../../src/proxy/tls/dev-ca.ts';
import { testPki, writePki } from '../helpers/certs.ts';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { listen, loadExample, rewriteExample } from '../helpers/sidecar-examples.ts';

const TIMEOUT = { timeout: 60_000 };
const B_HOST = 'b.default.svc.cluster.local';

interface Seen {
  xfcc?: string;
  path?: string;
}

const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'legate-mtls-pair-'));
const a = issueCertificate(pki.ca, { commonName: 'a', spiffeId: spiffeId('cluster.local', 'default', 'a'), keyType: 'ecdsa' });
const b = issueCertificate(pki.ca, { commonName: 'b', spiffeId: spiffeId('cluster.local', 'default', 'b'), dnsNames: [B_HOST], keyType: 'ecdsa' });
const c = issueCertificate(pki.ca, { commonName: 'c', spiffeId: spiffeId('cluster.local', 'default', 'c'), keyType: 'ecdsa' });
// The README's layout: ca.crt, a.crt, a.key, b.crt, b.key.
writePki(dir, { a, b });
writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);

let seen: Seen = {};
const app = http.createServer((req, res) => {
  seen = { xfcc: req.headers['x-forwarded-client-cert'] as string | undefined, path: req.url };
  req.resume();
  req.on('end', () => res.end(`app saw ${req.method} ${req.url}`));
});
const echo = net.createServer((s) => s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`)));
let sidecarA: Legate | undefined;
let sidecarB: Legate | undefined;
let ports = { outHttp: 0, outTcp: 0, inHttp: 0, inTcp: 0 };

async function startPair(): Promise<void> {
  if (sidecarA) return;
  const appPort = await listen(app);
  const echoPort = await listen(echo);
  const cb = loadExample('sidecar-b.yaml');
  rewriteExample(cb, dir, (addr) => ({ 8080: appPort, 9000: echoPort })[Number(addr.port_value)] ?? 0);
  sidecarB = await startLegate(cb);
  ports.inHttp = await sidecarB.listenerPort('inbound_http');
  ports.inTcp = await sidecarB.listenerPort('inbound_tcp');
  const ca = loadExample('sidecar-a.yaml');
  rewriteExample(ca, dir, (addr) => ({ 15443: ports.inHttp, 15444: ports.inTcp })[Number(addr.port_value)] ?? 0);
  sidecarA = await startLegate(ca);
  ports.outHttp = await sidecarA.listenerPort('outbound_http');
  ports.outTcp = await sidecarA.listenerPort('outbound_tcp');
}

after(async () => {
  await sidecarA?.stop();
  await sidecarB?.stop();
  app.close();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});

function tcpExchange(connect: () => net.Socket, payload: string): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect();
    let data = '';
    const done = (closed: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve({ data, closed });
    };
    const t = setTimeout(() => done(false), 3_000);
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.length >= payload.length + 'echo:'.length) done(false);
    });
    s.on('close', () => done(true));
    s.on('error', (e) => (data === '' ? resolve({ data, closed: true }) : reject(e)));
  });
}

function directHttps(who: Issued, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: ports.inHttp, path, servername: B_HOST, ca: pki.ca.certPem, cert: who.certPem, key: who.keyPem, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP: app → A (plaintext) → mTLS h2 → B → app, the app sees A’s SPIFFE ID in XFCC', TIMEOUT, async () => {
  await startPair();
  const res = await fetch(`http://127.0.0.1:${ports.outHttp}/hello?x=1`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'app saw GET /hello?x=1');
  assert.equal(seen.path, '/hello?x=1');
  assert.match(seen.xfcc ?? '', new RegExp(`^By=spiffe://cluster.local/ns/default/sa/b;Hash=[0-9a-f]{64};URI=spiffe://cluster.local/ns/default/sa/a$`));
  const sa = await sidecarA!.stats();
  assert.equal(sa['cluster.b_http.ssl.handshake'], 1);
  assert.equal(sa['cluster.b_http.upstream_cx_http2_total'], 1);
  assert.equal(sa['cluster.b_http.upstream_rq_200'], 1);
  const sb = await sidecarB!.stats();
  assert.equal(sb[`listener.127.0.0.1_${ports.inHttp}.ssl.handshake`], 1);
  assert.equal(sb['http.inbound_http.downstream_cx_http2_total'], 1);
  assert.equal(sb['http.inbound_http.rbac.allowed'], 1);
});

test('raw TCP: app → A → mTLS → B (network RBAC allows sa/a) → echo server, both ways', TIMEOUT, async () => {
  await startPair();
  const r = await tcpExchange(() => net.connect(ports.outTcp, '127.0.0.1', function (this: net.Socket) { this.write('ping over mtls'); }), 'ping over mtls');
  assert.equal(r.data, 'echo:ping over mtls');
  const sa = await sidecarA!.stats();
  assert.equal(sa['cluster.b_tcp.ssl.handshake'], 1);
  assert.equal(sa['tcp.outbound_tcp.downstream_cx_total'], 1);
  const sb = await sidecarB!.stats();
  assert.equal(sb[`listener.127.0.0.1_${ports.inTcp}.ssl.handshake`], 1);
  assert.equal(sb['inbound_tcp.rbac.allowed'], 1);
});

test('RBAC by SPIFFE principal: sa/c of the same mesh gets 403 over HTTP and a closed connection over TCP; sa/a passes', TIMEOUT, async () => {
  await startPair();
  const before = await sidecarB!.stats();
  const denied = await directHttps(c, '/secret');
  assert.equal(denied.status, 403);
  assert.equal(denied.body, 'RBAC: access denied');
  const allowed = await directHttps(a, '/open');
  assert.equal(allowed.status, 200);
  assert.equal(allowed.body, 'app saw GET /open');

  const tcpDenied = await tcpExchange(
    () => tls.connect({ host: '127.0.0.1', port: ports.inTcp, servername: B_HOST, ca: pki.ca.certPem, cert: c.certPem, key: c.keyPem }, function (this: tls.TLSSocket) { this.write('let me in'); }),
    'let me in',
  );
  assert.equal(tcpDenied.data, '');
  assert.equal(tcpDenied.closed, true);
  const tcpAllowed = await tcpExchange(
    () => tls.connect({ host: '127.0.0.1', port: ports.inTcp, servername: B_HOST, ca: pki.ca.certPem, cert: a.certPem, key: a.keyPem }, function (this: tls.TLSSocket) { this.write('hi'); }),
    'hi',
  );
  assert.equal(tcpAllowed.data, 'echo:hi');

  const s = await sidecarB!.stats();
  const delta = (k: string): number => (s[k] ?? 0) - (before[k] ?? 0);
  assert.equal(delta('http.inbound_http.rbac.denied'), 1);
  assert.equal(delta('http.inbound_http.rbac.allowed'), 1);
  assert.equal(delta('inbound_tcp.rbac.denied'), 1);
  assert.equal(delta('inbound_tcp.rbac.allowed'), 1);
  assert.equal(delta('http.inbound_http.downstream_rq_4xx'), 1);
});
