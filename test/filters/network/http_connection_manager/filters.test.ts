// The filter chain through the HCM: StopIteration + continueDecoding, local replies (plain, gRPC,
// mapped by local_reply_config), access logs, backpressure on large bodies, WebSocket tunnels.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import http2 from 'node:http2';
import { h2request, jsonHeaders, probes, rawExchange, startProxy } from './harness.ts';

test('StopIteration then continueDecoding after a timer; body buffered meanwhile (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const t0 = Date.now();
    const r1 = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-test-pause-ms': '100' } });
    assert.equal(r1.statusCode, 200);
    assert.equal(jsonHeaders(await r1.body.text())['x-paused'], '100');
    assert.ok(Date.now() - t0 >= 95);
    const r2 = await h2request(p.port, { ':method': 'POST', 'x-test-pause-ms': '50' }, 'buffered body');
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), 'buffered body');
    assert.equal(p.counter('downstream_rq_2xx'), 2);
  } finally {
    await p.close();
  }
});

test('a filter sends a local reply; gRPC requests get a trailers-only reply', { timeout: 10_000 }, async () => {
  const p = await startProxy();
  try {
    const r1 = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-test-deny': '1' } });
    assert.equal(r1.statusCode, 403);
    assert.equal(r1.headers['content-type'], 'text/plain');
    assert.equal(r1.headers['x-pause-filter'], 'seen', 'local replies run through encoder filters');
    assert.equal(await r1.body.text(), 'denied by test');
    const r2 = await h2request(p.port, { 'x-test-action': 'local-reply', 'content-type': 'application/grpc' });
    assert.equal(r2.status, 200);
    assert.equal(r2.headers['grpc-status'], '14');
    assert.equal(r2.headers['grpc-message'], 'upstream said no');
    assert.equal(r2.body.length, 0);
    assert.equal(p.counter('downstream_rq_4xx'), 1);
  } finally {
    await p.close();
  }
});

test('local_reply_config: status override, JSON body format, headers_to_add (HTTP/1.1, HTTP/2)', { timeout: 10_000 }, async () => {
  const p = await startProxy({
    local_reply_config: {
      mappers: [
        {
          filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 503, runtime_key: 'k' } } } },
          status_code: 502,
          headers_to_add: [{ header: { key: 'x-mapped', value: 'yes' } }],
        },
      ],
      body_format: { json_format: { code: '%RESPONSE_CODE%', message: '%LOCAL_REPLY_BODY%', details: '%RESPONSE_CODE_DETAILS%' } },
    },
  });
  try {
    const r1 = await request(`http://127.0.0.1:${p.port}/`, { headers: { 'x-test-action': 'local-reply' } });
    assert.equal(r1.statusCode, 502);
    assert.equal(r1.headers['content-type'], 'application/json');
    assert.equal(r1.headers['x-mapped'], 'yes');
    assert.deepEqual(JSON.parse(await r1.body.text()), { code: 502, message: 'upstream said no', details: 'test_reply' });
    const r2 = await h2request(p.port, { 'x-test-deny': '1' });
    assert.equal(r2.status, 403);
    assert.deepEqual(JSON.parse(r2.body.toString()), { code: 403, message: 'denied by test', details: 'test_denied' });
    assert.equal(p.counter('downstream_rq_5xx'), 1);
  } finally {
    await p.close();
  }
});

test('access log written once per stream with the default format', { timeout: 10_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hcm-al-'));
  const file = path.join(dir, 'access.log');
  const p = await startProxy({
    access_log: [{ name: 'envoy.access_loggers.file', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: file } }],
  });
  try {
    await (await request(`http://127.0.0.1:${p.port}/logged?a=1`, { headers: { 'user-agent': 'ua-test' } })).body.text();
    await h2request(p.port, { 'x-test-deny': '1' });
  } finally {
    await p.close();
  }
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  fs.rmSync(dir, { recursive: true });
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^\[\S+\] "GET \/logged\?a=1 HTTP\/1.1" 200 - 0 \d+ \d+ - "-" "ua-test" "[0-9a-f-]{36}" "127.0.0.1:\d+" "-"$/);
  assert.ok(lines.some((l) => / "GET \/ HTTP\/2" 403 /.test(l)));
});

test('large bodies stream both ways with backpressure (HTTP/1.1 upload echo, HTTP/2 download)', { timeout: 30_000 }, async () => {
  const p = await startProxy();
  try {
    const size = 50 * 1024 * 1024;
    const before = probes.pauses;
    const rssBefore = process.memoryUsage().rss;
    // Download: read slowly at first so the proxy must pause.
    const session = http2.connect(`http://127.0.0.1:${p.port}`);
    const got = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/', 'x-test-action': 'big', 'x-test-size': String(size) });
      let n = 0;
      req.pause();
      setTimeout(() => req.resume(), 300);
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => resolve(n));
      req.on('error', reject);
    });
    session.close();
    assert.equal(got, size);
    assert.ok(probes.pauses > before, 'downstream backpressure reached the filter');

    // Upload echo over HTTP/1.1: the proxy echoes each chunk; the client reads slowly.
    const chunk = Buffer.alloc(1024 * 1024, 0x62);
    let sent = 0;
    const body = Readable.from(
      (function* () {
        while (sent < size) {
          sent += chunk.length;
          yield chunk;
        }
      })(),
    );
    const r = await request(`http://127.0.0.1:${p.port}/`, { method: 'POST', body });
    let echoed = 0;
    await new Promise((res) => setTimeout(res, 300));
    for await (const d of r.body) echoed += (d as Buffer).length;
    assert.equal(echoed, size);
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 200 * 1024 * 1024, `rss grew ${growth}`);
  } finally {
    await p.close();
  }
});

test('WebSocket upgrade through upgradeToTunnel (and 403 when upgrade_configs does not allow it)', { timeout: 10_000 }, async () => {
  const upstream = http.createServer((_q, s) => s.end('no'));
  upstream.on('upgrade', (_req, socket: net.Socket, head: Buffer) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-up: 1\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as net.AddressInfo).port;
  const p = await startProxy({ upgrade_configs: [{ upgrade_type: 'websocket' }] });
  const denied = await startProxy();
  try {
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = net.connect(p.port, '127.0.0.1', () => {
        s.write(`GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\nx-test-action: tunnel\r\nx-test-upstream: ${upPort}\r\n\r\n`);
      });
      let out = '';
      s.on('data', (d) => {
        out += d.toString();
        if (out.includes('\r\n\r\n') && !out.includes('ping')) s.write('ping-through-tunnel');
        if (out.endsWith('ping-through-tunnel')) {
          s.end();
          resolve(out);
        }
      });
      s.on('error', reject);
    });
    assert.match(echoed, /^HTTP\/1.1 101 Switching Protocols\r\n/);
    assert.match(echoed, /upgrade: websocket/i);
    assert.match(echoed, /x-up: 1/);
    assert.equal(p.counter('downstream_rq_1xx'), 1);

    const raw = await rawExchange(denied.port, `GET /ws HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\nx-test-action: tunnel\r\nx-test-upstream: ${upPort}\r\n\r\n`);
    assert.match(raw, /^HTTP\/1.1 403/);
    assert.equal(denied.counter('downstream_rq_ws_on_non_ws_route'), 1);
  } finally {
    await p.close();
    await denied.close();
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
  }
});
