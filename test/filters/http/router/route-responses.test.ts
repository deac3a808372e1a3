// What the route adds to requests and answers, behind the real connection manager: a weighted
// cluster's own header mutations and host_rewrite_literal (before the route's), the route's response
// headers on the router's local replies too, Location on a 3xx/201 direct_response, repeated
// response header values kept apart, and one weighted pick per request shared by every filter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterYaml } from './harness.ts';
import { closedPort, startUpstream } from './upstreams.ts';
import { Client, routesHcm, startProxy } from './proxy-harness.ts';

const TIMEOUT = { timeout: 20_000 };

function hcm(routes: string, filters?: string): string {
  return routesHcm(routes, filters === undefined ? {} : { filters });
}

test('weighted cluster: its request/response header mutations and host_rewrite_literal apply, before the route\'s; the route\'s response headers reach local replies', TIMEOUT, async () => {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const upstream = await startUpstream('http1', (req, res) => {
    seen.push({ ...req.headers });
    res.end('ok');
  });
  const down = await closedPort();
  const routes = `
    - match: { prefix: /down }
      response_headers_to_add: [{ header: { key: x-route, value: down-route } }]
      route:
        weighted_clusters:
          clusters:
          - { name: dead, weight: 1, response_headers_to_add: [{ header: { key: x-picked, value: dead } }] }
    - match: { prefix: / }
      request_headers_to_add: [{ header: { key: x-order, value: route }, append_action: APPEND_IF_EXISTS_OR_ADD }]
      response_headers_to_add: [{ header: { key: x-route, value: main } }]
      route:
        weighted_clusters:
          clusters:
          - name: a
            weight: 1
            host_rewrite_literal: a.example
            request_headers_to_add: [{ header: { key: x-order, value: cluster }, append_action: APPEND_IF_EXISTS_OR_ADD }]
            response_headers_to_add: [{ header: { key: x-picked, value: a } }]
          - { name: b, weight: 0 }`;
  const p = await startProxy(hcm(routes), [clusterYaml('a', upstream.port), clusterYaml('b', upstream.port), clusterYaml('dead', down)]);
  const client = new Client('h1', p.port);
  try {
    const r = await client.request({ path: '/x' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-picked'], 'a');
    assert.equal(r.headers['x-route'], 'main');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!['host'], 'a.example');
    assert.equal(seen[0]!['x-order'], 'cluster, route', 'the cluster entry\'s mutations come first');

    // 503 UF: a local reply, still with the cluster's and the route's response headers.
    const f = await client.request({ path: '/down' });
    assert.equal(f.status, 503);
    assert.equal(f.headers['x-picked'], 'dead');
    assert.equal(f.headers['x-route'], 'down-route');
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('direct_response: Location (the request URI) on a 3xx or 201, none otherwise; repeated response header values stay separate lines', TIMEOUT, async () => {
  const routes = `
    - { match: { prefix: /moved }, direct_response: { status: 302 } }
    - { match: { prefix: /created }, direct_response: { status: 201, body: { inline_string: made } } }
    - match: { prefix: / }
      direct_response: { status: 200, body: { inline_string: hi } }
      response_headers_to_add:
      - { header: { key: set-cookie, value: a=1 }, append_action: APPEND_IF_EXISTS_OR_ADD }
      - { header: { key: set-cookie, value: b=2 }, append_action: APPEND_IF_EXISTS_OR_ADD }`;
  const p = await startProxy(hcm(routes), []);
  const client = new Client('h1', p.port);
  try {
    const moved = await client.request({ path: '/moved/here?q=1', headers: { host: 'svc.example' } });
    assert.equal(moved.status, 302);
    assert.equal(moved.headers['location'], 'http://svc.example/moved/here?q=1');
    const created = await client.request({ path: '/created' });
    assert.equal(created.status, 201);
    assert.equal(created.headers['location'], `http://127.0.0.1:${p.port}/created`);
    const ok = await client.request({ path: '/' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['location'], undefined);
    assert.deepEqual(ok.headers['set-cookie'], ['a=1', 'b=2']);
  } finally {
    client.close();
    await p.close();
  }
});

test('one weighted pick per request: fault\'s upstream_cluster sees the cluster the router then uses', TIMEOUT, async () => {
  const hits = { a: 0, b: 0 };
  const upA = await startUpstream('http1', (_req, res) => {
    hits.a++;
    res.end('a');
  });
  const upB = await startUpstream('http1', (_req, res) => {
    hits.b++;
    res.end('b');
  });
  const filters = `
http_filters:
- name: envoy.filters.http.fault
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
    abort: { http_status: 418, percentage: { numerator: 100 } }
    upstream_cluster: a
- name: envoy.filters.http.router
  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }`;
  const routes = `
    - { match: { prefix: / }, route: { weighted_clusters: { clusters: [{ name: a, weight: 50 }, { name: b, weight: 50 }] } } }`;
  const p = await startProxy(hcm(routes, filters), [clusterYaml('a', upA.port), clusterYaml('b', upB.port)]);
  const client = new Client('h1', p.port);
  try {
    let aborted = 0;
    for (let i = 0; i < 60; i++) {
      const r = await client.request({ path: `/${i}` });
      if (r.status === 418) aborted++;
      else assert.equal(r.body.toString(), 'b');
    }
    // Independent picks would let about a quarter of the requests through to a.
    assert.equal(hits.a, 0, 'a request the fault filter let pass (picked b) never went to a');
    assert.ok(aborted > 0 && hits.b > 0, `aborted ${aborted}, b ${hits.b}`);
    assert.equal(aborted + hits.b, 60);
  } finally {
    client.close();
    await p.close();
    await upA.close();
    await upB.close();
  }
});

test('HTTP/2 upstream :scheme: the request\'s (scheme_to_overwrite applied), or under match_upstream the upstream connection\'s (http for h2c)', TIMEOUT, async () => {
  const schemes: string[] = [];
  const upstream = await startUpstream('http2', (req, res) => {
    schemes.push(String((req.headers as Record<string, unknown>)[':scheme']));
    res.end('ok');
  });
  const routes = `
    - { match: { prefix: / }, route: { cluster: up } }`;
  const overwrite = await startProxy(routesHcm(routes, { extra: 'scheme_header_transformation: { scheme_to_overwrite: https }' }), [clusterYaml('up', upstream.port, true)]);
  const match = await startProxy(routesHcm(routes, { extra: 'scheme_header_transformation: { scheme_to_overwrite: https, match_upstream: true }' }), [clusterYaml('up', upstream.port, true)]);
  const c1 = new Client('h1', overwrite.port);
  const c2 = new Client('h1', match.port);
  try {
    assert.equal((await c1.request({ path: '/' })).status, 200);
    assert.equal((await c2.request({ path: '/' })).status, 200);
    assert.deepEqual(schemes, ['https', 'http']);
  } finally {
    c1.close();
    c2.close();
    await overwrite.close();
    await match.close();
    await upstream.close();
  }
});

test('auto_host_rewrite takes the endpoint\'s hostname, and with append_x_forwarded_host the client\'s host goes to x-forwarded-host', TIMEOUT, async () => {
  const seen: Array<Record<string, string | string[] | undefined>> = [];
  const upstream = await startUpstream('http1', (req, res) => {
    seen.push({ ...req.headers });
    res.end('ok');
  });
  const cluster = `
name: named
connect_timeout: 1s
load_assignment:
  cluster_name: named
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstream.port} } }, hostname: api.internal }`;
  const routes = `
    - { match: { prefix: /xfh }, route: { cluster: named, auto_host_rewrite: true, append_x_forwarded_host: true } }
    - { match: { prefix: / }, route: { cluster: named, auto_host_rewrite: true } }`;
  const p = await startProxy(hcm(routes), [cluster]);
  const client = new Client('h1', p.port);
  try {
    assert.equal((await client.request({ path: '/xfh', headers: { host: 'shop.example' } })).status, 200);
    assert.equal((await client.request({ path: '/plain', headers: { host: 'shop.example' } })).status, 200);
    assert.deepEqual(
      seen.map((h) => [h['host'], h['x-forwarded-host']]),
      [
        ['api.internal', 'shop.example'],
        ['api.internal', undefined],
      ],
    );
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('%RESP(...)% in response_headers_to_add reads the response being mutated (upstream answers and the router\'s local replies)', TIMEOUT, async () => {
  const upstream = await startUpstream('http1', (_req, res) => {
    res.setHeader('x-from-upstream', 'v1');
    res.end('ok');
  });
  const routes = `
    - match: { prefix: /dr }
      direct_response: { status: 200, body: { inline_string: hi } }
      response_headers_to_add: [{ header: { key: x-status, value: "%RESP(:status)%" } }]
    - match: { prefix: / }
      route: { cluster: up }
      response_headers_to_add: [{ header: { key: x-echo, value: "%RESP(x-from-upstream)%" } }]`;
  const p = await startProxy(hcm(routes), [clusterYaml('up', upstream.port)]);
  const client = new Client('h1', p.port);
  try {
    const r = await client.request({ path: '/' });
    assert.equal(r.headers['x-echo'], 'v1');
    const d = await client.request({ path: '/dr' });
    assert.equal(d.headers['x-status'], '200');
  } finally {
    client.close();
    await p.close();
    await upstream.close();
  }
});

test('gRPC local replies go to application/grpc and application/grpc+proto requests only, not to grpc-web (as Envoy\'s hasGrpcContentType)', TIMEOUT, async () => {
  const routes = `
    - { match: { prefix: / }, direct_response: { status: 404 } }`;
  const p = await startProxy(hcm(routes), []);
  const client = new Client('h2', p.port);
  try {
    const proto = await client.request({ method: 'POST', path: '/pkg.Svc/M', headers: { 'content-type': 'application/grpc+proto' } });
    assert.equal(proto.status, 200);
    assert.equal(proto.headers['grpc-status'], '12', 'a local 404 is UNIMPLEMENTED');
    const web = await client.request({ method: 'POST', path: '/pkg.Svc/M', headers: { 'content-type': 'application/grpc-web+proto' } });
    assert.equal(web.status, 404);
    assert.equal(web.headers['grpc-status'], undefined);
  } finally {
    client.close();
    await p.close();
  }
});
