// envoy.filters.http.header_mutation through a real connection manager and router against a real
// node:http upstream, over HTTP/1.1 (undici) and HTTP/2 (node:http2): request headers added,
// overwritten and removed as the upstream sees them, response headers as the client sees them,
// formatter values, Envoy's one-by-one order, HeaderMutationPerRoute levels, and config errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { parse } from 'yaml';
import { clusterYaml } from '../router/harness.ts';
import { Client as H2Client, filterHcmYaml, startFilterProxy, startProxy } from '../router/proxy-harness.ts';
import { startHttp1Upstream } from '../../../helpers/upstreams.ts';
import { parseHeaderMutation, parseHeaderMutationPerRoute } from '../../../../src/filters/http/header_mutation/index.ts';
import { decodeJson } from '../../../../src/config/decode.ts';
import type { ConfigError } from '../../../../src/config/result.ts';

const TIMEOUT = { timeout: 30_000 };
const HM = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';
const PER_ROUTE = 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute';

/** An HCM with the header_mutation filter (`filter` is its typed_config body), then the router. */
function hcmYaml(filter: string, routes: string, vhostExtra = ''): string {
  return filterHcmYaml({ name: 'envoy.filters.http.header_mutation', typeUrl: HM, filter, routes, vhostExtra });
}

const append = (key: string, value: string, action = 'APPEND_IF_EXISTS_OR_ADD', extra = ''): string =>
  `- append: { header: { key: ${key}, value: ${JSON.stringify(value)} }, append_action: ${action}${extra} }`;

/** Every kind of mutation, in an order where Envoy's one-by-one evaluation shows. */
const FILTER = `
mutations:
  request_mutations:
  - remove: x-drop
  ${append('x-added', 'added')}
  ${append('x-over', 'new', 'OVERWRITE_IF_EXISTS_OR_ADD')}
  ${append('x-append', 'b')}
  ${append('x-absent', 'no', 'ADD_IF_ABSENT')}
  ${append('x-missing', 'm', 'OVERWRITE_IF_EXISTS')}
  ${append('x-client', '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% saw %REQ(x-over)%')}
  ${append('x-empty', '%REQ(x-nothing)%')}
  ${append('x-kept-empty', '%REQ(x-nothing)%', 'APPEND_IF_EXISTS_OR_ADD', ', keep_empty_value: true')}
  ${append('x-temp', 'gone')}
  - remove: x-temp
  ${append('x-order', 'filter')}
  response_mutations:
  ${append('x-upstream', 'proxy', 'OVERWRITE_IF_EXISTS_OR_ADD')}
  ${append('x-echo', 'upstream=%RESP(x-upstream)% path=%REQ(:path)%')}
  - remove: content-type
  ${append('x-order', 'filter')}`;

const ROUTES = `
- match: { prefix: /route }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": ${PER_ROUTE}
      mutations:
        request_mutations:
        ${append('x-order', 'route')}
        - remove: x-added
        response_mutations:
        ${append('x-order', 'route')}
- match: { prefix: /disabled }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- match: { prefix: /broken }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": ${PER_ROUTE}
      mutations: { request_mutations: [ { remove: host } ] }
- { match: { prefix: / }, route: { cluster: up } }`;

const VH_LEVEL = `
typed_per_filter_config:
  envoy.filters.http.header_mutation:
    "@type": ${PER_ROUTE}
    mutations:
      request_mutations:
      ${append('x-order', 'vhost')}
      response_mutations:
      ${append('x-order', 'vhost')}`;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}
type Send = (path: string, headers?: Record<string, string>) => Promise<Res>;

/** undici for HTTP/1.1, node:http2 (h2c) for HTTP/2. */
function client(kind: 'h1' | 'h2', port: number): { send: Send; close(): Promise<void> } {
  if (kind === 'h1') {
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    return {
      send: async (path, headers = {}) => {
        const r = await pool.request({ path, method: 'GET', headers });
        await r.body.text();
        return { status: r.statusCode, headers: r.headers };
      },
      close: () => pool.close(),
    };
  }
  const c = new H2Client('h2', port);
  return {
    send: async (path, headers = {}) => {
      const r = await c.request({ path, headers });
      return { status: r.status, headers: r.headers };
    },
    close: async () => c.close(),
  };
}

const setup = startFilterProxy;

const CLIENT_HEADERS = { 'x-drop': '1', 'x-over': 'old', 'x-append': 'a', 'x-absent': 'yes', 'x-keep': 'k' };

for (const kind of ['h1', 'h2'] as const) {
  test(`${kind}: request headers added, overwritten and removed at the upstream; response headers at the client; formatter values`, TIMEOUT, async () => {
    const e = await setup(hcmYaml(FILTER, ROUTES));
    const c = client(kind, e.proxy.port);
    try {
      const r = await c.send('/plain?q=1', CLIENT_HEADERS);
      assert.equal(r.status, 200);
      const up = e.upstream.seen[0]!.headers;
      assert.equal(up['x-drop'], undefined, 'removed');
      assert.equal(up['x-added'], 'added');
      assert.equal(up['x-over'], 'new', 'OVERWRITE_IF_EXISTS_OR_ADD');
      assert.equal(up['x-append'], 'a, b', 'APPEND_IF_EXISTS_OR_ADD keeps the client value');
      assert.equal(up['x-absent'], 'yes', 'ADD_IF_ABSENT leaves a present header');
      assert.equal(up['x-missing'], undefined, 'OVERWRITE_IF_EXISTS adds nothing');
      // Evaluated after the x-over overwrite before it (Envoy applies mutations one by one).
      assert.equal(up['x-client'], '127.0.0.1 saw new');
      assert.equal(up['x-empty'], undefined, 'an empty value is not added');
      assert.equal(up['x-kept-empty'], '', 'keep_empty_value');
      assert.equal(up['x-temp'], undefined, 'added then removed');
      assert.equal(up['x-keep'], 'k');
      assert.equal(up['x-order'], 'filter');
      // Response: the upstream's x-upstream overwritten, then read back by %RESP()%.
      assert.equal(r.headers['x-upstream'], 'proxy');
      assert.equal(r.headers['x-echo'], 'upstream=proxy path=/plain?q=1');
      assert.equal(r.headers['content-type'], undefined, 'removed');
      assert.equal(r.headers['x-order'], 'filter');
    } finally {
      await c.close();
      await e.close();
    }
  });

  test(`${kind}: HeaderMutationPerRoute at route and virtual host levels after the filter's, FilterConfig disabled, an invalid override ignored`, TIMEOUT, async () => {
    const e = await setup(hcmYaml(FILTER, ROUTES, VH_LEVEL));
    const c = client(kind, e.proxy.port);
    try {
      // Filter first, then route levels most specific first (less specific levels win by default).
      const r = await c.send('/route/x', CLIENT_HEADERS);
      assert.equal(r.status, 200);
      assert.equal(e.upstream.seen[0]!.headers['x-order'], 'filter, route, vhost');
      assert.equal(e.upstream.seen[0]!.headers['x-added'], undefined, 'the route level removes what the filter added');
      assert.equal(e.upstream.seen[0]!.headers['x-over'], 'new');
      assert.deepEqual(r.headers['x-order'], kind === 'h1' ? ['filter', 'route', 'vhost'] : 'filter, route, vhost');

      const plain = await c.send('/plain', CLIENT_HEADERS);
      assert.equal(plain.status, 200);
      assert.equal(e.upstream.seen[1]!.headers['x-order'], 'filter, vhost');

      const off = await c.send('/disabled', CLIENT_HEADERS);
      assert.equal(off.status, 200);
      assert.equal(e.upstream.seen[2]!.headers['x-drop'], '1', 'no mutation on a route that disables the filter');
      assert.equal(e.upstream.seen[2]!.headers['x-order'], undefined);
      assert.equal(off.headers['content-type'], 'application/json');

      // `remove: host` is refused: the route's override is dropped, the other levels still apply.
      const broken = await c.send('/broken', CLIENT_HEADERS);
      assert.equal(broken.status, 200);
      assert.equal(e.upstream.seen[3]!.headers['x-order'], 'filter, vhost');
      assert.equal(e.upstream.seen[3]!.headers['x-drop'], undefined);
    } finally {
      await c.close();
      await e.close();
    }
  });
}

test('h1: most_specific_header_mutations_wins evaluates the route level last', TIMEOUT, async () => {
  const e = await setup(hcmYaml(`${FILTER}\nmost_specific_header_mutations_wins: true`, ROUTES, VH_LEVEL));
  const c = client('h1', e.proxy.port);
  try {
    const r = await c.send('/route/x');
    assert.equal(e.upstream.seen[0]!.headers['x-order'], 'filter, vhost, route');
    assert.deepEqual(r.headers['x-order'], ['filter', 'vhost', 'route']);
  } finally {
    await c.close();
    await e.close();
  }
});

/** Routes whose HeaderMutationPerRoute adds a value with a control byte (or adds it and takes it out again). */
const BAD_VALUE_ROUTES = `
- match: { prefix: /bad-request }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": ${PER_ROUTE}
      mutations: { request_mutations: [ { append: { header: { key: x-bad, value: "a\\u0001b" } } } ] }
- match: { prefix: /bad-then-removed }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": ${PER_ROUTE}
      mutations: { request_mutations: [ { append: { header: { key: x-bad, value: "a\\u0001b" } } }, { remove: x-bad } ] }
- match: { prefix: /bad-response }
  route: { cluster: up }
  typed_per_filter_config:
    envoy.filters.http.header_mutation:
      "@type": ${PER_ROUTE}
      mutations: { response_mutations: [ { append: { header: { key: x-bad, value: "a\\u0001b" } } } ] }
- { match: { prefix: / }, route: { cluster: up } }`;

for (const kind of ['h1', 'h2'] as const) {
  // The HTTP/1.1 encoders skip checking a header block that came from a strict parser untouched;
  // one a filter changed is checked in full, as node:http would refuse it.
  test(`${kind}: a header value a filter made with a control byte never reaches an HTTP/1.1 wire`, TIMEOUT, async () => {
    const e = await setup(hcmYaml('mutations: {}', BAD_VALUE_ROUTES));
    const c = client(kind, e.proxy.port);
    try {
      const bad = await c.send('/bad-request');
      assert.equal(bad.status, 502, 'the upstream request is refused before it is written (upstream protocol error)');
      assert.equal(e.upstream.seen.length, 0, 'the upstream saw nothing');
      const removed = await c.send('/bad-then-removed', { 'x-in': 'v' });
      assert.equal(removed.status, 200, 'what is sent is checked, not what was once set');
      assert.equal(e.upstream.seen[0]!.headers['x-bad'], undefined);
      assert.equal(e.upstream.seen[0]!.headers['x-in'], 'v');
      // The response side's HTTP/1.1 encoder is the downstream one (HTTP/2 responses go through node:http2's checks).
      if (kind === 'h1') await assert.rejects(c.send('/bad-response'), 'the response is reset, not sent');
      assert.equal((await c.send('/plain')).status, 200, 'the connection manager still serves');
    } finally {
      await c.close();
      await e.close();
    }
  });
}

function parseYaml(type: string, yaml: string): unknown {
  const d = decodeJson<unknown>(type, parse(yaml));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  return d.value;
}

const paths = (errors: readonly ConfigError[]): string[] => errors.map((x) => x.path);

test('config errors name their field path', () => {
  const msg = parseYaml(
    HM,
    `
mutations:
  request_mutations:
  - remove: x-fine
  - append: { header: { key: ":path", value: /x } }
  - remove: host
  response_mutations:
  - append: { header: { key: x-a, value: "%NOT_AN_OPERATOR%" } }
  - append: { header: { key: x-b, value: v }, append: true, append_action: OVERWRITE_IF_EXISTS }`,
  );
  const r = parseHeaderMutation(msg, { path: 'http_filters[0].typed_config' });
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.deepEqual(paths(r.errors), [
    'http_filters[0].typed_config.mutations.request_mutations[1].append.header.key',
    'http_filters[0].typed_config.mutations.request_mutations[2].remove',
    'http_filters[0].typed_config.mutations.response_mutations[0].append.header.value',
    'http_filters[0].typed_config.mutations.response_mutations[1].append',
  ]);

  const ok = parseHeaderMutation(parseYaml(HM, 'mutations: { request_mutations: [ { remove: X-Drop } ] }'), { path: 'f' });
  assert.equal(ok.ok, true);

  const perRoute = parseHeaderMutationPerRoute(parseYaml(PER_ROUTE, 'mutations: { response_mutations: [ { append: { header: { key: ":authority", value: v } } } ] }'), 'r');
  assert.ok(!perRoute.ok);
  assert.deepEqual(paths(perRoute.errors), ['r.mutations.response_mutations[0].append.header.key']);
  const wrongType = parseHeaderMutationPerRoute(parseYaml(HM, 'mutations: {}'), 'r');
  assert.ok(!wrongType.ok);
  assert.match(wrongType.errors[0]!.reason, /expected .*HeaderMutationPerRoute/);
});

test('an HCM with a bad header_mutation config does not start, and says where', TIMEOUT, async () => {
  const upstream = await startHttp1Upstream();
  try {
    const bad = `mutations: { request_mutations: [ { append: { header: { key: x-ok, value: "%REQ(x%" } } } ] }`;
    await assert.rejects(startProxy(hcmYaml(bad, '- { match: { prefix: / }, route: { cluster: up } }'), [clusterYaml('up', upstream.port)]), (err: Error) => {
      assert.match(err.message, /http_filters\[0\]\.typed_config\.mutations\.request_mutations\[0\]\.append\.header\.value/);
      return true;
    });
  } finally {
    await upstream.close();
  }
});
