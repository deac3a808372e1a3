// TcpProxySession's data path on real sockets: the reused-buffer reads (plain sockets) must keep
// bytes intact when writes queue, stop reading when the other side is slow (Node's buffers stay
// bounded), hand network filters bytes they may keep, and count activity for the idle timer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { type StreamInfo, newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import type { NetworkFilter } from '../../../src/filters/network/filter.ts';
import { TcpProxySession } from '../../../src/proxy/tcp/tcp-proxy-session.ts';
import { tcpProxyStats } from '../../../src/proxy/tcp/tcp-proxy-stats.ts';
import { readIntoUserBuffer } from '../../../src/proxy/tcp/user-buffer-read.ts';
import { relayModeTest } from '../../helpers/tcp-relay-modes.ts';

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

interface Proxy {
  readonly port: number;
  readonly stats: StatsStore;
  /** Each session's StreamInfo, in connection order. */
  readonly infos: StreamInfo[];
  counter(name: string): number;
  gauge(name: string): number;
  /** Resolves when the n-th session (0-based) called onClose. */
  closed(n: number): Promise<void>;
  close(): void;
}

/** A proxy in front of `upstream` made of TcpProxySession alone (no listener, no cluster manager). */
async function sessionProxy(upstream: net.Server, o: { idleTimeoutMs?: number; maxDurationMs?: number; filters?: () => NetworkFilter[] } = {}): Promise<Proxy> {
  const upPort = await listen(upstream);
  const stats = new StatsStore();
  const tcpStats = tcpProxyStats(stats, 's');
  const done: Array<{ promise: Promise<void>; resolve: () => void }> = [];
  const slot = (n: number): { promise: Promise<void>; resolve: () => void } => {
    while (done.length <= n) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      done.push({ promise, resolve });
    }
    return done[n]!;
  };
  let next = 0;
  const infos: StreamInfo[] = [];
  const server = net.createServer((down) => {
    const n = next++;
    down.on('error', () => {});
    // Bytes the client sends while this connects are buffered by Node: the session must take them first.
    const up = net.connect({ port: upPort, host: '127.0.0.1' });
    up.on('error', () => down.destroy());
    up.once('connect', () => {
      const info = (infos[n] = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 0 }, downstreamLocal: { address: '127.0.0.1', port: 0 }, connectionId: n }));
      new TcpProxySession({
        downstream: down,
        upstream: up,
        idleTimeoutMs: o.idleTimeoutMs ?? 0,
        maxDurationMs: o.maxDurationMs ?? 0,
        stats: tcpStats,
        streamInfo: info,
        onClose: () => slot(n).resolve(),
        dataFilters: o.filters?.() ?? [],
        stampTimes: false,
      });
    });
  });
  const port = await listen(server);
  return {
    port,
    stats,
    infos,
    counter: (name) => stats.snapshot().counters[`tcp.s.${name}`] ?? 0,
    gauge: (name) => stats.snapshot().gauges[`tcp.s.${name}`] ?? 0,
    closed: (n) => slot(n).promise,
    close: () => {
      server.close();
      upstream.close();
    },
  };
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what}: not reached in ${ms} ms`);
    await tick(10);
  }
}

/** Node keeps at most one socket's highWaterMark plus one read queued per direction. */
const NODE_QUEUE_BOUND = 256 * 1024;

test('user-buffer reads: plain sockets switch over, TLS sockets keep the generic path', async (t) => {
  const server = net.createServer((s) => {
    const reader = readIntoUserBuffer(s, () => true);
    s.end(reader ? 'switched' : 'generic');
  });
  const port = await listen(server);
  t.after(() => server.close());
  const c = net.connect(port, '127.0.0.1');
  let got = '';
  c.on('data', (d) => (got += d));
  await once(c, 'end');
  assert.equal(got, 'switched');
  const wrapped = new tls.TLSSocket(new net.Socket());
  assert.equal(readIntoUserBuffer(wrapped, () => true), undefined);
  wrapped.destroy();
});

relayModeTest('tcp session: a stalled upstream pauses downstream reads; Node queues stay bounded; bytes arrive intact', async (t) => {
  let upstreamSocket: net.Socket | undefined;
  const received: Buffer[] = [];
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    upstreamSocket = s;
    s.pause();
    s.on('data', (d: Buffer) => received.push(d));
    s.on('end', () => s.end());
  });
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const payload = crypto.randomBytes(24 * 1024 * 1024);
  const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  c.on('data', () => {});
  await once(c, 'connect');
  c.end(payload);
  await waitFor(() => p.counter('downstream_flow_control_paused_reading_total') >= 1, 'downstream reads paused');
  let maxQueued = 0;
  for (let i = 0; i < 10; i++) {
    maxQueued = Math.max(maxQueued, p.gauge('downstream_cx_rx_bytes_buffered'));
    await tick(20);
  }
  assert.ok(maxQueued <= NODE_QUEUE_BOUND, `upstream write queue ${maxQueued} B while stalled`);
  assert.ok(p.counter('downstream_cx_rx_bytes_total') < payload.length, 'the stalled side stopped the reads');
  upstreamSocket!.resume();
  await p.closed(0);
  assert.equal(sha(Buffer.concat(received)), sha(payload));
  assert.equal(p.counter('downstream_cx_rx_bytes_total'), payload.length);
  assert.equal(p.counter('downstream_flow_control_resumed_reading_total'), p.counter('downstream_flow_control_paused_reading_total'));
  assert.equal(p.gauge('downstream_cx_rx_bytes_buffered'), 0);
});

relayModeTest('tcp session: a client that stops reading holds the upstream back; bytes arrive intact', async (t) => {
  const payload = crypto.randomBytes(24 * 1024 * 1024);
  // Many small writes: many reads into the proxy's reused buffer while its writes queue.
  const upstream = net.createServer((s) => {
    s.on('error', () => {});
    for (let off = 0; off < payload.length; off += 1000) s.write(payload.subarray(off, off + 1000));
    s.end();
  });
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.pause();
  await once(c, 'connect');
  await waitFor(() => p.gauge('downstream_cx_tx_bytes_buffered') > 0, 'downstream writes queued');
  let maxQueued = 0;
  for (let i = 0; i < 10; i++) {
    maxQueued = Math.max(maxQueued, p.gauge('downstream_cx_tx_bytes_buffered'));
    await tick(20);
  }
  assert.ok(maxQueued <= NODE_QUEUE_BOUND, `downstream write queue ${maxQueued} B while the client does not read`);
  assert.ok(p.counter('downstream_cx_tx_bytes_total') < payload.length, 'upstream reads stopped');
  c.resume();
  await once(c, 'end');
  c.end();
  await p.closed(0);
  assert.equal(sha(Buffer.concat(chunks)), sha(payload));
  assert.equal(p.counter('downstream_cx_tx_bytes_total'), payload.length);
});

test('tcp session: network filters get bytes they may keep (never the reused read buffer)', async (t) => {
  let upstreamGot = Buffer.alloc(0);
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      upstreamGot = Buffer.concat(parts);
      s.end('reply-from-upstream');
    });
  });
  // Holds every downstream chunk until the FIN, then sends them all; upper-cases the replies.
  const holder = (): NetworkFilter => {
    const held: Buffer[] = [];
    return {
      onData: (data, end) => {
        held.push(data);
        return end ? Buffer.concat(held) : Buffer.alloc(0);
      },
      onWrite: (data) => Buffer.from(data.toString('latin1').toUpperCase(), 'latin1'),
    };
  };
  const p = await sessionProxy(upstream, { filters: () => [holder()] });
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
  let reply = '';
  c.on('data', (d) => (reply += d));
  await once(c, 'connect');
  const sent: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const part = Buffer.from(`part-${i}-${'x'.repeat(i * 37)};`);
    sent.push(part);
    c.write(part);
    // Separate reads: each lands in the proxy's read buffer in turn.
    await waitFor(() => p.counter('downstream_cx_rx_bytes_total') >= Buffer.concat(sent).length, 'part read');
  }
  c.end();
  await once(c, 'end');
  c.end();
  await p.closed(0);
  assert.equal(upstreamGot.toString(), Buffer.concat(sent).toString());
  assert.equal(reply, 'REPLY-FROM-UPSTREAM');
});

relayModeTest('tcp session: traffic keeps an idle_timeout connection open; silence closes it', async (t) => {
  const upstream = net.createServer((s) => s.pipe(s));
  const p = await sessionProxy(upstream, { idleTimeoutMs: 1000 });
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  // 1.5 s of pings 100 ms apart: longer than the idle timeout, never idle for it.
  for (let i = 0; i < 15; i++) {
    c.write('ping');
    await once(c, 'data');
    await tick(100);
  }
  assert.equal(p.counter('idle_timeout'), 0);
  assert.equal(c.destroyed, false);
  await once(c, 'close');
  await p.closed(0);
  assert.equal(p.counter('idle_timeout'), 1);
});

relayModeTest('tcp session: a max_downstream_connection_duration and idle_timeout of 30 days do not fire early (node:timers cuts delays over 24.8 days to 1 ms)', async (t) => {
  const upstream = net.createServer((s) => s.pipe(s));
  const thirtyDays = 30 * 86_400_000;
  const p = await sessionProxy(upstream, { idleTimeoutMs: thirtyDays * 8, maxDurationMs: thirtyDays });
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  // With node:timers' cut the session closed after 1 ms: the client sees a close, not the echo.
  const closed = once(c, 'close').then(() => 'closed');
  await tick(100);
  c.write('still-here');
  const echo = await Promise.race([once(c, 'data').then(([d]) => String(d)), closed]);
  assert.equal(echo, 'still-here');
  assert.equal(p.counter('max_downstream_connection_duration'), 0);
  assert.equal(p.counter('idle_timeout'), 0);
  c.end();
  await p.closed(0);
});

relayModeTest('tcp session: max_downstream_connection_duration closes a busy connection when it is reached, and counts it', async (t) => {
  // The proxy closes its upstream side mid-echo: the echo server's socket may see a reset.
  const upstream = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const p = await sessionProxy(upstream, { maxDurationMs: 300 });
  t.after(() => p.close());
  const t0 = performance.now(); // before the session can exist, so its timer starts after this
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  // Not once(c, 'close'): that rejects on 'error', and a close with pings in flight may be a reset.
  const closed = new Promise((r) => c.once('close', r));
  // Traffic does not keep it open (unlike idle_timeout): echo every 20 ms until the proxy closes.
  let echoes = 0;
  c.on('data', () => echoes++);
  const pinger = setInterval(() => c.writable && c.write('ping'), 20);
  pinger.unref();
  t.after(() => clearInterval(pinger));
  await closed;
  clearInterval(pinger);
  const lived = performance.now() - t0;
  assert.ok(lived >= 290, `closed after ${lived.toFixed(0)} ms`);
  assert.ok(echoes >= 1, `echoes before the close: ${echoes}`);
  await p.closed(0);
  assert.equal(p.counter('max_downstream_connection_duration'), 1);
  assert.equal(p.counter('idle_timeout'), 0);
});

relayModeTest('tcp session: an upstream reset closes the client; the reason is kept', async (t) => {
  const upstream = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  const closed = new Promise((r) => c.once('close', r));
  c.write('reset me');
  await closed;
  await p.closed(0);
  assert.equal(p.infos[0]!.upstreamTransportFailureReason, 'read ECONNRESET');
  assert.equal(p.counter('downstream_cx_rx_bytes_total'), 8);
});

relayModeTest('tcp session: a client reset closes the upstream; the reason is kept', async (t) => {
  let upClosed!: () => void;
  const upstreamClosed = new Promise<void>((r) => (upClosed = r));
  const upstream = net.createServer((s) => {
    s.on('error', () => {});
    s.on('close', () => upClosed());
    s.pipe(s);
  });
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  c.write('ping');
  await once(c, 'data');
  c.resetAndDestroy();
  await upstreamClosed;
  await p.closed(0);
  assert.equal(p.infos[0]!.terminationDetails, 'downstream: read ECONNRESET');
  assert.equal(p.counter('downstream_cx_tx_bytes_total'), 4);
});

relayModeTest('tcp session: byte counters move while the connection is open', async (t) => {
  const upstream = net.createServer((s) => s.pipe(s));
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  let got = 0;
  c.on('data', (d: Buffer) => (got += d.length));
  c.write(Buffer.alloc(1000, 1));
  // The C relay's counters reach the stats each second (the JS pumps' at once).
  await waitFor(() => p.counter('downstream_cx_rx_bytes_total') === 1000 && p.counter('downstream_cx_tx_bytes_total') === 1000, 'counters');
  assert.equal(got, 1000);
  assert.equal(c.destroyed, false);
  assert.equal(p.infos[0]!.bytesReceived, 1000);
  c.end();
  await p.closed(0);
});

relayModeTest('tcp session: a client gone while the upstream still has bytes queued for it: the upstream gets them all (upstream flush)', async (t) => {
  let upstreamSocket: net.Socket | undefined;
  const upstreamGot: Buffer[] = [];
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    upstreamSocket = s;
    // The proxy closes after its flush with this side's own bytes unread: a FIN, then a reset.
    s.on('error', () => {});
    s.on('close', () => upstreamClosed());
    s.pause();
    s.on('data', (d: Buffer) => upstreamGot.push(d));
    // Fills the way down too, so the proxy has writes pending to the client when it goes.
    s.write(crypto.randomBytes(16 * 1024 * 1024));
  });
  const p = await sessionProxy(upstream);
  t.after(() => p.close());
  const c = net.connect({ port: p.port, host: '127.0.0.1' });
  c.on('error', () => {});
  c.pause();
  await once(c, 'connect');
  c.write(crypto.randomBytes(16 * 1024 * 1024));
  // Both ways stalled: bytes queued toward the upstream and toward the client.
  await waitFor(() => p.gauge('downstream_cx_rx_bytes_buffered') > 0 && p.gauge('downstream_cx_tx_bytes_buffered') > 0, 'both ways queued');
  c.resetAndDestroy();
  // The proxy notices on its next write to the client and keeps the upstream until it has taken
  // what was queued for it (the C relay's gauge moves at its once-a-second count).
  await waitFor(() => p.gauge('upstream_flush_active') === 1, 'flushing');
  upstreamSocket!.resume();
  await closed;
  await p.closed(0);
  assert.equal(p.counter('upstream_flush_total'), 1);
  assert.ok(p.counter('downstream_cx_rx_bytes_total') > 0);
  assert.equal(Buffer.concat(upstreamGot).length, p.counter('downstream_cx_rx_bytes_total'));
  assert.equal(p.gauge('upstream_flush_active'), 0);
});
