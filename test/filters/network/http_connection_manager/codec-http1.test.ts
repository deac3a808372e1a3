// The HTTP/1.1 codec on llhttp (codec-http1-server.ts): a pipelined request waits for the slow
// response before it, `expect: 100-continue` gets its interim response, chunked bodies with
// trailers reach the filters, request_headers_timeout answers 408, an oversized head 431.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { rawExchange, startProxy } from './harness.ts';

test('a pipelined request waits for the paused response before it; responses in order', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const raw = await rawExchange(p.port, 'GET /slow HTTP/1.1\r\nhost: a\r\nx-test-pause-ms: 150\r\n\r\nGET /fast HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n', 3000);
    assert.equal((raw.match(/HTTP\/1.1 200/g) ?? []).length, 2);
    assert.ok(raw.indexOf('"/slow"') > 0 && raw.indexOf('"/slow"') < raw.indexOf('"/fast"'), raw);
    assert.match(raw, /\["x-paused","150"\]/);
  } finally {
    await p.close();
  }
});

test('expect: 100-continue gets "100 Continue" before the body is sent', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const s = net.connect(p.port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    await new Promise((r) => s.once('connect', r));
    s.write('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n');
    for (let i = 0; i < 100 && !out.includes('100 Continue'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(out, /^HTTP\/1.1 100 Continue\r\n\r\n/);
    s.end('hello');
    await new Promise((r) => s.once('close', r));
    assert.match(out, /HTTP\/1.1 200 OK[\s\S]*hello/);
  } finally {
    await p.close();
  }
});

test('a chunked request body with trailers reaches the filters (enable_trailers)', { timeout: 10_000 }, async () => {
  const p = await startProxy({ http_protocol_options: { enable_trailers: true } });
  try {
    const raw = await rawExchange(p.port, 'POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n', 3000);
    assert.match(raw, /^HTTP\/1.1 200/);
    assert.match(raw, /transfer-encoding: chunked/);
    // The echo filter returns the body and the trailers it saw (as echo-<name>).
    assert.match(raw, /3\r\nabc\r\n2\r\nde\r\n0\r\necho-x-t: 1\r\n\r\n/);
  } finally {
    await p.close();
  }
});

test('request_headers_timeout: a head that never completes gets 408 and the connection closes', { timeout: 10_000 }, async () => {
  const p = await startProxy({ request_headers_timeout: '0.2s' });
  try {
    const raw = await rawExchange(p.port, 'GET / HTTP/1.1\r\nhost: a\r\n', 3000);
    assert.match(raw, /^HTTP\/1.1 408 Request Timeout/);
    assert.match(raw, /connection: close/);
    assert.equal(p.counter('downstream_rq_header_timeout'), 1);
  } finally {
    await p.close();
  }
});

test('a request head over max_request_headers_kb: 431, counted as a protocol error', { timeout: 10_000 }, async () => {
  const p = await startProxy({ max_request_headers_kb: 1 });
  try {
    const raw = await rawExchange(p.port, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'b'.repeat(2000)}\r\n\r\n`, 3000);
    assert.match(raw, /^HTTP\/1.1 431/);
    assert.equal(p.counter('downstream_cx_protocol_error'), 1);
  } finally {
    await p.close();
  }
});

test('fast-path heads and llhttp heads interleave on one connection: plain GETs, a POST with a body, a chunked POST, a head split across writes; in order', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const out = await rawExchange(
      p.port,
      [
        'GET /a HTTP/1.1\r\nhost: a\r\n\r\n' +
          'POST /b HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nxyz' +
          'GET /c HTTP/1.1\r\nhost: a\r\n\r\n' +
          'POST /d HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n2\r\nqq\r\n0\r\n\r\n' +
          'GET /e HTTP/1.1\r\nho',
        'st: a\r\nconnection: close\r\n\r\n',
      ],
      3000,
    );
    assert.equal((out.match(/HTTP\/1.1 200/g) ?? []).length, 5, out);
    // The echo filter answers a GET with its headers and a POST with its body.
    const at = ['"/a"', '3\r\nxyz\r\n', '"/c"', '2\r\nqq\r\n', '"/e"'].map((x) => out.indexOf(x));
    assert.ok(at.every((x, i) => x > 0 && (i === 0 || x > at[i - 1]!)), out);
  } finally {
    await p.close();
  }
});

test('a smuggling attempt after a fast-path request in the same read is refused by llhttp: 400 after the 200', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const raw = await rawExchange(p.port, 'GET /ok HTTP/1.1\r\nhost: a\r\n\r\nPOST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n', 3000);
    assert.match(raw, /^HTTP\/1.1 200/);
    assert.match(raw, /HTTP\/1.1 400 Bad Request/);
    assert.ok(!raw.includes('"/smuggled"'), raw);
    assert.equal(p.counter('downstream_cx_protocol_error'), 1);
  } finally {
    await p.close();
  }
});

test('a request body that looks like a request, arriving in its own read, stays body (the fast path waits while llhttp is mid-message)', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const inner = 'GET /inner HTTP/1.1\r\nhost: a\r\n\r\n';
    const out = await rawExchange(p.port, [`POST /outer HTTP/1.1\r\nhost: a\r\nconnection: close\r\ncontent-length: ${inner.length}\r\n\r\n`, inner], 3000);
    assert.equal((out.match(/HTTP\/1.1 200/g) ?? []).length, 1, out);
    assert.ok(out.includes('GET /inner HTTP/1.1') && !out.includes('"/inner"'), out);
  } finally {
    await p.close();
  }
});

test('bytes after a `connection: close` request are dropped, as Envoy stops reading: one response, no 400, no protocol error', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const close = 'GET /a HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n';
    const next = 'GET /b HTTP/1.1\r\nhost: a\r\n\r\n';
    // In the same read, and after the response went out (a client that pipelines regardless).
    for (const send of [close + next, [close, next]]) {
      const raw = await rawExchange(p.port, send, 3000, 100);
      assert.equal((raw.match(/^HTTP\/1\.1 /gm) ?? []).length, 1, raw);
      assert.match(raw, /^HTTP\/1\.1 200 /);
      assert.match(raw, /connection: close/);
      assert.match(raw, /"\/a"/);
    }
    assert.equal(p.counter('downstream_rq_total'), 2);
    assert.equal(p.counter('downstream_rq_4xx'), 0);
    assert.equal(p.counter('downstream_cx_protocol_error'), 0);
  } finally {
    await p.close();
  }
});
