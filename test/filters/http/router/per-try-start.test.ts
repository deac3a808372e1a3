// per_try_timeout (and per_try_idle_timeout) start once the request has its upstream connection, as
// Envoy's do (onPoolReady): a TLS upstream whose handshake takes 500 ms, behind a relay that holds
// the client's first bytes back, still answers a route whose per-try timeout is 200 ms.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { testPki } from '../../../helpers/certs.ts';
import { tlsClusterYaml, tlsHttpUpstream, upstreamTls } from '../../../proxy/upstream/tls-upstreams.ts';
import { Client, routesHcm, startProxy } from './proxy-harness.ts';

const HANDSHAKE_DELAY_MS = 500;

/** A TCP relay to `port` that holds each connection's client-to-server bytes back for a while. */
async function slowRelay(port: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(port, '127.0.0.1');
    sockets.add(client).add(up);
    client.pause();
    const t = setTimeout(() => {
      client.pipe(up);
      up.pipe(client);
      client.resume();
    }, HANDSHAKE_DELAY_MS);
    const end = (): void => {
      clearTimeout(t);
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

for (const h2 of [false, true]) {
  test(`per_try_timeout runs from the connection being ready, not from the attempt's start (${h2 ? 'HTTP/2' : 'HTTP/1.1'} over TLS)`, { timeout: 20_000 }, async () => {
    const pki = testPki();
    const up = await tlsHttpUpstream({ cert: pki.server, h2 });
    const relay = await slowRelay(up.port);
    const routes = `
    - { match: { prefix: / }, route: { cluster: secure, timeout: 5s, retry_policy: { retry_on: 5xx, num_retries: 0, per_try_timeout: 0.2s, per_try_idle_timeout: 0.2s } } }`;
    const cluster = tlsClusterYaml('secure', [{ port: relay.port }], { http2: h2, transportSocket: upstreamTls({ ca: pki.ca.certPem, sni: 'localhost', ...(h2 ? { alpn: ['h2'] } : {}) }) });
    const p = await startProxy(routesHcm(routes), [cluster]);
    const client = new Client('h1', p.port);
    try {
      const t0 = performance.now();
      const r = await client.request({ path: '/x' });
      const took = performance.now() - t0;
      assert.equal(r.status, 200, `body: ${r.body.toString()}`);
      assert.equal(r.body.toString(), 'up:/x');
      assert.ok(took >= HANDSHAKE_DELAY_MS, `the handshake was held back (${took} ms)`);
      assert.equal(p.counter('cluster.secure.upstream_rq_per_try_timeout'), 0);
      assert.equal(p.counter('cluster.secure.upstream_rq_per_try_idle_timeout'), 0);
    } finally {
      client.close();
      await p.close();
      await relay.close();
      await up.close();
    }
  });
}
