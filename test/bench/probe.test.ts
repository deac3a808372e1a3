// The suite's probe after a failed paired run (bench/targets.ts `probe`): one request to each proxy,
// h2c or HTTP/1.1 as the scenario speaks, so the failure names which proxy stopped answering. Real
// servers on 127.0.0.1: one that answers, one that accepts connections and never answers (what a
// failed h2load pair looked like: connected, no first byte), and a closed port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { probe } from '../../bench/targets.ts';

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

const H2 = { h2Streams: 10, path: '/12' } as const;
const H1 = { path: '/12' } as const;

test('probe: an answering h2c and HTTP/1.1 server give their status; a silent one "no answer"; a closed port its error', { timeout: 20_000 }, async (t) => {
  const h2 = http2.createServer();
  h2.on('stream', (stream) => stream.respond({ ':status': 200 }, { endStream: true }));
  const h1 = http.createServer((_req, res) => res.end('hello'));
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s));
  const [h2Port, h1Port, silentPort] = [await listen(h2), await listen(h1), await listen(silent)];
  t.after(() => {
    for (const s of sockets) s.destroy();
    h2.close();
    h1.close();
    silent.close();
  });

  assert.match(await probe(H2, 'legate', h2Port), /^legate: 200 in \d+ ms$/);
  assert.match(await probe(H1, 'nginx', h1Port), /^nginx: 200 in \d+ ms$/);
  assert.match(await probe(H2, 'minimal', silentPort), /^minimal: no answer in 2 s \(\d+ ms\)$/);
  assert.match(await probe(H1, 'minimal', silentPort), /^minimal: .*(aborted|timeout|Timeout).* \(\d+ ms\)$/i);
  // A port just closed may be taken by a parallel test before the probe connects: try a few.
  let gone = '';
  for (let i = 0; i < 5 && !/ECONNREFUSED/.test(gone); i++) {
    const closed = net.createServer();
    const closedPort = await listen(closed);
    await new Promise<void>((r) => closed.close(() => r()));
    gone = await probe(H2, 'gone', closedPort);
  }
  assert.match(gone, /^gone: .*ECONNREFUSED.*\(\d+ ms\)$/);
  assert.equal(await probe({ ...H1, client: 'tls' }, 'legate', h1Port), 'legate: not probed (TLS listener)');
});
