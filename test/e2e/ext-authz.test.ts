// ext_authz in a real legate process with two workers (each encodes CheckRequests with Envoy's
// protos, loaded on first use) against a real grpc-js Authorization server: allowed and denied
// requests over fresh connections, the service's header edits at the upstream, summed stats; and
// behind an mTLS listener, the SPIFFE identities of both peers, the client certificate and the SNI
// in the CheckRequest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { cluster, hcm, httpBootstrap, ROUTER_TYPE, socketAddress } from '../helpers/config.ts';
import { authzServer } from '../helpers/authz-server.ts';
import { CLIENT_ID, SERVER_ID, testPki, writePki } from '../helpers/certs.ts';

const TIMEOUT = { timeout: 30_000 };

test('two workers ask the authorization service: allowed requests reach the upstream with its header, denied ones get its reply', TIMEOUT, async () => {
  const authz = await authzServer((req) =>
    req.attributes.request.http.headers['authorization'] === 'Bearer good'
      ? { status: { code: 0 }, ok_response: { headers: [{ header: { key: 'x-user-id', value: 'u-42' } }] } }
      : { status: { code: 16 }, denied_response: { status: { code: 'Unauthorized' }, body: 'denied' } },
  );
  const seen: Array<string | undefined> = [];
  const up = http.createServer((req, res) => {
    seen.push(req.headers['x-user-id'] as string | undefined);
    res.end('ok');
  });
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  let legate: Legate | undefined;
  try {
    const bootstrap = httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }],
      clusters: { app: { ports: [(up.address() as AddressInfo).port] }, authz: { ports: [authz.port], http2: true } },
      hcmExtra: {
        http_filters: [
          { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' } } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
        ],
      },
    });
    legate = await startLegate(bootstrap, { concurrency: 2 });
    const base = `http://127.0.0.1:${await legate.listenerPort('http')}`;
    for (let i = 0; i < 6; i++) {
      const good = await request(`${base}/data`, { headers: { authorization: 'Bearer good' }, reset: true });
      assert.equal(good.statusCode, 200);
      assert.equal(await good.body.text(), 'ok');
      const bad = await request(`${base}/data`, { headers: { authorization: 'Bearer bad' }, reset: true });
      assert.equal(bad.statusCode, 401);
      assert.equal(await bad.body.text(), 'denied');
    }
    assert.deepEqual(seen, Array(6).fill('u-42'));
    assert.equal(authz.seen.length, 12);
    const s = await legate.stats();
    assert.equal(s['http.ingress_http.ext_authz.ok'], 6);
    assert.equal(s['http.ingress_http.ext_authz.denied'], 6);
    assert.equal(s['cluster.app.ext_authz.ok'], 6);
  } finally {
    await legate?.stop();
    authz.close();
    up.close();
  }
});

test('behind mTLS: the CheckRequest names both SPIFFE identities, carries the client certificate and the SNI', TIMEOUT, async () => {
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'legate-authz-mtls-'));
  const f = writePki(dir, { ca: pki.ca, server: pki.server });
  const authz = await authzServer(() => ({ status: { code: 0 } }));
  const up = http.createServer((_req, res) => res.end('ok'));
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  let legate: Legate | undefined;
  try {
    const filters = [
      { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', transport_api_version: 'V3', include_peer_certificate: true, include_tls_session: true, grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '2s' } } },
      { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
    ];
    const h = hcm({ name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }, { http_filters: filters });
    const tlsSocket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        require_client_certificate: true,
        common_tls_context: { tls_certificates: [{ certificate_chain: { filename: f.server.cert }, private_key: { filename: f.server.key } }], validation_context: { trusted_ca: { filename: f.ca.cert } } },
      },
    };
    const bootstrap = {
      static_resources: {
        listeners: [{ name: 'mtls', address: socketAddress(0), filter_chains: [{ filters: [h], transport_socket: tlsSocket }] }],
        clusters: [cluster('app', { ports: [(up.address() as AddressInfo).port] }), cluster('authz', { ports: [authz.port], http2: true })],
      },
      admin: { address: socketAddress(0) },
    };
    legate = await startLegate(bootstrap, { concurrency: 1 });
    const port = await legate.listenerPort('mtls');
    const dispatcher = new Agent({ connect: { ca: pki.ca.certPem, cert: pki.client.certPem, key: pki.client.keyPem, servername: 'localhost' } });
    const r = await request(`https://127.0.0.1:${port}/x`, { dispatcher });
    assert.equal(await r.body.text(), 'ok');
    await dispatcher.close();
    const a = authz.seen[0]!.attributes as unknown as {
      source: { principal: string; certificate: string };
      destination: { principal: string };
      tls_session: { sni: string };
      request: { http: { scheme: string } };
    };
    assert.equal(a.source.principal, CLIENT_ID);
    assert.equal(a.destination.principal, SERVER_ID);
    assert.equal(decodeURIComponent(a.source.certificate).trim(), pki.client.certPem.trim(), 'the client certificate, URL-encoded PEM');
    assert.equal(a.tls_session.sni, 'localhost');
  } finally {
    await legate?.stop();
    authz.close();
    up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
