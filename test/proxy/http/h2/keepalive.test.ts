// HTTP/2 connection_keepalive (src/proxy/http/h2/keepalive.ts) on 127.0.0.1: legate's client
// against hand-built frames (a server that answers PINGs, then stops; one that never answers but
// keeps sending other frames; PING ahead of a stream after connection_idle_interval), and through
// config: a cluster's http2_protocol_options and an HCM's (PINGs to a client that never answers,
// an nghttp2 client that does), with Envoy's http2.keepalive_timeout counted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { parse } from 'yaml';
import { H2ClientSession } from '../../../../src/proxy/http/h2/client-session.ts';
import type { H2CodecEvent } from '../../../../src/proxy/http/h2/session.ts';
import type { KeepaliveOptions } from '../../../../src/proxy/http/h2/keepalive.ts';
import { decodeJson } from '../../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../../src/proxy/upstream/config.ts';
import { F, RawH2, T, block, frame, type Frame } from '../../../helpers/h2-raw.ts';
import { ROUTER_FILTER, startProxy } from '../../../filters/http/router/proxy-harness.ts';
import { clusterYaml } from '../../../filters/http/router/harness.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isPing = (f: Frame): boolean => f.type === T.PING && (f.flags & F.ACK) === 0;
const pings = (c: RawH2): Frame[] => c.frames.filter(isPing);
const ack = (c: RawH2, f: Frame): void => c.send(frame(T.PING, F.ACK, 0, f.payload));

interface Client {
  readonly session: H2ClientSession;
  readonly events: H2CodecEvent[];
}

async function connect(port: number, keepalive: KeepaliveOptions): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const events: H2CodecEvent[] = [];
  const session = new H2ClientSession(socket, { initialWindowSize: 65535, connectionWindowSize: 65535, maxHeaderListSize: 65535, keepalive }, { onCodecEvent: (e) => events.push(e), onGoaway: () => {} });
  return { session, events };
}

/** A GET on the session; resolves with the reset reason, or 'ok' when the response ends. */
function get(session: H2ClientSession, path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = session.request([':method', 'GET', ':scheme', 'http', ':authority', 'up', ':path', path], true, {
      headers: (_raw, end) => end && resolve('ok'),
      data: (_d, end) => end && resolve('ok'),
      trailers: () => resolve('ok'),
      streamReset: (reason) => resolve(reason),
      writable: () => {},
    });
    assert.ok(s);
  });
}

async function rawServer(): Promise<{ port: number; conn(): Promise<RawH2>; close(): void }> {
  const conns: RawH2[] = [];
  const srv = await RawH2.server((c) => conns.push(c));
  return {
    port: srv.port,
    conn: async () => {
      while (conns.length === 0) await sleep(5);
      return conns[0]!;
    },
    close: () => {
      for (const c of conns) c.close();
      srv.close();
    },
  };
}

test('client keepalive: PINGs every interval while answered; an unanswered one aborts the connection after the timeout and resets its streams', { timeout: 10_000 }, async () => {
  const srv = await rawServer();
  const c = await connect(srv.port, { intervalMs: 100, timeoutMs: 150, jitterPercent: 0, idleIntervalMs: 0 });
  let timer: NodeJS.Timeout | undefined;
  try {
    const server = await srv.conn();
    let answering = true;
    const answered = new Set<Frame>();
    timer = setInterval(() => {
      if (!answering) return;
      for (const p of pings(server)) {
        if (answered.has(p)) continue;
        answered.add(p);
        ack(server, p);
      }
    }, 10);
    await sleep(650);
    assert.ok(pings(server).length >= 4, `PINGs while answered: ${pings(server).length}`);
    assert.equal(server.closed, false);
    assert.deepEqual(c.events, []);
    // A stream the server holds open, then the PINGs go unanswered.
    const pending = get(c.session, '/held');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === 1);
    answering = false;
    const t0 = Date.now();
    assert.equal(await server.waitClosed(1000), true, 'the client aborted the connection');
    const took = Date.now() - t0;
    clearInterval(timer);
    assert.ok(took >= 50 && took < 600, `closed ${took} ms after the answers stopped`);
    assert.equal(pings(server).length, answered.size + 1, 'one PING outstanding at a time, then the abort');
    assert.equal(await pending, 'keepalive timeout');
    assert.deepEqual(c.events, ['keepalive_timeout']);
    assert.equal(c.session.closed, true);
  } finally {
    clearInterval(timer);
    c.session.destroy();
    srv.close();
  }
});

test('client keepalive: any frame received extends the timeout (a busy peer is alive); PINGs stop with the connection', { timeout: 10_000 }, async () => {
  const srv = await rawServer();
  const c = await connect(srv.port, { intervalMs: 50, timeoutMs: 150, jitterPercent: 0, idleIntervalMs: 0 });
  let busy: NodeJS.Timeout | undefined;
  try {
    const server = await srv.conn();
    // Never an ACK, but a PING of the server's own every 40 ms.
    busy = setInterval(() => server.send(frame(T.PING, 0, 0, Buffer.alloc(8))), 40);
    await sleep(600);
    clearInterval(busy);
    assert.equal(server.closed, false, 'still open while the server sends');
    assert.equal(pings(server).length, 1, 'the one PING stays outstanding');
    assert.equal(await server.waitClosed(1000), true, 'aborted once the server went quiet');
    assert.deepEqual(c.events, ['keepalive_timeout']);
  } finally {
    clearInterval(busy);
    c.session.destroy();
    srv.close();
  }
});

test('client keepalive: connection_idle_interval sends a PING ahead of a stream on a quiet connection, not on a busy one', { timeout: 10_000 }, async () => {
  const srv = await rawServer();
  const c = await connect(srv.port, { intervalMs: 0, timeoutMs: 500, jitterPercent: 15, idleIntervalMs: 100 });
  try {
    const server = await srv.conn();
    const answer = (id: number): void => server.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block([[':status', '200']])));
    const first = get(c.session, '/1');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === 1);
    answer(1);
    assert.equal(await first, 'ok');
    const second = get(c.session, '/2'); // right after the answer: not idle
    await server.waitFor((f) => f.type === T.HEADERS && f.id === 3);
    answer(3);
    assert.equal(await second, 'ok');
    assert.equal(pings(server).length, 0);
    await sleep(200);
    const third = get(c.session, '/3');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === 5);
    const ping = server.frames.findIndex(isPing);
    assert.ok(ping >= 0 && ping < server.frames.findIndex((f) => f.type === T.HEADERS && f.id === 5), 'the PING goes first');
    ack(server, server.frames[ping]!);
    answer(5);
    assert.equal(await third, 'ok');
    await sleep(600);
    assert.equal(server.closed, false, 'an answered PING leaves the connection up');
    assert.deepEqual(c.events, []);
  } finally {
    c.session.destroy();
    srv.close();
  }
});

const HCM = (keepalive: string): string => `
stat_prefix: ingress_http
codec_type: AUTO
http2_protocol_options: { connection_keepalive: ${keepalive} }
route_config:
  virtual_hosts:
  - name: vh
    domains: ["*"]
    routes: [{ match: { prefix: / }, route: { cluster: up } }]
${ROUTER_FILTER}`;

test('cluster http2_protocol_options.connection_keepalive: an upstream that stops answering PINGs is dropped, counted in cluster.<name>.http2.keepalive_timeout', { timeout: 10_000 }, async () => {
  const srv = await rawServer();
  const cluster = clusterYaml('up', srv.port).replace('connect_timeout: 1s', 'connect_timeout: 1s\nhttp2_protocol_options: { connection_keepalive: { interval: 0.1s, timeout: 0.1s } }');
  const proxy = await startProxy(HCM('{ interval: 60s, timeout: 1s }'), [cluster]);
  try {
    const res = fetch(`http://127.0.0.1:${proxy.port}/x`);
    const server = await srv.conn();
    await server.waitFor((f) => f.type === T.HEADERS && f.id === 1);
    server.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block([[':status', '204']])));
    assert.equal((await res).status, 204);
    assert.equal(proxy.gauge('cluster.up.upstream_cx_active'), 1);
    assert.ok(await server.waitFor(isPing, 1000), 'a PING within the interval');
    assert.equal(await server.waitClosed(1000), true);
    await sleep(50);
    assert.equal(proxy.counter('cluster.up.http2.keepalive_timeout'), 1);
    assert.equal(proxy.gauge('cluster.up.upstream_cx_active'), 0);
  } finally {
    await proxy.close();
    srv.close();
  }
});

test('HCM http2_protocol_options.connection_keepalive: PINGs to clients; one that never answers is dropped (http2.keepalive_timeout), nghttp2 answers and stays', { timeout: 10_000 }, async () => {
  const up = http2.createServer((_req, res) => res.end('up'));
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  const proxy = await startProxy(HCM('{ interval: 0.1s, timeout: 0.15s, interval_jitter: { value: 0 } }'), [clusterYaml('up', (up.address() as net.AddressInfo).port, true)]);
  const client = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const raw = await RawH2.connect(proxy.port);
    assert.ok(await raw.waitFor(isPing, 1000), 'the server PINGs');
    assert.equal(await raw.waitClosed(1000), true, 'dropped without an answer');
    assert.equal(proxy.counter('http2.keepalive_timeout'), 1);
    let acks = 0;
    client.on('ping', () => acks++);
    const body = await new Promise<string>((resolve, reject) => {
      const req = client.request({ ':path': '/' });
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (b += d));
      req.on('end', () => resolve(b));
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'up');
    await sleep(700);
    assert.ok(acks >= 3, `PINGs nghttp2 answered: ${acks}`);
    assert.equal(client.closed || client.destroyed, false);
    assert.equal(proxy.counter('http2.keepalive_timeout'), 1);
  } finally {
    client.destroy();
    await proxy.close();
    up.close();
  }
});

test('connection_keepalive config: Envoy defaults (jitter 15%), and a missing timeout is refused with its field path', () => {
  const decode = (ka: string): ReturnType<typeof decodeJson<Cluster__Output>> => decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(`name: c\nhttp2_protocol_options: { connection_keepalive: ${ka} }`));
  const d = decode('{ interval: 30s, timeout: 5s, connection_idle_interval: 0.5s }');
  assert.ok(d.ok);
  const c = parseCluster(d.value, 'c');
  assert.ok(c.ok);
  assert.deepEqual(c.value.http2?.keepalive, { intervalMs: 30_000, timeoutMs: 5000, jitterPercent: 15, idleIntervalMs: 500 });
  const bad = decode('{ interval: 30s }');
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok && bad.errors.some((e) => e.path.includes('connection_keepalive.timeout')), JSON.stringify(!bad.ok && bad.errors));
});
