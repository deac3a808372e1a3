// LDS on a worker: listeners added, replaced in place (new connections get the new config; HTTP/1.1
// responses in flight carry `Connection: close`, HTTP/2 gets GOAWAY, TCP proxy connections carry on),
// moved to a new address, removed (drained, closed after the drain time) and created unbound
// (bind_to_port false) to take connections handed over to them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import http2 from 'node:http2';
import { once } from 'node:events';
import { Client } from 'undici';
import { directResponse, echoUpstream, freePort, inlineHcm, listener, namedUpstream, routeConfig, startWorker, staticCluster, tcpProxy, tcpUpstream, toCluster, until } from './harness.ts';

/** A TCP upstream that greets every connection with `greeting`. */
function greeter(greeting: string): Promise<{ port: number; close(): Promise<void> }> {
  return tcpUpstream((s) => s.end(greeting));
}

/** A TCP client that collects what it reads. */
async function tcpClient(port: number): Promise<{ socket: net.Socket; read(n: number): Promise<string>; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let buf = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buf += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    socket,
    closed,
    async read(n: number) {
      while (buf.length < n) await new Promise<void>((r) => waiters.push(r));
      const out = buf.slice(0, n);
      buf = buf.slice(n);
      return out;
    },
  };
}

async function refused(port: number): Promise<boolean> {
  const s = net.connect(port, '127.0.0.1');
  return new Promise((resolve) => {
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('a listener replaced in place: in-flight HTTP/1.1 and TCP proxy traffic completes, HTTP/2 gets GOAWAY, new connections get the new config', { timeout: 30_000 }, async () => {
  const w = startWorker({ drainTimeMs: 60_000 });
  const a = await namedUpstream('a');
  const echo = await echoUpstream();
  const hello = await greeter('v2');
  try {
    const r1 = await w.apply({
      clusters: [{ cluster: staticCluster('a', [a.port]) }, { cluster: staticCluster('echo', [echo.port]) }, { cluster: staticCluster('hello', [hello.port]) }],
      listeners: [listener('http', [inlineHcm(routeConfig('v1', [toCluster('a')]))]), listener('tcp', [tcpProxy('echo')])],
    });
    const httpPort = r1.listeners['http']!;
    const tcpPort = r1.listeners['tcp']!;
    const prefix = `listener.127.0.0.1_${httpPort}.`;

    // In flight: a slow HTTP/1.1 request, a TCP proxy connection, an HTTP/2 connection.
    const client = new Client(`http://127.0.0.1:${httpPort}`);
    const slow = client.request({ method: 'GET', path: '/slow' });
    await until(() => a.waiting === 1);
    const tcp = await tcpClient(tcpPort);
    tcp.socket.write('ping1');
    assert.equal(await tcp.read(5), 'ping1');
    const h2 = http2.connect(`http://127.0.0.1:${httpPort}`);
    h2.on('error', () => {});
    const goaway = once(h2, 'goaway');
    const h2req = h2.request({ ':path': '/' });
    h2req.resume();
    await once(h2req, 'end');

    const r2 = await w.apply({ listeners: [listener('http', [inlineHcm(routeConfig('v2', [directResponse('v2')]))]), listener('tcp', [tcpProxy('hello')])] });
    assert.deepEqual(r2.listeners, r1.listeners, 'same address: replaced in place');

    await goaway;
    // New connections get the new config.
    const fresh = await fetch(`http://127.0.0.1:${httpPort}/`);
    assert.equal(await fresh.text(), 'v2');
    const tcp2 = await tcpClient(tcpPort);
    assert.equal(await tcp2.read(2), 'v2');
    await tcp2.closed;

    // The old TCP connection still proxies to the old cluster.
    tcp.socket.write('ping2');
    assert.equal(await tcp.read(5), 'ping2');

    // The slow request completes, with Connection: close.
    a.release();
    const res = await slow;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'a');
    assert.equal(res.headers['connection'], 'close');

    tcp.socket.end();
    await tcp.closed;
    // Old connections gone: the old configs are closed before the drain time is up.
    await until(() => w.dyn.get('tcp')!.drainingConnections === 0);
    h2.destroy();
    await until(() => w.dyn.get('http')!.drainingConnections === 0);
    assert.equal(w.counter(`${prefix}downstream_cx_total`), 3);
    await client.close();
  } finally {
    await w.close();
    await a.close();
    await echo.close();
    await hello.close();
  }
});

test('a listener removed: no new connections; open ones drain and are closed after the drain time', { timeout: 30_000 }, async () => {
  const w = startWorker({ drainTimeMs: 300 });
  const echo = await echoUpstream();
  try {
    const r = await w.apply({ clusters: [{ cluster: staticCluster('echo', [echo.port]) }], listeners: [listener('tcp', [tcpProxy('echo')]), listener('http', [inlineHcm(routeConfig('r', [directResponse('ok')]))])] });
    const tcpPort = r.listeners['tcp']!;
    const httpPort = r.listeners['http']!;
    const tcp = await tcpClient(tcpPort);
    tcp.socket.write('x');
    assert.equal(await tcp.read(1), 'x');
    // An idle HTTP/1.1 keep-alive connection.
    const client = new Client(`http://127.0.0.1:${httpPort}`);
    const res = await client.request({ method: 'GET', path: '/' });
    assert.equal(await res.body.text(), 'ok');

    const r2 = await w.apply({ removeListeners: ['tcp', 'http'] });
    assert.deepEqual(r2.listeners, {});
    assert.equal(w.dyn.get('tcp'), undefined);
    assert.ok(await refused(tcpPort));
    assert.ok(await refused(httpPort));
    // The TCP connection is closed when the drain time is up.
    await tcp.closed;
    await until(() => w.dyn.all().length === 0);
    await client.close();
  } finally {
    await w.close();
    await echo.close();
  }
});

test('a listener moved to a new address: the new one is bound, the old one stops accepting', { timeout: 30_000 }, async () => {
  const w = startWorker({ drainTimeMs: 1000 });
  try {
    const r1 = await w.apply({ listeners: [listener('http', [inlineHcm(routeConfig('r', [directResponse('v1')]))])] });
    const p1 = r1.listeners['http']!;
    assert.equal(await (await fetch(`http://127.0.0.1:${p1}/`)).text(), 'v1');
    const p2 = await freePort();
    const r2 = await w.apply({ listeners: [listener('http', [inlineHcm(routeConfig('r', [directResponse('v2')]))], {}, p2)] });
    assert.equal(r2.listeners['http'], p2);
    assert.equal(await (await fetch(`http://127.0.0.1:${p2}/`)).text(), 'v2');
    assert.ok(await refused(p1));
    assert.equal(w.counter(`listener.127.0.0.1_${p2}.downstream_cx_total`), 1);
  } finally {
    await w.close();
  }
});

test('a port-0 listener binds the port the main thread reserved', { timeout: 30_000 }, async () => {
  const w = startWorker();
  try {
    const reserved = await freePort();
    const r = await w.apply({ listeners: [listener('http', [inlineHcm(routeConfig('r', [directResponse('ok')]))])], ports: { http: reserved } });
    assert.equal(r.listeners['http'], reserved);
    assert.equal(await (await fetch(`http://127.0.0.1:${reserved}/`)).text(), 'ok');
  } finally {
    await w.close();
  }
});

test('bind_to_port false: the listener is created but not bound, and serves connections handed over to it', { timeout: 30_000 }, async () => {
  const w = startWorker();
  const front = net.createServer();
  try {
    const port = await freePort();
    const r = await w.apply({ listeners: [listener('virtual', [inlineHcm(routeConfig('r', [directResponse('inbound')]))], { bind_to_port: false }, port)] });
    assert.equal(r.listeners['virtual'], port);
    const l = w.dyn.get('virtual')!;
    assert.equal(l.bound, false);
    assert.ok(await refused(port));
    // Hand a connection over, as an original_dst listener would.
    front.on('connection', (s) => l.accept(s));
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const res = await fetch(`http://127.0.0.1:${(front.address() as AddressInfo).port}/`);
    assert.equal(await res.text(), 'inbound');
    assert.equal(w.counter(`listener.127.0.0.1_${port}.downstream_cx_total`), 1);
  } finally {
    front.close();
    await w.close();
  }
});

test('a filter-chain-only update keeps the unchanged chains and their connections; the changed ones drain', { timeout: 30_000 }, async () => {
  const w = startWorker({ drainTimeMs: 300 });
  const echo = await echoUpstream();
  try {
    const tcpChain = { filter_chain_match: { source_prefix_ranges: [{ address_prefix: '127.0.0.2', prefix_len: 32 }] }, filters: [tcpProxy('echo')] };
    const mixed = (body: string): object => ({ ...listener('mixed', []), filter_chains: [tcpChain], default_filter_chain: { filters: [inlineHcm(routeConfig('r', [directResponse(body)]))] } });
    const r = await w.apply({ clusters: [{ cluster: staticCluster('echo', [echo.port]) }], listeners: [mixed('v1')] });
    const port = r.listeners['mixed']!;
    // A TCP connection on the kept chain (from 127.0.0.2) and an HTTP/1.1 keep-alive one on the default chain.
    const tcp = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    await once(tcp, 'connect');
    let got = '';
    tcp.on('data', (d: Buffer) => (got += d.toString()));
    tcp.write('a');
    await until(() => got === 'a');
    const client = new Client(`http://127.0.0.1:${port}`);
    const res = await client.request({ method: 'GET', path: '/' });
    assert.equal(await res.body.text(), 'v1');

    await w.apply({ listeners: [mixed('v2')] });
    const l = w.dyn.get('mixed')!;
    // The replaced config closes once its own connections are gone (the idle HTTP one is closed by the drain).
    await until(() => l.drainingConfigs === 0);
    assert.equal(tcp.destroyed, false);
    tcp.write('b');
    await until(() => got === 'ab');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'v2');
    tcp.destroy();
    await client.close();
  } finally {
    await w.close();
    await echo.close();
  }
});

test('a listener that cannot bind is reported; the others are applied', { timeout: 30_000 }, async () => {
  const w = startWorker();
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  try {
    const busy = (taken.address() as AddressInfo).port;
    const r = await w.applyRaw({ listeners: [listener('busy', [inlineHcm(routeConfig('r', [directResponse('x')]))], {}, busy), listener('ok', [inlineHcm(routeConfig('r', [directResponse('ok')]))])] });
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!, /^Listener busy: cannot bind: .*EADDRINUSE/);
    assert.deepEqual(Object.keys(r.listeners), ['ok']);
    assert.equal(await (await fetch(`http://127.0.0.1:${r.listeners['ok']}/`)).text(), 'ok');
  } finally {
    taken.close();
    await w.close();
  }
});
