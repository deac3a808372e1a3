// The C relay in a worker thread (legate's --concurrency > 1): a worker that ends while a relay
// runs closes the relay's connections, and the process lives on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { nativeRelayAvailable } from '../../../src/native/tcp-relay/index.ts';

test('C relay in a worker thread: terminating the worker mid-connection closes the client; the process lives', { skip: !nativeRelayAvailable() && 'the tcp-relay addon is not built' }, async () => {
  const worker = new Worker(new URL('../../fixtures/tcp-relay-worker.ts', import.meta.url));
  const messages: Array<{ port?: number; relayed?: boolean }> = [];
  worker.on('message', (m: { port?: number; relayed?: boolean }) => messages.push(m));
  const [{ port }] = (await once(worker, 'message')) as [{ port: number }];
  const c = net.connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  c.write('echo me');
  const [echo] = (await once(c, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'echo me');
  assert.deepEqual(messages.at(-1), { relayed: true });
  const closed = new Promise((r) => c.once('close', r));
  const code = await worker.terminate();
  assert.equal(code, 1);
  await closed;
  // The main thread's loop still runs: a fresh connection to a fresh server works.
  const server = net.createServer((s) => s.end('alive'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const probe = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [alive] = (await once(probe, 'data')) as [Buffer];
  assert.equal(alive.toString(), 'alive');
  server.close();
});
