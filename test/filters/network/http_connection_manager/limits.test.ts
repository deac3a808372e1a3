// Limits and timeouts: header size/count → 431, underscores, request smuggling, stream idle and
// request timeouts → 408, connection idle timeout, drain. HTTP/1.1 and HTTP/2 each, with stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { request } from 'undici';
import { h2request, jsonHeaders, rawExchange, startProxy } from './harness.ts';

test('request headers above max_request_headers_kb → 431 (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ max_request_headers_kb: 2 });
  try {
    const raw = await rawExchange(p.port, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(3000)}\r\n\r\n`);
    assert.match(raw, /^HTTP\/1.1 431 Request Header Fields Too Large/);
    const r = await h2request(p.port, { 'x-big': 'b'.repeat(3000) });
    assert.equal(r.status, 431);
    assert.equal(r.body.toString(), 'Request Header Fields Too Large');
    assert.equal(p.counter('downstream_rq_4xx'), 2);
    assert.equal((await request(`http://127.0.0.1:${p.port}/`)).statusCode, 200);
  } finally {
    await p.close();
  }
});

test('more headers than max_headers_count → 431 (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ common_http_protocol_options: { max_headers_count: 5 } });
  try {
    const many: Record<string, string> = {};
    for (let i = 0; i < 8; i++) many[`x-h${i}`] = 'v';
    const r1 = await request(`http://127.0.0.1:${p.port}/`, { headers: many });
    assert.equal(r1.statusCode, 431);
    await r1.body.dump();
    const r2 = await h2request(p.port, many);
    assert.equal(r2.status, 431);
    assert.equal(p.counter('downstream_rq_4xx'), 2);
    assert.equal(p.counter('downstream_cx_protocol_error'), 2, JSON.stringify(p.stats.snapshot().counters));
  } finally {
    await p.close();
  }
});

test('headers_with_underscores_action DROP_HEADER and REJECT_REQUEST', { timeout: 10_000 }, async () => {
  const drop = await startProxy({ common_http_protocol_options: { headers_with_underscores_action: 'DROP_HEADER' } });
  const rej = await startProxy({ common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' } });
  try {
    const r1 = await request(`http://127.0.0.1:${drop.port}/`, { headers: { x_under: '1', 'x-ok': '1' } });
    const h1 = jsonHeaders(await r1.body.text());
    assert.equal(h1['x_under'], undefined);
    assert.equal(h1['x-ok'], '1');
    const r2 = await h2request(drop.port, { x_under: '1' });
    assert.equal(jsonHeaders(r2.body)['x_under'], undefined);
    assert.equal(drop.counter('http1.dropped_headers_with_underscores'), 1);
    assert.equal(drop.counter('http2.dropped_headers_with_underscores'), 1);

    assert.match(await rawExchange(rej.port, 'GET / HTTP/1.1\r\nhost: a\r\nx_under: 1\r\n\r\n'), /^HTTP\/1.1 400/);
    await assert.rejects(h2request(rej.port, { x_under: '1' }), /NGHTTP2_PROTOCOL_ERROR|stream error/i);
    assert.equal(rej.counter('http1.requests_rejected_with_underscores_in_headers'), 1);
    assert.equal(rej.counter('http2.requests_rejected_with_underscores_in_headers'), 1);
  } finally {
    await drop.close();
    await rej.close();
  }
});

test('request smuggling: Content-Length with Transfer-Encoding → 400 and the connection closes', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const raw = await rawExchange(
      p.port,
      'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n',
    );
    assert.match(raw, /^HTTP\/1.1 400 Bad Request/);
    assert.doesNotMatch(raw, /smuggled/);
    assert.equal((raw.match(/HTTP\/1.1/g) ?? []).length, 1);
    assert.equal(p.counter('downstream_cx_protocol_error'), 1);
  } finally {
    await p.close();
  }
});

test('stream_idle_timeout → 408 "stream timeout" (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ stream_idle_timeout: '0.2s' });
  try {
    const r1 = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-test-action': 'hang' } });
    assert.equal(r1.statusCode, 408);
    assert.equal(await r1.body.text(), 'stream timeout');
    const r2 = await h2request(p.port, { 'x-test-action': 'hang' });
    assert.equal(r2.status, 408);
    assert.equal(p.counter('downstream_rq_idle_timeout'), 2);
    assert.equal(p.counter('downstream_rq_4xx'), 2);
  } finally {
    await p.close();
  }
});

test('request_timeout → 408 "request timeout" when the body never completes (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ request_timeout: '0.2s' });
  try {
    const raw = await rawExchange(p.port, 'POST / HTTP/1.1\r\nhost: a\r\nx-test-action: hang\r\ncontent-length: 100\r\n\r\nabc', 2000);
    assert.match(raw, /^HTTP\/1.1 408/);
    assert.match(raw, /request timeout$/);
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    const status = await new Promise<string>((resolve) => {
      const req = session.request({ ':path': '/', ':method': 'POST', 'x-test-action': 'hang' }, { endStream: false });
      req.write('partial');
      req.on('response', (h) => resolve(String(h[':status'])));
      req.on('error', () => {});
    });
    session.destroy();
    assert.equal(status, '408');
    assert.equal(p.counter('downstream_rq_timeout'), 2);
  } finally {
    await p.close();
  }
});

test('connection idle_timeout closes idle connections (HTTP/1.1 close, HTTP/2 GOAWAY)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ common_http_protocol_options: { idle_timeout: '0.2s' } });
  try {
    const t0 = Date.now();
    const raw = await rawExchange(p.port, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n', 3000);
    assert.match(raw, /^HTTP\/1.1 200/);
    assert.ok(Date.now() - t0 < 2000, 'closed by the idle timeout');
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    const goaway = new Promise<void>((resolve) => session.on('goaway', () => resolve()));
    session.on('error', () => {});
    await new Promise<void>((resolve) => session.request({ ':path': '/' }).on('end', resolve).resume());
    await goaway;
    session.destroy();
    assert.equal(p.counter('downstream_cx_idle_timeout'), 2);
  } finally {
    await p.close();
  }
});

test('drain: HTTP/2 gets GOAWAY, HTTP/1.1 responses get Connection: close, idle connections close after drain_timeout', { timeout: 10_000 }, async () => {
  const p = await startProxy({ drain_timeout: '0.3s' });
  try {
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => {});
    await new Promise<void>((resolve) => session.request({ ':path': '/' }).on('end', resolve).resume());
    const goaway = new Promise<void>((resolve) => session.on('goaway', () => resolve()));
    const idleH1 = net.connect(p.port, '127.0.0.1');
    const idleClosed = new Promise<void>((resolve) => idleH1.on('close', () => resolve()));
    idleH1.on('error', () => {});
    await new Promise((r) => idleH1.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    p.manager.drain();
    await goaway;
    await idleClosed;
    session.destroy();
    const raw = await rawExchange(p.port, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n', 2000);
    assert.match(raw, /^HTTP\/1.1 200/);
    assert.match(raw, /connection: close/i);
    assert.equal(p.counter('downstream_cx_drain_close'), 2);
  } finally {
    await p.close();
  }
});

test('drain: a connection accepted before the drain whose request comes after it is served (Connection: close), not reset', { timeout: 10_000 }, async () => {
  const p = await startProxy({ drain_timeout: '2s' });
  try {
    // One connection still waiting for its first bytes, one that chose HTTP/1.1 and is idle.
    const fresh = net.connect(p.port, '127.0.0.1');
    fresh.on('error', () => {});
    await new Promise((r) => fresh.once('connect', r));
    const keptAlive = net.connect(p.port, '127.0.0.1');
    keptAlive.on('error', () => {});
    await new Promise((r) => keptAlive.once('connect', r));
    const first = exchange(keptAlive, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n');
    assert.match(await first, /^HTTP\/1.1 200/);
    p.manager.drain();
    await new Promise((r) => setTimeout(r, 50));
    for (const s of [fresh, keptAlive]) {
      const raw = await exchange(s, 'GET / HTTP/1.1\r\nhost: a\r\n\r\n');
      assert.match(raw, /^HTTP\/1.1 200/);
      assert.match(raw, /connection: close/i);
    }
  } finally {
    await p.close();
  }
});

/** Writes one request on an open socket and resolves with the first response's bytes (up to its body). */
function exchange(s: net.Socket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let raw = '';
    const onData = (d: Buffer): void => {
      raw += d.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(raw);
      if (end >= 0 && len && raw.length >= end + 4 + Number(len[1])) {
        s.off('data', onData);
        s.off('close', onClose);
        resolve(raw);
      }
    };
    const onClose = (): void => reject(new Error(`closed before a response: ${JSON.stringify(raw)}`));
    s.on('data', onData);
    s.once('close', onClose);
    s.write(request);
  });
}
