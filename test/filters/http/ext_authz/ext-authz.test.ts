// The ext_authz filter behind the real connection manager and router, against a real grpc-js
// envoy.service.auth.v3.Authorization server loaded from Envoy's own protos (@grpc/proto-loader):
// what the CheckRequest carries, OK with header edits both ways, denied replies, errors with and
// without failure_mode_allow, timeouts, per-route disabling and context extensions, request
// bodies, and Envoy's ext_authz stats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { Client, startProxy, type Proxy } from '../router/proxy-harness.ts';
import { filterHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';
import { authzServer } from '../../../helpers/authz-server.ts';

const TIMEOUT = { timeout: 20_000 };
interface Up {
  port: number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  server: http.Server;
}

async function upstream(): Promise<Up> {
  const up: Up = { port: 0, requests: [], server: http.createServer() };
  up.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      up.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.end('up');
    });
  });
  up.server.listen(0, '127.0.0.1');
  await once(up.server, 'listening');
  up.port = (up.server.address() as net.AddressInfo).port;
  return up;
}

const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';

const hcmYaml = (authz: Record<string, unknown>): string =>
  filterHcm(
    { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', transport_api_version: 'V3', ...authz } },
    {
      typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, check_settings: { context_extensions: { vh: 'web', level: 'vh' } } } },
      routes: [
        { match: { prefix: '/public' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, disabled: true } } },
        { match: { prefix: '/' }, route: { cluster: 'up' }, typed_per_filter_config: { 'envoy.filters.http.ext_authz': { '@type': PER_ROUTE, check_settings: { context_extensions: { level: 'route' } } } } },
      ],
    },
  );

const clusterYaml = oneHostCluster;

async function withProxy(authz: Record<string, unknown>, authzPort: number, run: (p: Proxy, up: Up) => Promise<void>): Promise<void> {
  const up = await upstream();
  const proxy = await startProxy(hcmYaml({ grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '1s' }, ...authz }), [clusterYaml('up', up.port), clusterYaml('authz', authzPort, true)]);
  try {
    await run(proxy, up);
  } finally {
    await proxy.close();
    up.server.close();
  }
}

const OK = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ status: { code: 0 }, ok_response: extra });
const hv = (key: string, value: string, append = false): Record<string, unknown> => ({ header: { key, value }, append: { value: append } });
const hva = (key: string, value: string, action: string): Record<string, unknown> => ({ header: { key, value }, append_action: action });

for (const kind of ['h1', 'h2'] as const) {
  test(`${kind}: the CheckRequest describes the request; OK applies the service's header edits both ways`, TIMEOUT, async () => {
    const authz = await authzServer((req) =>
      req.attributes.request.http.headers['x-user'] === 'alice'
        ? OK({
            headers: [hv('x-authz', 'yes'), hv('x-tag', 'b', true), hva('x-once', 'no', 'ADD_IF_ABSENT'), hva('x-missing', 'no', 'OVERWRITE_IF_EXISTS'), { header: { key: 'x-more', value: '2' } }],
            headers_to_remove: ['x-secret'],
            response_headers_to_add: [hv('x-resp', '1')],
          })
        : { status: { code: 7 } },
    );
    try {
      await withProxy({}, authz.port, async (proxy, up) => {
        const c = new Client(kind, proxy.port);
        try {
          const r = await c.request({ path: '/a?q=1', headers: { 'x-user': 'alice', 'x-secret': 's', 'x-tag': 'a', 'x-once': 'yes', 'x-more': '1' } });
          assert.equal(r.status, 200);
          assert.equal(r.body.toString(), 'up');
          assert.equal(r.headers['x-resp'], '1');
          const seen = up.requests[0]!;
          assert.equal(seen.headers['x-authz'], 'yes');
          assert.equal(seen.headers['x-tag'], 'a,b', 'the deprecated append: true appends to the value');
          assert.equal(seen.headers['x-once'], 'yes', 'ADD_IF_ABSENT leaves a present header');
          assert.equal(seen.headers['x-missing'], undefined, 'OVERWRITE_IF_EXISTS adds nothing');
          assert.equal(seen.headers['x-more'], '1, 2', 'no append, no append_action: APPEND_IF_EXISTS_OR_ADD adds a value');
          assert.equal(seen.headers['x-secret'], undefined);
          const check = authz.seen[0]!.attributes;
          assert.equal(check.request.http.method, 'GET');
          assert.equal(check.request.http.path, '/a?q=1');
          assert.equal(check.request.http.host, `127.0.0.1:${proxy.port}`);
          assert.equal(check.request.http.protocol, kind === 'h1' ? 'HTTP/1.1' : 'HTTP/2');
          assert.equal(check.request.http.headers['x-user'], 'alice');
          assert.equal(check.source.address.socket_address.address, '127.0.0.1');
          assert.equal(check.destination.address.socket_address.port_value, proxy.port);
          assert.deepEqual(check.context_extensions, { vh: 'web', level: 'route' }, 'route-level extensions over the virtual host’s');
          assert.equal(proxy.counter('http.ingress_http.ext_authz.ok'), 1);
          assert.equal(proxy.counter('cluster.up.ext_authz.ok'), 1);
        } finally {
          c.close();
        }
      });
    } finally {
      authz.close();
    }
  });
}

test('denied: the service\'s status, headers and body are the reply, and the upstream is never asked', TIMEOUT, async () => {
  const authz = await authzServer(() => ({ status: { code: 7 }, denied_response: { status: { code: 'Unauthorized' }, headers: [hv('www-authenticate', 'Bearer')], body: 'who are you?' } }));
  try {
    await withProxy({}, authz.port, async (proxy, up) => {
      const c = new Client('h1', proxy.port);
      try {
        const r = await c.request({ path: '/private' });
        assert.equal(r.status, 401);
        assert.equal(r.body.toString(), 'who are you?');
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        const pub = await c.request({ path: '/public/logo.png' });
        assert.equal(pub.status, 200, 'ExtAuthzPerRoute disabled: no check');
        assert.equal(authz.seen.length, 1);
        assert.deepEqual(up.requests.map((q) => q.url), ['/public/logo.png']);
        assert.equal(proxy.counter('http.ingress_http.ext_authz.denied'), 1);
        assert.equal(proxy.counter('cluster.up.ext_authz.denied'), 1);
      } finally {
        c.close();
      }
    });
  } finally {
    authz.close();
  }
});

test('errors: an unreachable service is status_on_error (403), or let through with failure_mode_allow; a slow one times out', TIMEOUT, async () => {
  const gone = net.createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const gonePort = (gone.address() as net.AddressInfo).port;
  gone.close();
  await withProxy({}, gonePort, async (proxy, up) => {
    const c = new Client('h1', proxy.port);
    try {
      assert.equal((await c.request({ path: '/' })).status, 403);
      assert.equal(up.requests.length, 0);
      assert.equal(proxy.counter('http.ingress_http.ext_authz.error'), 1);
    } finally {
      c.close();
    }
  });
  await withProxy({ failure_mode_allow: true, failure_mode_allow_header_add: true, status_on_error: { code: 'ServiceUnavailable' } }, gonePort, async (proxy, up) => {
    const c = new Client('h1', proxy.port);
    try {
      const r = await c.request({ path: '/' });
      assert.equal(r.status, 200);
      assert.equal(up.requests[0]!.headers['x-envoy-auth-failure-mode-allowed'], 'true');
      assert.equal(proxy.counter('http.ingress_http.ext_authz.failure_mode_allowed'), 1);
    } finally {
      c.close();
    }
  });
  const slow = await authzServer(() => 'hang');
  try {
    await withProxy({ grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '0.2s' }, status_on_error: { code: 'ServiceUnavailable' } }, slow.port, async (proxy) => {
      const c = new Client('h1', proxy.port);
      try {
        const t0 = Date.now();
        assert.equal((await c.request({ path: '/' })).status, 503, 'status_on_error');
        assert.ok(Date.now() - t0 < 3000);
        assert.equal(proxy.counter('http.ingress_http.ext_authz.error'), 1);
      } finally {
        c.close();
      }
    });
  } finally {
    slow.close();
  }
});

test('with_request_body: the body is sent with the check and then forwarded; a larger body without allow_partial_message is 413', TIMEOUT, async () => {
  const authz = await authzServer((req) => (req.attributes.request.http.body === 'hello' ? OK() : { status: { code: 7 } }));
  try {
    await withProxy({ with_request_body: { max_request_bytes: 16 } }, authz.port, async (proxy, up) => {
      const c = new Client('h1', proxy.port);
      try {
        const r = await c.request({ method: 'POST', path: '/form', body: Buffer.from('hello') });
        assert.equal(r.status, 200);
        assert.equal(up.requests[0]!.body, 'hello');
        assert.equal(authz.seen[0]!.attributes.request.http.size, '5');
        const big = await c.request({ method: 'POST', path: '/form', body: Buffer.alloc(64, 'x') });
        assert.equal(big.status, 413);
        assert.equal(authz.seen.length, 1);
      } finally {
        c.close();
      }
    });
  } finally {
    authz.close();
  }
});

test('HTTP service: the original method and path (after path_prefix), allowed headers and body go to the service; its answer edits the request and response or denies', TIMEOUT, async () => {
  const asked: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const service = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      asked.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const auth = req.headers.authorization;
      if (auth === 'Bearer good') {
        res.setHeader('x-user-id', 'u1');
        res.setHeader('x-audit', 'checked');
        res.setHeader('x-resp-note', 'hi');
        res.setHeader('x-envoy-auth-headers-to-remove', 'x-api-key');
        return res.end();
      }
      if (auth === 'Bearer broken') {
        res.statusCode = 503;
        return res.end();
      }
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="x"', 'x-debug': 'bad token' });
      res.end('no');
    });
  });
  service.listen(0, '127.0.0.1');
  await once(service, 'listening');
  const authz = {
    http_service: {
      server_uri: { uri: 'http://authz', cluster: 'authz', timeout: '1s' },
      path_prefix: '/auth',
      authorization_request: { allowed_headers: { patterns: [{ prefix: 'x-allowed' }] }, headers_to_add: [{ key: 'x-from-proxy', value: '1' }] },
      authorization_response: {
        allowed_upstream_headers: { patterns: [{ exact: 'x-user-id' }] },
        allowed_upstream_headers_to_append: { patterns: [{ exact: 'x-audit' }] },
        allowed_client_headers_on_success: { patterns: [{ exact: 'x-resp-note' }] },
      },
    },
    with_request_body: { max_request_bytes: 64 },
  };
  const up = await upstream();
  const port = (service.address() as net.AddressInfo).port;
  const proxy = await startProxy(hcmYaml(authz), [clusterYaml('up', up.port), clusterYaml('authz', port)]);
  const c = new Client('h1', proxy.port);
  try {
    const ok = await c.request({ method: 'POST', path: '/orders?id=7', headers: { authorization: 'Bearer good', 'x-allowed-tenant': 't1', 'x-other': 'o', 'x-api-key': 'k', 'x-audit': 'client' }, body: Buffer.from('{"n":1}') });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-resp-note'], 'hi');
    const a = asked[0]!;
    assert.equal(a.method, 'POST');
    assert.equal(a.url, '/auth/orders?id=7');
    assert.equal(a.headers['x-allowed-tenant'], 't1');
    assert.equal(a.headers['x-other'], undefined, 'only allowed headers are sent');
    assert.equal(a.headers['x-from-proxy'], '1');
    assert.equal(a.body, '{"n":1}');
    const u = up.requests[0]!;
    assert.equal(u.headers['x-user-id'], 'u1');
    assert.equal(u.headers['x-audit'], 'client, checked', 'allowed_upstream_headers_to_append adds a value');
    assert.equal(u.headers['x-api-key'], undefined, 'x-envoy-auth-headers-to-remove');
    assert.equal(u.headers['x-envoy-auth-headers-to-remove'], undefined);
    assert.equal(u.body, '{"n":1}');

    const denied = await c.request({ path: '/orders', headers: { authorization: 'Bearer nope' } });
    assert.equal(denied.status, 401);
    assert.equal(denied.body.toString(), 'no');
    assert.equal(denied.headers['www-authenticate'], 'Bearer realm="x"');
    assert.equal(denied.headers['x-debug'], 'bad token', 'no allowed_client_headers: every header goes to the client');

    assert.equal((await c.request({ path: '/orders', headers: { authorization: 'Bearer broken' } })).status, 403, 'a 5xx from the service is an error');
    assert.equal(up.requests.length, 1);
    assert.equal(proxy.counter('http.ingress_http.ext_authz.ok'), 1);
    assert.equal(proxy.counter('http.ingress_http.ext_authz.denied'), 1);
    assert.equal(proxy.counter('http.ingress_http.ext_authz.error'), 1);
  } finally {
    c.close();
    await proxy.close();
    up.server.close();
    service.close();
  }
});

test('config: google_grpc and dynamic metadata from the HTTP service are refused with their field paths', TIMEOUT, async () => {
  await assert.rejects(startProxy(hcmYaml({ grpc_service: { google_grpc: { target_uri: 'x', stat_prefix: 'g' } } }), [clusterYaml('up', 1)]), /grpc_service\.google_grpc/);
  const withMetadata = { http_service: { server_uri: { uri: 'http://a', cluster: 'up', timeout: '1s' }, authorization_response: { dynamic_metadata_from_headers: { patterns: [{ exact: 'x' }] } } } };
  await assert.rejects(startProxy(hcmYaml(withMetadata), [clusterYaml('up', 1)]), /http_service\.authorization_response\.dynamic_metadata_from_headers/);
});

test('the CheckResponse’s dynamic_metadata becomes the stream’s (envoy.filters.http.ext_authz), for %DYNAMIC_METADATA% and later filters', TIMEOUT, async () => {
  // google.protobuf.Value's members are camelCase in protobufjs's own struct.proto, whatever keepCase says.
  const authz = await authzServer(() => ({ ...OK(), dynamic_metadata: { fields: { user: { stringValue: 'alice' }, tier: { numberValue: 2 } } } }));
  const up = await upstream();
  const hcm = filterHcm(
    { name: 'envoy.filters.http.ext_authz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'authz' }, timeout: '1s' } } },
    {
      routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }],
      response_headers_to_add: [{ header: { key: 'x-authz-user', value: '%DYNAMIC_METADATA(envoy.filters.http.ext_authz:user)%/%DYNAMIC_METADATA(envoy.filters.http.ext_authz:tier)%' } }],
    },
  );
  const proxy = await startProxy(hcm, [clusterYaml('up', up.port), clusterYaml('authz', authz.port, true)]);
  try {
    const client = new Client('h1', proxy.port);
    const r = await client.request({ path: '/me' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-authz-user'], 'alice/2');
    client.close();
  } finally {
    await proxy.close();
    up.server.close();
    authz.close();
  }
});
