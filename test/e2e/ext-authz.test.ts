// ext_authz in a real legate process with two workers (each encodes CheckRequests with Envoy's
// protos, loaded on first use) against a real grpc-js Authorization server: allowed and denied
// requests over fresh connections, the service's header edits at the upstream, summed stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { httpBootstrap, ROUTER_TYPE } from '../helpers/config.ts';
import { authzServer } from '../helpers/authz-server.ts';

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
