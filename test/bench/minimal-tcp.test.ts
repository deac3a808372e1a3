// The minimal proxy's raw TCP pipe (bench/contestants/minimal-proxy.ts `tcp`), the suite's floor for
// tcp_proxy: a real echo server on 127.0.0.1 behind it, bytes both ways through it, and when the
// upstream closes the client's connection is closed too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { spawnPinned, stopChild, waitForPort } from '../../bench/lib/procs.ts';
import { freePort } from '../helpers/free-port.ts';

const SCRIPT = fileURLToPath(new URL('../../bench/contestants/minimal-proxy.ts', import.meta.url));

test('minimal proxy tcp: echoes through the pipe both ways; an upstream close reaches the client', { timeout: 30_000 }, async (t) => {
  const carried = new Set<net.Socket>(); // upstream connections that carried bytes (waitForPort's probe carries none)
  const echo = net.createServer((s) => {
    s.on('data', (d) => {
      carried.add(s);
      if (d.toString() === 'bye') s.end();
      else s.write(d);
    });
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const upstreamPort = (echo.address() as net.AddressInfo).port;
  const h1 = await freePort();
  const tcp = await freePort();
  const child = spawnPinned(1, process.execPath, [SCRIPT, String(h1), String(upstreamPort), JSON.stringify({ tcp })]);
  t.after(async () => {
    await stopChild(child);
    echo.close();
  });
  await waitForPort(tcp, child);

  const client = net.connect(tcp, '127.0.0.1');
  await once(client, 'connect');
  let received = '';
  client.on('data', (d: Buffer) => (received += d.toString()));
  const closed = once(client, 'close');
  for (const word of ['ping', 'pong']) {
    client.write(word);
    for (let i = 0; i < 100 && !received.endsWith(word); i++) await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(received, 'pingpong');
  assert.equal(carried.size, 1, 'one upstream connection for the client connection');
  client.write('bye'); // the echo server ends its side
  await closed;
  assert.equal(received, 'pingpong');
});
