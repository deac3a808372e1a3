// legate's own HTTP/2 server codec (src/proxy/http/h2) behind a real connection manager on
// 127.0.0.1: HPACK against nghttp2's encoder (node:http2's client), flow control both ways with
// small windows, backpressure, and the protocol errors a server must answer — by node:http2
// clients and by hand-built frames (test/helpers/h2-raw.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { H2ServerSession } from '../../../../src/proxy/http/h2/server-session.ts';
import { h2on, h2request, jsonHeaders, probes, startProxy } from '../../../filters/network/http_connection_manager/harness.ts';
import { F, GET, RawH2, T, block, frame, goawayCode, rstCode } from '../../../helpers/h2-raw.ts';
import { H2_CODECS, withH2Codec } from '../../../helpers/h2-codec.ts';

const E = http2.constants;

async function withProxy(fn: (p: Awaited<ReturnType<typeof startProxy>>) => Promise<void>, extra: Record<string, unknown> = {}): Promise<void> {
  const p = await startProxy(extra);
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

test('HPACK: every byte a header value may hold, Huffman-coded by nghttp2, decodes to itself', { timeout: 20_000 }, async () => {
  await withProxy(async (p) => {
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => {});
    try {
      const bytes = [0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
      // Thirty-two values per request; common characters around each byte make nghttp2 choose Huffman.
      for (let i = 0; i < bytes.length; i += 32) {
        const headers: Record<string, string> = {};
        for (const b of bytes.slice(i, i + 32)) headers[`x-b${b}`] = `a0${String.fromCharCode(b).repeat(3)}e1`;
        const r = await h2on(session, headers);
        assert.equal(r.status, 200);
        const got = jsonHeaders(r.body);
        for (const [k, v] of Object.entries(headers)) assert.equal(got[k], v, k);
      }
    } finally {
      session.close();
    }
  });
});

test('HPACK: the client dynamic table and its evictions stay in step over many requests', { timeout: 20_000 }, async () => {
  await withProxy(async (p) => {
    // Values growing to ~400 bytes: nghttp2 indexes them and evicts from the 4 KiB table as it goes.
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => {});
    try {
      for (let i = 0; i < 60; i++) {
        const v = `value-${i}-${'x'.repeat(i * 7)}`;
        const r = await h2on(session, { 'x-n': v, 'x-same': 'constant', 'user-agent': `ua-${i % 3}` });
        const got = jsonHeaders(r.body);
        assert.equal(got['x-n'], v);
        assert.equal(got['x-same'], 'constant');
        assert.equal(got['user-agent'], `ua-${i % 3}`);
      }
    } finally {
      session.close();
    }
  });
});

test('flow control: 4 MiB each way through 16 KiB stream windows, and responses split by the peer frame size', { timeout: 30_000 }, async () => {
  await withProxy(async (p) => {
    const session = http2.connect(`http://127.0.0.1:${p.port}`, { settings: { initialWindowSize: 16384 } });
    session.on('error', () => {});
    try {
      const body = Buffer.alloc(4 * 1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
      const echo = await h2on(session, { ':method': 'POST' }, body);
      assert.equal(echo.status, 200);
      assert.equal(createHash('sha256').update(echo.body).digest('hex'), createHash('sha256').update(body).digest('hex'));
      const big = await h2on(session, { 'x-test-action': 'big', 'x-test-size': String(4 * 1024 * 1024) });
      assert.equal(big.body.length, 4 * 1024 * 1024);
      assert.ok(big.body.every((b) => b === 0x61));
    } finally {
      session.close();
    }
  });
});

test('backpressure: a client that stops reading pauses the response, and it completes when it reads again', { timeout: 30_000 }, async () => {
  await withProxy(async (p) => {
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    session.on('error', () => {});
    try {
      const pauses = probes.pauses;
      const size = 16 * 1024 * 1024;
      const req = session.request({ ':path': '/', 'x-test-action': 'big', 'x-test-size': String(size) });
      req.pause();
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(probes.pauses > pauses, 'encodeData said stop while the client was not reading');
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.resume();
      await new Promise((r) => req.on('end', r));
      assert.equal(n, size);
    } finally {
      session.close();
    }
  });
});

test('trailers both ways, and a request body read after the stream was paused by the filter chain', { timeout: 10_000 }, async () => {
  await withProxy(async (p) => {
    const r = await h2request(p.port, { ':method': 'POST' }, 'with trailers', { 'x-tr': 'v' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'with trailers');
    assert.equal(r.trailers?.['echo-x-tr'], 'v');
    const b = await h2request(p.port, { ':method': 'POST', 'x-test-pause-ms': '50' }, 'held while paused');
    assert.equal(b.body.toString(), 'held while paused');
  });
});

test('malformed requests are reset with PROTOCOL_ERROR and counted; the connection serves on', { timeout: 10_000 }, async () => {
  await withProxy(async (p) => {
    const c = await RawH2.connect(p.port);
    try {
      const cases: (readonly (readonly [string, string])[])[] = [
        [...GET, ['X-Upper', '1']],
        [...GET, ['connection', 'keep-alive']],
        [...GET, ['te', 'gzip']],
        [[':method', 'GET'], [':scheme', 'http'], [':authority', 'a']], // no :path
        [[':method', 'GET'], ['x-a', '1'], [':path', '/'], [':scheme', 'http']], // pseudo after regular
        [...GET, [':foo', 'x']],
        [...GET, ['x-v', 'a\nb']],
      ];
      let id = 1;
      for (const h of cases) {
        c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block(h)));
        const rst = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === id);
        assert.ok(rst, `stream ${id} reset`);
        assert.equal(rstCode(rst), E.NGHTTP2_PROTOCOL_ERROR);
        id += 2;
      }
      // content-length that the body does not match.
      c.send(frame(T.HEADERS, F.END_HEADERS, id, block([...GET.map(([k, v]) => [k, k === ':method' ? 'POST' : v] as const), ['content-length', '5']])), frame(T.DATA, F.END_STREAM, id, Buffer.from('abc')));
      const cl = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === id);
      assert.equal(cl && rstCode(cl), E.NGHTTP2_PROTOCOL_ERROR);
      id += 2;
      c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block(GET)));
      const ok = await c.waitFor((f) => f.type === T.HEADERS && f.id === id);
      assert.ok(ok, 'a well-formed request is answered');
      assert.equal(p.counter('http2.rx_messaging_error'), cases.length + 1);
    } finally {
      c.close();
    }
  });
});

test('connection errors end with GOAWAY and the right code', { timeout: 20_000 }, async () => {
  await withProxy(async (p) => {
    const cases: [string, (c: RawH2) => void, number][] = [
      ['DATA on stream 0', (c) => c.send(frame(T.DATA, 0, 0, Buffer.from('x'))), E.NGHTTP2_PROTOCOL_ERROR],
      ['WINDOW_UPDATE of 0', (c) => c.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(4))), E.NGHTTP2_PROTOCOL_ERROR],
      ['an even stream id', (c) => c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2, block(GET))), E.NGHTTP2_PROTOCOL_ERROR],
      ['an HPACK index past the tables', (c) => c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0xff, 0x7f]))), E.NGHTTP2_COMPRESSION_ERROR],
      ['a frame between HEADERS and CONTINUATION', (c) => c.send(frame(T.HEADERS, 0, 1, block(GET)), frame(T.PING, 0, 0, Buffer.alloc(8))), E.NGHTTP2_PROTOCOL_ERROR],
      ['PUSH_PROMISE from a client', (c) => c.send(frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.alloc(4))), E.NGHTTP2_PROTOCOL_ERROR],
      ['a frame larger than SETTINGS_MAX_FRAME_SIZE', (c) => c.send(frame(T.DATA, 0, 1, Buffer.alloc(16385))), E.NGHTTP2_FRAME_SIZE_ERROR],
      ['SETTINGS with a bad length', (c) => c.send(frame(T.SETTINGS, 0, 0, Buffer.alloc(5))), E.NGHTTP2_FRAME_SIZE_ERROR],
    ];
    for (const [what, act, code] of cases) {
      const c = await RawH2.connect(p.port);
      act(c);
      const g = await c.waitFor((f) => f.type === T.GOAWAY);
      assert.ok(g, `${what}: GOAWAY`);
      assert.equal(goawayCode(g), code, what);
      assert.ok(await c.waitClosed(3000), `${what}: connection closed`);
    }
    // Dynamic table size updates: to 0 before the fields is fine; above the 4,096 announced is not.
    const up = await RawH2.connect(p.port);
    up.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([Buffer.from([0x20]), block(GET)])));
    assert.ok(await up.waitFor((f) => f.type === T.HEADERS && f.id === 1), 'answered after a size update to 0');
    up.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, Buffer.concat([Buffer.from([0x3f, 0xe2, 0x1f]), block(GET)])));
    const g = await up.waitFor((f) => f.type === T.GOAWAY);
    assert.equal(g && goawayCode(g), E.NGHTTP2_COMPRESSION_ERROR);
    up.close();
  });
});

test('flow control: DATA past a paused stream\'s window resets it; the connection serves on', { timeout: 10_000 }, async () => {
  // The session alone on a real socket, every stream read-disabled: no WINDOW_UPDATE gives bytes back.
  const events: string[] = [];
  const server = net.createServer((socket) => {
    const session: H2ServerSession = new H2ServerSession(
      socket,
      { maxConcurrentStreams: 10, initialWindowSize: 65535, connectionWindowSize: 100_000, maxHeaderListSize: 65535, maxHeaderPairs: 100, enableConnectProtocol: false },
      { onStream: (st) => session.setPaused(st, true), onCodecEvent: (e) => events.push(e) },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const post = (id: number): Buffer => frame(T.HEADERS, F.END_HEADERS, id, block([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'a']]));
    const c = await RawH2.connect(port);
    try {
      // Stream 1 fills its 65,535-byte window; one byte more is a stream error.
      c.send(post(1), ...[16384, 16384, 16384, 16383].map((n) => frame(T.DATA, 0, 1, Buffer.alloc(n))), frame(T.DATA, 0, 1, Buffer.alloc(1)));
      const rst = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === 1);
      assert.equal(rst && rstCode(rst), E.NGHTTP2_FLOW_CONTROL_ERROR);
      // No WINDOW_UPDATE was sent for the paused stream; the connection's window was given back.
      assert.equal(c.frames.find((f) => f.type === T.WINDOW_UPDATE && f.id === 1), undefined);
      assert.ok(c.frames.find((f) => f.type === T.WINDOW_UPDATE && f.id === 0));
      // DATA for the reset stream is dropped; a new stream is still taken.
      c.send(frame(T.DATA, 0, 1, Buffer.alloc(10)), post(3), frame(T.DATA, 0, 3, Buffer.alloc(100)));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(c.frames.find((f) => f.type === T.GOAWAY || (f.type === T.RST_STREAM && f.id === 3)), undefined);
      assert.deepEqual(events, ['tx_reset']);
    } finally {
      c.close();
    }
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('codec_type HTTP2: a connection without the preface gets GOAWAY(PROTOCOL_ERROR) and is closed', { timeout: 10_000 }, async () => {
  await withProxy(
    async (p) => {
      const c = await RawH2.connect(p.port, null);
      c.socket.write('GET / HTTP/1.1\r\nhost: a\r\nx: yyyyyyyy\r\n\r\n');
      const g = await c.waitFor((f) => f.type === T.GOAWAY);
      assert.equal(g && goawayCode(g), E.NGHTTP2_PROTOCOL_ERROR);
      assert.ok(await c.waitClosed(3000));
      assert.equal(p.counter('downstream_cx_protocol_error'), 1);
    },
    { codec_type: 'HTTP2' },
  );
});

test('PING is answered, CONTINUATION and padding are read, concurrent streams past the limit are refused', { timeout: 10_000 }, async () => {
  await withProxy(
    async (p) => {
      const c = await RawH2.connect(p.port);
      try {
        c.send(frame(T.PING, 0, 0, Buffer.from('12345678')));
        const pong = await c.waitFor((f) => f.type === T.PING && (f.flags & F.ACK) !== 0);
        assert.equal(pong?.payload.toString(), '12345678');
        // A header block in three parts.
        const b = block([...GET, ['x-long', 'y'.repeat(300)]]);
        c.send(frame(T.HEADERS, F.END_STREAM, 1, b.subarray(0, 100)), frame(T.CONTINUATION, 0, 1, b.subarray(100, 200)), frame(T.CONTINUATION, F.END_HEADERS, 1, b.subarray(200)));
        assert.ok(await c.waitFor((f) => f.type === T.HEADERS && f.id === 1), 'answered after CONTINUATION');
        // Padded HEADERS (with a priority) and padded DATA.
        const hb = block([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'a']]);
        const padded = Buffer.concat([Buffer.from([4]), Buffer.from([0, 0, 0, 0, 16]), hb, Buffer.alloc(4)]);
        const data = Buffer.concat([Buffer.from([3]), Buffer.from('body'), Buffer.alloc(3)]);
        c.send(frame(T.HEADERS, F.END_HEADERS | F.PADDED | F.PRIORITY, 3, padded), frame(T.DATA, F.PADDED | F.END_STREAM, 3, data));
        const echoed = await c.waitFor((f) => f.type === T.DATA && f.id === 3 && f.payload.length > 0);
        assert.equal(echoed?.payload.toString(), 'body');
        // Two hanging streams are the limit; the third is refused.
        for (const id of [5, 7, 9]) c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block([...GET, ['x-test-action', 'hang']])));
        const refused = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === 9);
        // A stream that depends on itself is reset; its header block still counted for HPACK.
        const self = Buffer.concat([Buffer.from([0, 0, 0, 11, 16]), block(GET)]);
        c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PRIORITY, 11, self));
        const selfRst = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === 11);
        assert.equal(selfRst && rstCode(selfRst), E.NGHTTP2_PROTOCOL_ERROR);
        assert.equal(refused && rstCode(refused), E.NGHTTP2_REFUSED_STREAM);
        assert.equal(c.frames.find((f) => f.type === T.RST_STREAM && (f.id === 5 || f.id === 7)), undefined);
      } finally {
        c.close();
      }
    },
    { http2_protocol_options: { max_concurrent_streams: 2 } },
  );
});

test('a client reset reaches the stream (downstream reset), and an early response stops the upload with RST_STREAM NO_ERROR', { timeout: 10_000 }, async () => {
  await withProxy(async (p) => {
    const c = await RawH2.connect(p.port);
    try {
      c.send(frame(T.HEADERS, F.END_HEADERS, 1, block([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'a'], ['x-test-action', 'hang']])));
      await new Promise((r) => setTimeout(r, 50));
      c.send(frame(T.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(p.counter('http2.rx_reset'), 1);
      assert.equal(p.counter('downstream_rq_rx_reset'), 1);
      // A local reply while the body is still coming: the whole response, then RST_STREAM(NO_ERROR).
      c.send(frame(T.HEADERS, F.END_HEADERS, 3, block([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'a'], ['x-test-deny', '1']])));
      const rst = await c.waitFor((f) => f.type === T.RST_STREAM && f.id === 3);
      assert.equal(rst && rstCode(rst), E.NGHTTP2_NO_ERROR);
      const head = c.frames.findIndex((f) => f.type === T.HEADERS && f.id === 3);
      const end = c.frames.findIndex((f) => f.id === 3 && (f.type === T.DATA || f.type === T.HEADERS) && (f.flags & F.END_STREAM) !== 0);
      assert.ok(head >= 0 && end >= head && end < c.frames.indexOf(rst!), 'the response ended before the reset');
    } finally {
      c.close();
    }
  });
});

test('floods are bounded: rapid reset, empty DATA frames, endless CONTINUATION — each closes the connection with ENHANCE_YOUR_CALM, counted', { timeout: 20_000 }, async () => {
  await withProxy(async (p) => {
    const post = (id: number): Buffer => frame(T.HEADERS, F.END_HEADERS, id, block([[':method', 'POST'], [':scheme', 'http'], [':path', '/'], [':authority', 'a'], ['x-test-action', 'hang']]));
    // Rapid reset: 500 streams opened and cancelled at once.
    const rr = await RawH2.connect(p.port);
    const burst: Buffer[] = [];
    for (let i = 0; i < 500; i++) burst.push(post(1 + 2 * i), frame(T.RST_STREAM, 0, 1 + 2 * i, Buffer.from([0, 0, 0, 8])));
    rr.send(...burst);
    const g1 = await rr.waitFor((f) => f.type === T.GOAWAY, 5000);
    assert.equal(g1 && goawayCode(g1), E.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(await rr.waitClosed(3000));
    assert.equal(p.counter('downstream_rq_too_many_premature_resets'), 1);
    assert.equal(p.counter('http2.rx_reset'), 500);
    // Empty DATA frames in a row.
    const empty = await RawH2.connect(p.port);
    empty.send(post(1), frame(T.DATA, 0, 1), frame(T.DATA, 0, 1));
    const g2 = await empty.waitFor((f) => f.type === T.GOAWAY);
    assert.equal(g2 && goawayCode(g2), E.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(p.counter('http2.inbound_empty_frames_flood'), 1);
    empty.close();
    // A header block that never ends.
    const cont = await RawH2.connect(p.port);
    cont.send(frame(T.HEADERS, 0, 1, block(GET)), ...Array.from({ length: 200 }, () => frame(T.CONTINUATION, 0, 1)));
    const g3 = await cont.waitFor((f) => f.type === T.GOAWAY);
    assert.equal(g3 && goawayCode(g3), E.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal(p.counter('http2.header_overflow'), 1);
    cont.close();
  });
});

test('cookie fields split across HTTP/2 headers reach the filters joined by "; " (RFC 9113 §8.2.3), on both codecs', { timeout: 10_000 }, async () => {
  for (const codec of H2_CODECS) {
    const p = await withH2Codec(codec, () => startProxy());
    try {
      const r = await h2request(p.port, { cookie: ['a=1', 'b=2', 'c=3'] });
      const pairs = (JSON.parse(r.body.toString()) as { headers: [string, string][] }).headers.filter(([k]) => k === 'cookie');
      assert.deepEqual(pairs, [['cookie', 'a=1; b=2; c=3']], codec);
    } finally {
      await p.close();
    }
  }
});
