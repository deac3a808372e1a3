import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { compileFilterDisabled, runListenerFilters, withFilterDisabled } from '../../../../src/proxy/listener/listener-filters.ts';
import type { ConnectionMatchInput } from '../../../../src/proxy/listener/filter-chain-match.ts';
import { HttpInspector } from '../../../../src/filters/listener/http_inspector/filter.ts';
import { detectHttp } from '../../../../src/filters/listener/http_inspector/detect.ts';
import { TlsInspector } from '../../../../src/filters/listener/tls_inspector/filter.ts';
import { registerHttpInspector } from '../../../../src/filters/listener/http_inspector/index.ts';
import { ExtensionRegistry } from '../../../../src/filters/registry.ts';

test('detectHttp: table', () => {
  const cases: [string, string][] = [
    ['GET / HTTP/1.1\r\n', 'http/1.1'],
    ['POST /x?y=1 HTTP/1.0\r\nHost: a\r\n', 'http/1.0'],
    ['M-SEARCH * HTTP/1.1\r\n', 'http/1.1'],
    ['GET / HTTP/1.1', 'more'],
    ['GE', 'more'],
    ['GET /', 'more'],
    ['GET / HTTP/', 'more'],
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'h2c'],
    ['PRI * HTTP/2.0\r\n', 'more'],
    ['HELLO / HTTP/1.1\r\n', 'not_http'],
    ['GET / HTTP/2.0\r\n', 'not_http'],
    ['GET / FTP/1.1', 'not_http'],
    ['get / HTTP/1.1\r\n', 'not_http'],
    ['\x16\x03\x01', 'not_http'],
    ['GET  HTTP/1.1\r\n', 'not_http'],
  ];
  for (const [input, want] of cases) assert.equal(detectHttp(Buffer.from(input, 'latin1')), want, JSON.stringify(input));
});

async function inspect(send: (c: net.Socket) => Promise<void>, withTls = true): Promise<{ input: ConnectionMatchInput | undefined; rest: Buffer; stats: StatsStore }> {
  const stats = new StatsStore();
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const result = new Promise<{ input: ConnectionMatchInput | undefined; rest: Buffer }>((resolve) => {
      server.once('connection', (socket) => {
        socket.on('error', () => {});
        const filters = [...(withTls ? [new TlsInspector({ statPrefix: 'tls_inspector.' }, stats)] : []), new HttpInspector({ statPrefix: 'http_inspector.' }, stats)];
        void runListenerFilters(socket, filters, 2000, false).then((input) => {
          const chunks: Buffer[] = [];
          socket.on('data', (c: Buffer) => chunks.push(c));
          socket.on('close', () => resolve({ input, rest: Buffer.concat(chunks) }));
          setTimeout(() => socket.destroy(), 200);
        });
      });
    });
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    c.on('error', () => {});
    await once(c, 'connect');
    await send(c);
    const r = await result;
    c.destroy();
    return { ...r, stats };
  } finally {
    server.close();
  }
}

test('http_inspector: HTTP/1.1 request line (split) → http/1.1, bytes given back', async () => {
  const req = 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n';
  const { input, rest, stats } = await inspect(async (c) => {
    c.write(req.slice(0, 5));
    await sleep(20);
    c.write(req.slice(5));
  });
  assert.equal(input?.transportProtocol, 'raw_buffer');
  assert.deepEqual(input?.applicationProtocols, ['http/1.1']);
  assert.equal(rest.toString(), req);
  const c = stats.snapshot().counters;
  assert.equal(c['http_inspector.http11_found'], 1);
  assert.equal(c['tls_inspector.tls_not_found'], 1);
});

test('http_inspector: HTTP/1.0', async () => {
  const { input, stats } = await inspect(async (c) => void c.write('HEAD / HTTP/1.0\r\n\r\n'), false);
  assert.deepEqual(input?.applicationProtocols, ['http/1.0']);
  assert.equal(stats.snapshot().counters['http_inspector.http10_found'], 1);
});

test('http_inspector: h2c prior-knowledge preface from a real http2 client → h2c', async () => {
  const stats = new StatsStore();
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const got = new Promise<{ input: ConnectionMatchInput | undefined; rest: Buffer }>((resolve) => {
      server.once('connection', (socket) => {
        socket.on('error', () => {});
        void runListenerFilters(socket, [new TlsInspector({ statPrefix: 'tls_inspector.' }, stats), new HttpInspector({ statPrefix: 'http_inspector.' }, stats)], 2000, false).then((input) => {
          socket.once('data', (d: Buffer) => {
            resolve({ input, rest: d });
            socket.destroy();
          });
        });
      });
    });
    const session = http2.connect(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    session.on('error', () => {});
    const { input, rest } = await got;
    session.destroy();
    assert.deepEqual(input?.applicationProtocols, ['h2c']);
    assert.equal(rest.subarray(0, 24).toString('latin1'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assert.equal(stats.snapshot().counters['http_inspector.http2_found'], 1);
  } finally {
    server.close();
  }
});

test('http_inspector: non-HTTP bytes → http_not_found, no ALPN', async () => {
  const { input, rest, stats } = await inspect(async (c) => void c.write('SSH-2.0-OpenSSH_9.6\r\n'));
  assert.deepEqual(input?.applicationProtocols, []);
  assert.equal(rest.toString(), 'SSH-2.0-OpenSSH_9.6\r\n');
  assert.equal(stats.snapshot().counters['http_inspector.http_not_found'], 1);
});

test('filter_disabled: destination_port_range skips the filter', () => {
  const r = compileFilterDisabled({ rule: 'destination_port_range', destination_port_range: { start: 8000, end: 9000 } }, 'lf[0].filter_disabled');
  assert.ok(r.ok);
  const base = { destinationPort: 8080, destinationIp: '', serverName: undefined, transportProtocol: '', applicationProtocols: [], sourceIp: '', sourcePort: 1 };
  assert.equal(r.value(base), true);
  assert.equal(r.value({ ...base, destinationPort: 9000 }), false);
  const not = compileFilterDisabled({ rule: 'not_match', not_match: { rule: 'destination_port_range', destination_port_range: { start: 8000, end: 9000 } } }, 'p');
  assert.ok(not.ok && not.value({ ...base, destinationPort: 1 }));
  let called = 0;
  const wrapped = withFilterDisabled({ onAccept: async () => void called++ }, r.value);
  void wrapped.onAccept(null as never, { ...base, applicationProtocols: [] }, new AbortController().signal);
  assert.equal(called, 0);
});

test('http_inspector: registration by name, alias and type', () => {
  const reg = new ExtensionRegistry();
  registerHttpInspector(reg);
  const spec = reg.find('listener', 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector', undefined);
  assert.equal(spec?.name, 'envoy.filters.listener.http_inspector');
  assert.equal(reg.find('listener', undefined, 'envoy.listener.http_inspector'), spec);
});
