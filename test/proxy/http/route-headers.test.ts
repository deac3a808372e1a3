import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { compileRouteTable, FILTER_DISABLED } from '../../../src/proxy/http/route-table.ts';
import type { RouteEntry, RouteTable } from '../../../src/proxy/http/route-types.ts';
import type { RouteConfiguration__Output } from '../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';

function table(y: string): RouteTable {
  const d = decodeJson<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', parse(y));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = compileRouteTable(d.value, { path: 'route_config', clusterNames: undefined });
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

const info = newStreamInfo({ downstreamRemote: { address: '10.0.0.1', port: 5555 }, downstreamLocal: { address: '10.0.0.2', port: 80 }, connectionId: 1 });

function req(path: string, extra: [string, string][] = []): HeaderMap {
  return HeaderMap.fromPairs([[':method', 'GET'], [':authority', 'example.com'], [':path', path], ...extra]);
}

function entry(t: RouteTable, path: string): RouteEntry {
  const e = t.match(req(path), info);
  assert.ok(e, `no route for ${path}`);
  return e;
}

const LEVELS = (mostSpecificWins: boolean) => `
most_specific_header_mutations_wins: ${mostSpecificWins}
request_headers_to_add: [{header: {key: x-level, value: global}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}, {header: {key: x-trace, value: g}}]
response_headers_to_add: [{header: {key: x-level, value: global}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
request_headers_to_remove: [x-secret]
internal_only_headers: [X-Internal-Only]
virtual_hosts:
- name: v
  domains: ["*"]
  request_headers_to_add: [{header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}, {header: {key: x-trace, value: v}}]
  response_headers_to_add: [{header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
  response_headers_to_remove: [server]
  routes:
  - match: {prefix: /}
    route: {cluster: c}
    request_headers_to_add: [{header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}, {header: {key: x-trace, value: r}}]
    response_headers_to_add: [{header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
`;

test('header mutation order: route, vhost, route config by default; most_specific_header_mutations_wins flips it', () => {
  const dflt = entry(table(LEVELS(false)), '/');
  const h = req('/', [['x-secret', 's']]);
  dflt.requestHeaders.apply(h, info);
  assert.equal(h.get('x-level'), 'global', 'least specific applied last wins');
  assert.deepEqual(h.getAll('x-trace'), ['r', 'v', 'g']);
  assert.equal(h.get('x-secret'), undefined);
  const res = HeaderMap.fromPairs([[':status', '200'], ['server', 'upstream']]);
  dflt.responseHeaders.apply(res, info);
  assert.equal(res.get('x-level'), 'global');
  assert.equal(res.get('server'), undefined);

  const specific = entry(table(LEVELS(true)), '/');
  const h2 = req('/');
  specific.requestHeaders.apply(h2, info);
  assert.equal(h2.get('x-level'), 'route');
  assert.deepEqual(h2.getAll('x-trace'), ['g', 'v', 'r']);
  assert.deepEqual(table(LEVELS(false)).internalOnlyHeaders, ['x-internal-only']);
});

test('append actions, legacy append, keep_empty_value, remove before add, formatter variables', () => {
  const t = table(`
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - match: {prefix: /}
    route: {cluster: c}
    request_headers_to_remove: [x-gone, x-replaced]
    request_headers_to_add:
    - {header: {key: x-append, value: new}}
    - {header: {key: x-absent, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-absent-missing, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-over, value: new}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-over-missing, value: new}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-if-exists, value: new}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-if-exists-missing, value: new}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-legacy-false, value: new}, append: false}
    - {header: {key: x-legacy-true, value: new}, append: true}
    - {header: {key: x-replaced, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: X-Client, value: "ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% full=%DOWNSTREAM_REMOTE_ADDRESS%"}}
    - {header: {key: x-empty, value: "%REQ(x-nothing)%"}}
    - {header: {key: x-empty-kept, value: "%REQ(x-nothing)%"}, keep_empty_value: true}
    - {header: {key: x-literal, value: "100%%"}}
`);
  const h = req('/', [
    ['x-append', 'old'],
    ['x-absent', 'old'],
    ['x-over', 'old'],
    ['x-over', 'old2'],
    ['x-if-exists', 'old'],
    ['x-legacy-false', 'old'],
    ['x-legacy-true', 'old'],
    ['x-gone', 'old'],
    ['x-replaced', 'old'],
  ]);
  entry(t, '/').requestHeaders.apply(h, info);
  assert.deepEqual(h.getAll('x-append'), ['old', 'new']);
  assert.deepEqual(h.getAll('x-absent'), ['old']);
  assert.deepEqual(h.getAll('x-absent-missing'), ['new']);
  assert.deepEqual(h.getAll('x-over'), ['new']);
  assert.deepEqual(h.getAll('x-over-missing'), ['new']);
  assert.deepEqual(h.getAll('x-if-exists'), ['new']);
  assert.deepEqual(h.getAll('x-if-exists-missing'), []);
  assert.deepEqual(h.getAll('x-legacy-false'), ['new']);
  assert.deepEqual(h.getAll('x-legacy-true'), ['old', 'new']);
  assert.deepEqual(h.getAll('x-gone'), []);
  assert.deepEqual(h.getAll('x-replaced'), ['new'], 'removal happens before ADD_IF_ABSENT looks');
  assert.equal(h.get('x-client'), 'ip=10.0.0.1 full=10.0.0.1:5555');
  assert.equal(h.has('x-empty'), false, 'empty values are dropped');
  assert.deepEqual(h.getAll('x-empty-kept'), ['']);
  assert.equal(h.get('x-literal'), '100%');
});

test('routes without mutations leave headers alone', () => {
  const t = table(`virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]`);
  const h = req('/');
  const before = [...h];
  entry(t, '/').requestHeaders.apply(h, info);
  entry(t, '/').responseHeaders.apply(h, info);
  assert.deepEqual([...h], before);
});

test('typed_per_filter_config: unpacked, route over vhost over route config, FilterConfig wrapper', () => {
  const fault = (status: number) => `{"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {http_status: ${status}, percentage: {numerator: 100}}}`;
  const t = table(`
typed_per_filter_config:
  envoy.filters.http.fault: ${fault(500)}
  global.only: ${fault(501)}
virtual_hosts:
- name: v
  domains: ["*"]
  typed_per_filter_config:
    envoy.filters.http.fault: ${fault(502)}
    vhost.only: ${fault(503)}
  routes:
  - match: {prefix: /r}
    route: {cluster: c}
    typed_per_filter_config:
      envoy.filters.http.fault: ${fault(504)}
      envoy.filters.http.off: {"@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}
      wrapped: {"@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: ${fault(505)}}
  - match: {prefix: /}
    route: {cluster: c}
`);
  const status = (v: unknown) => (v as { abort: { http_status: number } }).abort.http_status;
  const r = entry(t, '/r');
  assert.equal(status(r.perFilterConfig.get('envoy.filters.http.fault')), 504);
  assert.equal(status(r.perFilterConfig.get('global.only')), 501);
  assert.equal(status(r.perFilterConfig.get('vhost.only')), 503);
  assert.equal(status(r.perFilterConfig.get('wrapped')), 505);
  assert.equal(r.perFilterConfig.get('envoy.filters.http.off'), FILTER_DISABLED);
  assert.equal(status(r.virtualHost.perFilterConfig.get('envoy.filters.http.fault')), 502);
  const other = entry(t, '/other');
  assert.equal(status(other.perFilterConfig.get('envoy.filters.http.fault')), 502);
});
