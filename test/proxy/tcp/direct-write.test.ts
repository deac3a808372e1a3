// DirectWriter on real 127.0.0.1 sockets: bytes written straight to the handle keep their order
// with Node's own writes (corked, buffered, end), a peer that stops reading makes writes queue in
// libuv (pending, false at the high-water mark, 'drain' once written), a dead peer's error
// destroys the socket, and a TLS socket falls back to socket.write.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { directWriter } from '../../../src/proxy/tcp/direct-write.ts';
import { createRootCa, issueCertificate } from '../../../src/proxy/tls/dev-ca.ts';

/** A connected pair on 127.0.0.1: `a` is ours to write, `b` the peer (paused until the test reads it). */
async function pair(): Promise<{ a: net.Socket; b: net.Socket; close(): void }> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[b]] = (await Promise.all([once(server, 'connection'), once(a, 'connect')])) as [[net.Socket], unknown];
  return {
    a,
    b,
    close: () => {
      a.destroy();
      b.destroy();
      server.close();
    },
  };
}

/** Everything `s` receives until its peer's FIN. */
async function readAll(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d: Buffer) => parts.push(d));
  s.resume();
  await once(s, 'end');
  return Buffer.concat(parts);
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('direct writes and Node writes (corked, buffered) reach the peer in order, and bytesWritten counts both', async () => {
  const { a, b, close } = await pair();
  try {
    const w = directWriter(a);
    const want: Buffer[] = [];
    const put = (data: string | Buffer, how: 'direct' | 'node'): void => {
      want.push(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
      if (how === 'direct') w.write(data);
      else a.write(data);
    };
    put('HTTP/1.1 200 OK\r\nx: \xe9\r\n\r\n', 'direct');
    put(pattern(1000, 1), 'direct');
    a.cork(); // Node's buffer is in use: the writer must not overtake it
    put('corked-1;', 'node');
    put('after-cork;', 'direct');
    a.uncork();
    put(pattern(70_000, 2), 'direct');
    put('tail', 'node');
    put('last', 'direct');
    const got = readAll(b);
    a.end();
    const bytes = await got;
    assert.deepEqual(bytes, Buffer.concat(want));
    assert.equal(a.bytesWritten, bytes.length);
  } finally {
    close();
  }
});

test('chunks waiting in Node’s Writable buffer (peer not reading) are not overtaken by a direct write', async () => {
  const { a, b, close } = await pair();
  try {
    const w = directWriter(a);
    const sent: Buffer[] = [];
    for (let i = 0; a.writableLength < 4 * 1024 * 1024 && i < 400; i++) {
      const c = pattern(128 * 1024, i);
      sent.push(c);
      a.write(c);
    }
    assert.ok(a.writableLength > 0, 'the test needs bytes buffered in Node');
    sent.push(Buffer.from('marker'));
    w.write('marker');
    const got = readAll(b);
    a.end();
    assert.deepEqual(await got, Buffer.concat(sent));
    assert.equal(w.pending, 0);
  } finally {
    close();
  }
});

test('a peer that stops reading: writes queue in libuv (pending), false at the high-water mark, then drain and every byte in order', async () => {
  const { a, b, close } = await pair();
  try {
    const w = directWriter(a);
    const chunk = 256 * 1024;
    const sent: Buffer[] = [];
    let i = 0;
    let ok = true;
    // The kernel's buffers fill first; then writes go async and count as pending.
    while (ok && i < 400) {
      const c = pattern(chunk, i++);
      sent.push(c);
      ok = w.write(c);
    }
    assert.equal(ok, false, 'a peer that never reads must push back');
    assert.ok(w.pending >= a.writableHighWaterMark, `pending ${w.pending}`);
    assert.equal(a.writableLength, 0, 'nothing went through Node’s Writable buffer');
    // Reused read buffers rely on this: a chunk written while pending is still referenced.
    const drained = once(a, 'drain');
    const got = readAll(b);
    await drained;
    assert.equal(w.pending, 0);
    a.end('end-marker');
    const bytes = await got;
    assert.deepEqual(bytes, Buffer.concat([...sent, Buffer.from('end-marker')]));
  } finally {
    close();
  }
});

test('end() while direct writes are queued waits for them: the peer gets every byte, then FIN', async () => {
  const { a, b, close } = await pair();
  try {
    const w = directWriter(a);
    const sent: Buffer[] = [];
    for (let i = 0; w.pending === 0 && i < 400; i++) {
      const c = pattern(128 * 1024, i);
      sent.push(c);
      w.write(c);
    }
    assert.ok(w.pending > 0, 'the test needs a write queued in libuv');
    a.end();
    const bytes = await readAll(b);
    assert.equal(bytes.length, sent.reduce((n, c) => n + c.length, 0));
    assert.deepEqual(bytes, Buffer.concat(sent));
  } finally {
    close();
  }
});

test('a write to a peer that reset destroys the socket with the write error; nothing throws', async () => {
  const { a, b, close } = await pair();
  try {
    const w = directWriter(a);
    b.resetAndDestroy();
    await once(b, 'close');
    const err = once(a, 'error');
    // The first write after the reset may still be taken; the kernel reports it on a later one.
    for (let i = 0; i < 50 && !a.destroyed; i++) {
      w.write(pattern(64 * 1024, i));
      await new Promise((r) => setTimeout(r, 5));
    }
    const [e] = (await err) as [NodeJS.ErrnoException];
    assert.ok(a.destroyed);
    assert.equal(e.syscall, 'write');
    assert.match(String(e.code), /^(EPIPE|ECONNRESET)$/);
  } finally {
    close();
  }
});

test('a TLS socket is written through socket.write: bytes arrive, nothing is pending in libuv', async () => {
  const ca = createRootCa({ commonName: 'direct-write test CA', keyType: 'ecdsa' });
  const leaf = issueCertificate(ca, { commonName: 'localhost', dnsNames: ['localhost'], keyType: 'ecdsa' });
  const server = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const received = new Promise<Buffer>((resolve) => {
    server.once('secureConnection', (s: tls.TLSSocket) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => {
        resolve(Buffer.concat(parts));
        s.end();
      });
    });
  });
  const c = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: ca.certPem });
  try {
    await once(c, 'secureConnect');
    const w = directWriter(c);
    const body = crypto.randomBytes(50_000);
    w.write('head;');
    w.write(body);
    assert.equal(w.pending, 0);
    c.end();
    assert.deepEqual(await received, Buffer.concat([Buffer.from('head;'), body]));
  } finally {
    c.destroy();
    server.close();
  }
});
