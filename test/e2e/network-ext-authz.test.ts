// envoy.filters.network.ext_authz before tcp_proxy in a real legate process: each connection waits
// for a real grpc-js Authorization server; an allowed one reaches the echo upstream, a denied one is
// closed before any upstream connection, with Envoy's ext_authz.<stat_prefix>.* stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { cluster, socketAddress, TCP_PROXY_TYPE } from '../helpers/config.ts';
import { authzServer } from '../helpers/authz-server.ts';

const TIMEOUT = { timeout: 30_000 };

/** Sends `text` and resolves with what comes back before the server closes (or after `text` echoes). */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === text) s.end();
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    s.write(text);
  });
}

test('a connection the service allows reaches the upstream; a denied one is closed first', TIMEOUT, async () => {
  let upstreamConnections = 0;
  const echo = net.createServer((s) => {
    upstreamConnections++;
    s.on('error', () => undefined);
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  let n = 0;
  const authz = await authzServer(() => (++n === 1 ? { status: { code: 0 } } : { status: { code: 7 } }));
  let legate: Legate | undefined;
  try {
    const bootstrap = {
      static_resources: {
        listeners: [
          {
            name: 'tcp',
            address: socketAddress(0),
            filter_chains: [
              {
                filters: [
                  { name: 'envoy.filters.network.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz', stat_prefix: 'tcp', transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' } } },
                  { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster: 'echo' } },
                ],
              },
            ],
          },
        ],
        clusters: [cluster('echo', { ports: [(echo.address() as net.AddressInfo).port] }), cluster('authz', { ports: [authz.port], http2: true })],
      },
      admin: { address: socketAddress(0) },
    };
    legate = await startLegate(bootstrap, { concurrency: 1 });
    const port = await legate.listenerPort('tcp');
    assert.equal(await exchange(port, 'ping'), 'ping', 'allowed: echoed');
    assert.equal(await exchange(port, 'pong'), '', 'denied: closed without an answer');
    assert.equal(upstreamConnections, 1, 'the denied connection never reached the upstream');
    const source = authz.seen[0]!.attributes.source.address.socket_address;
    assert.equal(source.address, '127.0.0.1');
    assert.equal(authz.seen[0]!.attributes.destination.address.socket_address.port_value, port);
    const s = await legate.stats();
    assert.equal(s['ext_authz.tcp.total'], 2);
    assert.equal(s['ext_authz.tcp.ok'], 1);
    assert.equal(s['ext_authz.tcp.denied'], 1);
    assert.equal(s['ext_authz.tcp.cx_closed'], 1);
    assert.equal(s['ext_authz.tcp.active'], 0);
  } finally {
    await legate?.stop();
    authz.close();
    echo.close();
  }
});
