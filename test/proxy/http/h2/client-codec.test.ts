// legate's own HTTP/2 client (src/proxy/http/h2/client-session.ts) on 127.0.0.1 against nghttp2
// (node:http2 servers): many streams on one connection with HPACK tables in step, flow control
// both ways through small windows, trailers, 1xx, trailers-only replies, resets, GOAWAY, a paused
// response; and against hand-built frames (test/helpers/h2-raw.ts) for what a client must refuse.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { H2ClientSession, type H2ClientStream } from '../../../../src/proxy/http/h2/client-session.ts';
import type { H2CodecEvent } from '../../../../src/proxy/http/h2/session.ts';
import { F, RawH2, T, block, frame, goawayCode, rstCode } from '../../../helpers/h2-raw.ts';

const E = http2.constants;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Client {
  readonly session: H2ClientSession;
  readonly events: H2CodecEvent[];
  goaways: number;
}

async function connect(port: number, windowSize = 65535): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const c: { session?: H2ClientSession; events: H2CodecEvent[]; goaways: number } = { events: [], goaways: 0 };
  c.session = new H2ClientSession(socket, { initialWindowSize: windowSize, connectionWindowSize: windowSize, maxHeaderListSize: 65535 }, { onCodecEvent: (e) => c.events.push(e), onGoaway: () => c.goaways++ });
  return c as Client;
}

interface Reply {
  head?: string[];
  body: Buffer;
  /** Body bytes delivered so far. */
  received: number;
  trailers?: string[];
  reset?: { reason: string; code: number | undefined; local: boolean | undefined };
  stream?: H2ClientStream;
}

/** One request; resolves when the response ends or the stream is reset. `body` chunks are sent as the session takes them. */
function call(session: H2ClientSession, path: string, opts: { method?: string; headers?: string[]; body?: Buffer; trailers?: string[]; onData?: (r: Reply, s: H2ClientStream) => void } = {}): Promise<Reply> & { reply: Reply } {
  const r: Reply = { body: Buffer.alloc(0), received: 0 };
  const chunks: Buffer[] = [];
  let resolve!: (r: Reply) => void;
  const p = new Promise<Reply>((res) => (resolve = res)) as Promise<Reply> & { reply: Reply };
  p.reply = r;
  const done = (): void => {
    r.body = Buffer.concat(chunks);
    resolve(r);
  };
  const head = [':method', opts.method ?? (opts.body ? 'POST' : 'GET'), ':scheme', 'http', ':authority', 'upstream', ':path', path, ...(opts.headers ?? [])];
  const end = !opts.body && !opts.trailers;
  const s = session.request(head, end, {
    headers: (raw, e) => {
      r.head = raw;
      if (e) done();
    },
    data: (d, e) => {
      chunks.push(d);
      r.received += d.length;
      opts.onData?.(r, s!);
      if (e) done();
    },
    trailers: (raw) => {
      r.trailers = raw;
      done();
    },
    streamReset: (reason, code, local) => {
      r.reset = { reason, code, local };
      done();
    },
    writable: () => pump(),
  });
  assert.ok(s, 'session open');
  r.stream = s;
  const body = opts.body;
  let off = 0;
  const pump = (): void => {
    while (body && off < body.length) {
      const part = body.subarray(off, off + 32 * 1024);
      off += part.length;
      const last = off >= body.length && !opts.trailers;
      if (!session.sendData(s, part, last)) return;
    }
    if (body && off >= body.length && opts.trailers && !s.queueEnd) session.sendTrailers(s, opts.trailers);
  };
  if (body) pump();
  else if (opts.trailers) session.sendTrailers(s, opts.trailers);
  return p;
}

const field = (raw: readonly string[] | undefined, name: string): string | undefined => {
  if (!raw) return undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
};

async function h2Server(handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<{ server: http2.Http2Server; port: number }> {
  const server = http2.createServer({ settings });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // a stream the test resets from either side
    handler(stream, headers);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Reads a stream's request body whole. */
async function readAll(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('client: 100 concurrent streams on one connection, bodies both ways, HPACK tables in step with nghttp2', { timeout: 20_000 }, async () => {
  const { server, port } = await h2Server((stream, headers) => {
    void readAll(stream).then((body) => {
      // Response fields nghttp2 indexes: the same and a changing value per stream, evicting as the table fills.
      stream.respond({ ':status': 200, 'x-sha': sha(body), 'x-path': String(headers[':path']), 'x-same': 'constant', 'x-big': 'v'.repeat(300 + Number(headers['x-n'])) });
      stream.end(Buffer.alloc(Number(headers['x-n']) * 10, 'y'));
    });
  });
  const c = await connect(port);
  try {
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const body = Buffer.alloc(i * 100 + 1, i % 251);
        return call(c.session, `/r/${i}`, { body, headers: ['x-n', String(i), 'x-req', `value-${i}-${'z'.repeat(i)}`] }).then((r) => ({ r, i, body }));
      }),
    );
    for (const { r, i, body } of replies) {
      assert.equal(r.reset, undefined, `stream ${i}: ${r.reset?.reason}`);
      assert.equal(field(r.head, ':status'), '200');
      assert.equal(field(r.head, 'x-sha'), sha(body));
      assert.equal(field(r.head, 'x-path'), `/r/${i}`);
      assert.equal(field(r.head, 'x-same'), 'constant');
      assert.equal(field(r.head, 'x-big'), 'v'.repeat(300 + i));
      assert.equal(r.body.length, i * 10);
    }
    assert.equal(c.session.active, 0);
    assert.deepEqual(c.events, []);
  } finally {
    c.session.destroy();
    server.close();
  }
});

test('client flow control: 4 MiB each way through 16 KiB windows on both sides', { timeout: 20_000 }, async () => {
  const down = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < down.length; i += 4) down.writeUInt32BE((i * 2654435761) >>> 0, i);
  const { server, port } = await h2Server(
    (stream) => {
      void readAll(stream).then((body) => {
        stream.respond({ ':status': 200, 'x-sha': sha(body) });
        stream.end(down);
      });
    },
    { initialWindowSize: 16384 },
  );
  const c = await connect(port, 16384);
  try {
    const up = Buffer.alloc(4 * 1024 * 1024, 7);
    up.write('first', 0);
    up.write('last', up.length - 4);
    const r = await call(c.session, '/big', { body: up });
    assert.equal(r.reset, undefined, r.reset?.reason);
    assert.equal(field(r.head, 'x-sha'), sha(up));
    assert.equal(sha(r.body), sha(down));
  } finally {
    c.session.destroy();
    server.close();
  }
});

test('client: trailers both ways, 1xx skipped, a trailers-only reply, content-length checked on HEAD', { timeout: 10_000 }, async () => {
  const seen: Record<string, unknown>[] = [];
  const { server, port } = await h2Server((stream, headers) => {
    const path = headers[':path'];
    if (path === '/grpc') {
      stream.on('trailers', (t) => seen.push({ ...t }));
      void readAll(stream).then((body) => {
        stream.additionalHeaders({ ':status': 103, link: '</x>; rel=preload' });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-len': String(body.length) }));
        stream.end(Buffer.from('reply'));
      });
    } else if (path === '/only') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
    } else {
      stream.respond({ ':status': 200, 'content-length': '1234' }, { endStream: true });
    }
  });
  const c = await connect(port);
  try {
    const r = await call(c.session, '/grpc', { body: Buffer.from('hello'), trailers: ['x-client-trailer', 'yes'], headers: ['te', 'trailers'] });
    assert.equal(r.reset, undefined, r.reset?.reason);
    assert.equal(field(r.head, ':status'), '200', '103 skipped: the final head is delivered');
    assert.equal(r.body.toString(), 'reply');
    assert.equal(field(r.trailers, 'grpc-status'), '0');
    assert.equal(field(r.trailers, 'x-len'), '5');
    assert.equal(seen[0]?.['x-client-trailer'], 'yes');
    const only = await call(c.session, '/only', { method: 'POST' });
    assert.equal(field(only.head, 'grpc-status'), '5');
    assert.equal(only.body.length, 0);
    assert.equal(only.trailers, undefined);
    const head = await call(c.session, '/head', { method: 'HEAD' });
    assert.equal(head.reset, undefined, 'a HEAD reply with content-length and no body is well-formed');
    assert.equal(field(head.head, 'content-length'), '1234');
    assert.deepEqual(c.events, []);
  } finally {
    c.session.destroy();
    server.close();
  }
});

test('client: RST_STREAM from the server; GOAWAY refuses the streams it did not process and closes the session to new ones', { timeout: 10_000 }, async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const { server, port } = await h2Server((stream, headers) => {
    if (headers[':path'] === '/refuse') return stream.close(E.NGHTTP2_REFUSED_STREAM);
    held.push(stream);
  });
  const c = await connect(port);
  try {
    const refused = await call(c.session, '/refuse');
    assert.equal(refused.reset?.code, E.NGHTTP2_REFUSED_STREAM);
    assert.equal(refused.reset?.local, undefined);
    assert.ok(c.events.includes('rx_reset'));
    const first = call(c.session, '/a');
    const second = call(c.session, '/b');
    while (held.length < 2) await new Promise((r) => setTimeout(r, 10));
    const [a, b] = held as [http2.ServerHttp2Stream, http2.ServerHttp2Stream];
    // GOAWAY naming the first held stream: the second was "not processed".
    a.session!.goaway(E.NGHTTP2_NO_ERROR, a.id!);
    const r2 = await second;
    assert.equal(r2.reset?.code, E.NGHTTP2_REFUSED_STREAM, 'a stream above the GOAWAY is refused (retryable)');
    assert.equal(c.goaways, 1);
    assert.equal(c.session.closed, true);
    assert.equal(c.session.capacity, 0);
    assert.equal(c.session.request([':method', 'GET', ':scheme', 'http', ':authority', 'a', ':path', '/'], true, { headers() {}, data() {}, trailers() {}, streamReset() {}, writable() {} }), undefined);
    a.respond({ ':status': 200 });
    a.end('done');
    const r1 = await first;
    assert.equal(field(r1.head, ':status'), '200');
    assert.equal(r1.body.toString(), 'done', 'a stream the GOAWAY covers finishes');
    b.close();
    await once(c.session.socket, 'close');
  } finally {
    c.session.destroy();
    server.close();
  }
});

test('client: a paused response gets no WINDOW_UPDATE (the server blocks), and completes once resumed, also when it ended while paused', { timeout: 10_000 }, async () => {
  const body = Buffer.alloc(1024 * 1024, 3);
  let serverFlushed = false;
  const { server, port } = await h2Server((stream, headers) => {
    stream.respond({ ':status': 200 });
    if (headers[':path'] === '/small') return void stream.end(body.subarray(0, 40_000));
    stream.end(body, () => (serverFlushed = true));
  });
  const c = await connect(port);
  try {
    let paused = false;
    const p = call(c.session, '/big', {
      onData: (_r, s) => {
        if (paused) return;
        paused = true;
        c.session.setPaused(s, true);
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(serverFlushed, false, 'the server is held by the stream window');
    assert.ok(p.reply.received > 0 && p.reply.received <= 65535, `${p.reply.received} bytes delivered while paused`);
    c.session.setPaused(p.reply.stream!, false);
    const r = await p;
    assert.equal(r.body.length, body.length);
    assert.equal(sha(r.body), sha(body));
    // A response that ends while paused: the stream is closed, and what was held is still delivered on resume.
    let pausedSmall: H2ClientStream | undefined;
    const small = call(c.session, '/small', {
      onData: (_r, s) => {
        if (pausedSmall) return;
        pausedSmall = s;
        c.session.setPaused(s, true);
      },
    });
    while (!pausedSmall?.closed) await new Promise((res) => setTimeout(res, 10));
    c.session.setPaused(pausedSmall, false);
    const sr = await small;
    assert.equal(sr.body.length, 40_000);
  } finally {
    c.session.destroy();
    server.close();
  }
});

test('client: malformed responses are stream errors (PROTOCOL_ERROR, counted) and the connection goes on; a PUSH_PROMISE ends it', { timeout: 10_000 }, async () => {
  let conn: RawH2 | undefined;
  const raw = await RawH2.server((c) => (conn = c));
  const c = await connect(raw.port);
  try {
    while (!conn) await new Promise((r) => setTimeout(r, 5));
    const server = conn;
    const bad: (readonly (readonly [string, string])[])[] = [
      [['x-no-status', '1']],
      [[':status', 'abc']],
      [[':status', '200'], ['X-Upper', '1']],
      [[':status', '200'], [':path', '/']],
      [[':status', '200'], ['connection', 'close']],
      [['x-first', '1'], [':status', '200']],
    ];
    let id = 1;
    for (const h of bad) {
      const p = call(c.session, `/bad/${id}`);
      await server.waitFor((f) => f.type === T.HEADERS && f.id === id);
      server.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block(h)));
      const r = await p;
      assert.equal(r.reset?.code, E.NGHTTP2_PROTOCOL_ERROR, JSON.stringify(h));
      assert.equal(r.reset?.local, true);
      const rst = await server.waitFor((f) => f.type === T.RST_STREAM && f.id === id);
      assert.equal(rst && rstCode(rst), E.NGHTTP2_PROTOCOL_ERROR);
      id += 2;
    }
    // content-length 5 with 3 bytes of DATA and END_STREAM.
    const p = call(c.session, '/short');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === id);
    server.send(frame(T.HEADERS, F.END_HEADERS, id, block([[':status', '200'], ['content-length', '5']])), frame(T.DATA, F.END_STREAM, id, Buffer.from('abc')));
    assert.equal((await p).reset?.code, E.NGHTTP2_PROTOCOL_ERROR);
    assert.equal(c.events.filter((e) => e === 'rx_messaging_error').length, bad.length + 1);
    // DATA before any HEADERS on an open stream: STREAM_CLOSED.
    id += 2;
    const early = call(c.session, '/early');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === id);
    server.send(frame(T.DATA, 0, id, Buffer.from('x')));
    assert.equal((await early).reset?.code, E.NGHTTP2_STREAM_CLOSED);
    // Still usable: a good response.
    id += 2;
    const ok = call(c.session, '/ok');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === id);
    server.send(frame(T.HEADERS, F.END_HEADERS, id, block([[':status', '200'], ['content-length', '2']])), frame(T.DATA, F.END_STREAM, id, Buffer.from('ok')));
    const okr = await ok;
    assert.equal(okr.body.toString(), 'ok');
    // PUSH_PROMISE (the client announced ENABLE_PUSH 0): GOAWAY PROTOCOL_ERROR, open streams reset as the connection goes.
    id += 2;
    const open = call(c.session, '/open');
    await server.waitFor((f) => f.type === T.HEADERS && f.id === id);
    server.send(frame(T.PUSH_PROMISE, F.END_HEADERS, id, Buffer.concat([Buffer.from([0, 0, 0, 2]), block([[':method', 'GET']])])));
    const gone = await open;
    assert.equal(gone.reset?.code, undefined, 'the connection is gone');
    const ga = await server.waitFor((f) => f.type === T.GOAWAY);
    assert.equal(ga && goawayCode(ga), E.NGHTTP2_PROTOCOL_ERROR);
    assert.ok(await server.waitClosed());
  } finally {
    c.session.destroy();
    raw.close();
  }
});

test('client: the server\'s SETTINGS_MAX_CONCURRENT_STREAMS is the session\'s capacity; streams past it wait their turn, body and trailers kept', { timeout: 10_000 }, async () => {
  let open = 0;
  let most = 0;
  const trailers = new Map<string, unknown>();
  const { server, port } = await h2Server(
    (stream, headers) => {
      most = Math.max(most, ++open);
      stream.on('close', () => open--);
      stream.on('trailers', (t) => trailers.set(String(headers[':path']), t['x-t']));
      void readAll(stream).then((body) => {
        stream.respond({ ':status': 200, 'x-body': body.toString() });
        setTimeout(() => stream.end(String(headers[':path'])), 50);
      });
    },
    { maxConcurrentStreams: 2 },
  );
  const c = await connect(port);
  try {
    await call(c.session, '/first'); // the server's SETTINGS have arrived by its reply
    assert.equal(c.session.capacity, 2);
    const a = call(c.session, '/a');
    const b = call(c.session, '/b');
    assert.equal(c.session.capacity, 0);
    await Promise.all([a, b]);
    assert.equal(c.session.capacity, 2);
    // Six at once: four wait (id 0), each with its body (and one with trailers) queued, and go out as streams close.
    const many = Array.from({ length: 6 }, (_, i) => call(c.session, `/m/${i}`, { body: Buffer.from(`body-${i}`), ...(i === 5 ? { trailers: ['x-t', 'last'] } : {}) }));
    assert.equal(many.filter((m) => m.reply.stream!.id === 0).length, 4);
    const done = await Promise.all(many);
    done.forEach((r, i) => {
      assert.equal(r.reset, undefined, r.reset?.reason);
      assert.equal(field(r.head, 'x-body'), `body-${i}`);
      assert.equal(r.body.toString(), `/m/${i}`);
    });
    assert.equal(trailers.get('/m/5'), 'last');
    assert.equal(most, 2, 'never more than the server allows');
  } finally {
    c.session.destroy();
    server.close();
  }
});
