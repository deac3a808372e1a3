// afterRead: work queued inside a socket's read callback runs as the callback returns (before the
// tick queue), and on the next tick anywhere else. On a real 127.0.0.1 socket read through
// user-buffer-read.ts, and with runAsRead directly for a task that throws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { afterRead, runAsRead } from '../../../src/proxy/tcp/after-read.ts';
import { readIntoUserBuffer } from '../../../src/proxy/tcp/user-buffer-read.ts';

test('inside a read callback: after the callback returns, before process.nextTick work it queued first', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [conn] = (await once(server, 'connection')) as [net.Socket];
  const order: string[] = [];
  const done = new Promise<void>((resolve) => {
    const reader = readIntoUserBuffer(conn, (nread, buffer) => {
      const text = buffer.toString('latin1', 0, nread);
      process.nextTick(() => {
        order.push('tick');
        resolve();
      });
      afterRead((t: string) => order.push(`after ${t}`), text);
      order.push(`read ${text}`);
      return true;
    });
    assert.ok(reader, 'a plain socket reads into a user buffer');
  });
  client.write('x');
  await done;
  assert.deepEqual(order, ['read x', 'after x', 'tick']);
  client.destroy();
  conn.destroy();
  server.close();
});

test('outside a read callback: on the next tick', async () => {
  const order: string[] = [];
  afterRead((n: number) => order.push(`after ${n}`), 1);
  order.push('sync');
  await new Promise<void>((r) => process.nextTick(r));
  assert.deepEqual(order, ['sync', 'after 1']);
});

test('a task that throws: the error reaches the read callback\'s caller, the tasks after it run on the next tick', async () => {
  const order: string[] = [];
  assert.throws(
    () =>
      runAsRead(
        () => {
          afterRead(() => order.push('first'), undefined);
          afterRead(() => {
            throw new Error('boom');
          }, undefined);
          afterRead(() => order.push('third'), undefined);
          return true;
        },
        0,
        Buffer.alloc(0),
      ),
    /boom/,
  );
  assert.deepEqual(order, ['first']);
  await new Promise<void>((r) => process.nextTick(r));
  assert.deepEqual(order, ['first', 'third']);
  // The queue is empty again: a later read callback runs only its own tasks.
  runAsRead(() => (afterRead(() => order.push('later'), undefined), true), 0, Buffer.alloc(0));
  assert.deepEqual(order, ['first', 'third', 'later']);
});
