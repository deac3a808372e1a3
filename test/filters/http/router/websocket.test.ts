// WebSocket (HTTP/1.1 upgrade) through the router: the upstream's 101 and socket are handed to the
// connection manager via upgradeToTunnel; bytes then flow both ways on the raw sockets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { clusterRoute, clusterYaml, requestHeaders, routerHarness } from './harness.ts';

test('upgrade: 101 hands the upstream socket over; echo through the tunnel', { timeout: 20_000 }, async () => {
  const server = http.createServer((_req, res) => res.end('not an upgrade'));
  let seenUpgrade: string | undefined;
  const upgraded = new Set<Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    upgraded.add(socket);
    seenUpgrade = req.headers['upgrade'];
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: abc\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const h = await routerHarness([clusterYaml('ws', port, true /* an HTTP/2 cluster: upgrades still go over HTTP/1.1 */)]);
  try {
    const s = h.stream(clusterRoute({ cluster: 'ws' }), { upgrade: 'websocket' });
    s.filter.onRequestHeaders!(
      requestHeaders('GET', '/chat', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }),
      false,
    );
    await s.ended;
    const t = s.rec.tunnel;
    assert.ok(t, 'upgradeToTunnel was called');
    assert.equal(t.headers.get(':status'), '101');
    assert.equal(t.headers.get('upgrade'), 'websocket');
    assert.equal(t.headers.get('sec-websocket-accept'), 'abc');
    assert.equal(seenUpgrade, 'websocket');
    const reply = new Promise<string>((r) => t.socket.once('data', (d: Buffer) => r(d.toString())));
    t.socket.write('ping');
    assert.equal(await reply, 'echo:ping');
    t.socket.destroy();
    s.filter.onDestroy!();
    assert.equal(h.counter('cluster.ws.upstream_rq_101'), 1);
    assert.equal(h.gauge('cluster.ws.upstream_rq_active'), 0);
    assert.equal(h.counter('cluster.ws.upstream_rq_tx_reset'), 0);
  } finally {
    for (const u of upgraded) u.destroy(); // closeAllConnections() does not reach upgraded sockets
    await h.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('upgrade refused by the upstream: its response goes back as a normal response', { timeout: 20_000 }, async () => {
  const server = http.createServer((_req, res) => {
    res.statusCode = 426;
    res.end('upgrade required elsewhere');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const h = await routerHarness([clusterYaml('ws', port)]);
  try {
    const s = h.stream(clusterRoute({ cluster: 'ws' }), { upgrade: 'websocket' });
    s.filter.onRequestHeaders!(requestHeaders('GET', '/chat', { connection: 'Upgrade', upgrade: 'websocket' }), false);
    await s.ended;
    assert.equal(s.rec.status, 426);
    assert.equal(s.bodyText, 'upgrade required elsewhere');
  } finally {
    await h.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
