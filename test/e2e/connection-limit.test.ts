// envoy.filters.network.connection_limit before tcp_proxy in a real legate on two workers: at most
// max_connections at a time across both (their count is shared), the next closed (after `delay`),
// a freed place taken again; Envoy's connection_limit.<stat_prefix>.* stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { startLegate } from '../helpers/legate.ts';
import { socketAddress, TCP_PROXY_TYPE } from '../helpers/config.ts';

/** Connects and checks the connection works: an echo of `text`; resolves the open socket. */
async function echoing(port: number, text: string): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(text);
  const d = await new Promise<Buffer>((resolve, reject) => {
    s.once('data', resolve);
    s.once('close', () => reject(new Error('closed before the echo')));
  });
  assert.equal(d.toString(), text);
  return s;
}

/** Connects, writes, and resolves what came back before the proxy closed it, and after how long. */
async function refused(port: number): Promise<{ got: string; ms: number }> {
  const t0 = performance.now();
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('hello?');
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  await new Promise((r) => s.once('close', r));
  return { got, ms: performance.now() - t0 };
}

test('at most max_connections through the chain across workers; the next is closed after delay; a freed place is taken again', { timeout: 60_000 }, async () => {
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const legate = await startLegate(
    {
      static_resources: {
        listeners: [{
          name: 'limited',
          address: socketAddress(0),
          filter_chains: [{
            filters: [
              { name: 'envoy.filters.network.connection_limit', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit', stat_prefix: 'echo', max_connections: 3, delay: '0.3s' } },
              { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'echo', cluster: 'echo' } },
            ],
          }],
        }],
        clusters: [{ name: 'echo', type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: 'echo', endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress((echo.address() as AddressInfo).port) } }] }] } }],
      },
      admin: { address: socketAddress(0) },
    },
    { concurrency: 2 },
  );
  const port = await legate.listenerPort('limited');
  const open: net.Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) open.push(await echoing(port, `conn ${i}`));
    const r = await refused(port);
    assert.equal(r.got, '', 'the fourth connection never reached the upstream');
    assert.ok(r.ms >= 250, `closed after the delay (${r.ms.toFixed(0)} ms)`);
    let s = await legate.stats();
    assert.equal(s['connection_limit.echo.limited_connections'], 1);
    assert.equal(s['connection_limit.echo.active_connections'], 3, 'summed over the two workers');
    open.shift()!.destroy();
    // The freed place is taken again once the proxy saw the close.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        open.push(await echoing(port, 'again'));
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    s = await legate.stats();
    assert.equal(s['connection_limit.echo.active_connections'], 3);
  } finally {
    for (const c of open) c.destroy();
    await legate.stop();
    echo.close();
  }
});
