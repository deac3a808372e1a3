import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { type ListenerFilter, runListenerFilters } from '../../../../src/proxy/listener/listener-filters.ts';
import type { ConnectionMatchInput } from '../../../../src/proxy/listener/filter-chain-match.ts';
import { TlsInspector } from '../../../../src/filters/listener/tls_inspector/filter.ts';
import { parseClientHello } from '../../../../src/filters/listener/tls_inspector/client-hello.ts';
import { parseTlsInspector } from '../../../../src/filters/listener/tls_inspector/config.ts';
import { registerTlsInspector } from '../../../../src/filters/listener/tls_inspector/index.ts';
import { ExtensionRegistry } from '../../../../src/filters/registry.ts';

interface Accepted {
  input: ConnectionMatchInput | undefined;
  /** Every byte the next stage reads (the unshifted peek first), until the client closes. */
  rest: Promise<Buffer>;
}

/** A server that runs listener filters on its first connection. */
async function withServer(
  filters: (stats: StatsStore) => ListenerFilter[],
  client: (port: number) => void | Promise<void>,
  opts: { timeoutMs?: number; continueOnTimeout?: boolean } = {},
): Promise<Accepted & { stats: StatsStore }> {
  const stats = new StatsStore();
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  try {
    const accepted = new Promise<Accepted>((resolve) => {
      server.once('connection', (socket) => {
        socket.on('error', () => {});
        void runListenerFilters(socket, filters(stats), opts.timeoutMs ?? 5000, opts.continueOnTimeout ?? false, { store: stats, prefix: 'listener.test.' }).then((input) => {
          const chunks: Buffer[] = [];
          const rest = new Promise<Buffer>((r) => {
            if (!input) return r(Buffer.alloc(0));
            socket.on('data', (c: Buffer) => chunks.push(c));
            socket.on('close', () => r(Buffer.concat(chunks)));
            setTimeout(() => socket.destroy(), 300);
          });
          resolve({ input, rest });
        });
      });
    });
    await client(port);
    const a = await accepted;
    await a.rest;
    return { ...a, stats };
  } finally {
    server.close();
  }
}

function tlsClient(port: number, servername: string | undefined, alpn: string[]): void {
  const c = tls.connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), ALPNProtocols: alpn, rejectUnauthorized: false });
  c.on('error', () => {});
  setTimeout(() => c.destroy(), 200);
}

let capturedHello: Buffer | undefined;

test('tls_inspector: real ClientHello from tls.connect → tls, SNI, ALPN; bytes given back', async () => {
  const { input, rest, stats } = await withServer((s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)], (port) => tlsClient(port, 'api.example.com', ['h2', 'http/1.1']));
  assert.ok(input);
  assert.equal(input.transportProtocol, 'tls');
  assert.equal(input.serverName, 'api.example.com');
  assert.deepEqual(input.applicationProtocols, ['h2', 'http/1.1']);
  const bytes = await rest;
  assert.equal(bytes[0], 0x16);
  assert.equal(parseClientHello(bytes).kind, 'tls');
  capturedHello = bytes;
  const c = stats.snapshot().counters;
  assert.equal(c['tls_inspector.tls_found'], 1);
  assert.equal(c['tls_inspector.sni_found'], 1);
  assert.equal(c['tls_inspector.alpn_found'], 1);
});

test('tls_inspector: ClientHello without SNI or ALPN', async () => {
  const { input, stats } = await withServer((s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)], (port) => tlsClient(port, undefined, []));
  assert.equal(input?.transportProtocol, 'tls');
  assert.equal(input?.serverName, undefined);
  assert.deepEqual(input?.applicationProtocols, []);
  const c = stats.snapshot().counters;
  assert.equal(c['tls_inspector.sni_not_found'], 1);
  assert.equal(c['tls_inspector.alpn_not_found'], 1);
});

test('tls_inspector: ClientHello split across reads and records', async () => {
  assert.ok(capturedHello, 'needs the first test');
  const hello = capturedHello;
  const { input, rest } = await withServer(
    (s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)],
    async (port) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {});
      await once(c, 'connect');
      for (const [a, b] of [[0, 1], [1, 4], [4, 9], [9, 60], [60, hello.length]] as const) {
        c.write(hello.subarray(a, b));
        await sleep(20);
      }
      setTimeout(() => c.destroy(), 100);
    },
  );
  assert.equal(input?.serverName, 'api.example.com');
  assert.deepEqual(await rest, hello);

  // The same handshake re-framed into two TLS records.
  const hs = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const rec = (b: Buffer) => Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 0xff]), b]);
  const two = Buffer.concat([rec(hs.subarray(0, 50)), rec(hs.subarray(50))]);
  const r = parseClientHello(two);
  assert.equal(r.kind, 'tls');
  assert.equal(r.kind === 'tls' && r.serverName, 'api.example.com');
  assert.equal(parseClientHello(two.subarray(0, 70)).kind, 'more');
});

test('tls_inspector: plaintext → raw_buffer, bytes untouched', async () => {
  const { input, rest, stats } = await withServer(
    (s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)],
    (port) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('hello world\n'));
      c.on('error', () => {});
      setTimeout(() => c.destroy(), 100);
    },
  );
  assert.equal(input?.transportProtocol, 'raw_buffer');
  assert.equal((await rest).toString(), 'hello world\n');
  assert.equal(stats.snapshot().counters['tls_inspector.tls_not_found'], 1);
});

test('tls_inspector: oversized ClientHello closes the connection', async () => {
  const { input, stats } = await withServer(
    (s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)],
    (port) => {
      // Handshake header claims 100 000 bytes.
      const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0x01, 0x86, 0xa0])));
      c.on('error', () => {});
      setTimeout(() => c.destroy(), 200);
    },
  );
  assert.equal(input, undefined);
  const c = stats.snapshot().counters;
  assert.equal(c['tls_inspector.client_hello_too_large'], 1);
  assert.equal(c['listener.test.downstream_listener_filter_error'], 1);
});

test('listener filters: peer closing mid-inspection closes and counts', async () => {
  const { input, stats } = await withServer(
    (s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)],
    (port) => {
      const c = net.connect(port, '127.0.0.1', () => c.end(Buffer.from([0x16, 3])));
      c.on('error', () => {});
    },
  );
  assert.equal(input, undefined);
  assert.equal(stats.snapshot().counters['listener.test.downstream_listener_filter_remote_close'], 1);
});

test('listener_filters_timeout: close, or continue with raw_buffer', async () => {
  const silent = (port: number) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    setTimeout(() => c.destroy(), 400);
  };
  const closed = await withServer((s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)], silent, { timeoutMs: 100 });
  assert.equal(closed.input, undefined);
  assert.equal(closed.stats.snapshot().counters['listener.test.downstream_pre_cx_timeout'], 1);

  const cont = await withServer((s) => [new TlsInspector({ statPrefix: 'tls_inspector.' }, s)], silent, { timeoutMs: 100, continueOnTimeout: true });
  assert.equal(cont.input?.transportProtocol, 'raw_buffer');
  assert.equal(cont.stats.snapshot().counters['listener.test.downstream_pre_cx_timeout'], 1);
});

test('tls_inspector: config and registration', () => {
  const ctx = { path: 'listener_filters[0].typed_config', clusterNames: undefined };
  const bad = parseTlsInspector({ enable_ja3_fingerprinting: null, initial_read_buffer_size: { value: 10 } }, ctx);
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.errors[0]!.path, /initial_read_buffer_size/);
  const ja3 = parseTlsInspector({ enable_ja3_fingerprinting: { value: true }, initial_read_buffer_size: null }, ctx);
  assert.ok(ja3.ok && ja3.warnings?.length === 1);

  const reg = new ExtensionRegistry();
  registerTlsInspector(reg);
  const byType = reg.find('listener', 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector', undefined);
  assert.equal(byType?.name, 'envoy.filters.listener.tls_inspector');
  assert.equal(reg.find('listener', undefined, 'envoy.listener.tls_inspector'), byType);
});
