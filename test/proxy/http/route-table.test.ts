import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors, type Result } from '../../../src/config/result.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { compileRouteTable, type RouteTableContext } from '../../../src/proxy/http/route-table.ts';
import type { RouteEntry, RouteTable } from '../../../src/proxy/http/route-types.ts';
import type { RouteConfiguration__Output } from '../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';

function compile(y: string, ctx: Partial<RouteTableContext> = {}): Result<RouteTable> {
  const d = decodeJson<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', parse(y));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  return compileRouteTable(d.value, { path: 'route_config', clusterNames: undefined, ...ctx });
}

function table(y: string, ctx: Partial<RouteTableContext> = {}): RouteTable {
  const r = compile(y, ctx);
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function errorsOf(y: string, ctx: Partial<RouteTableContext> = {}): string {
  const r = compile(y, ctx);
  assert.equal(r.ok, false, 'expected a config error');
  return r.ok ? '' : formatErrors(r.errors);
}

const info = newStreamInfo({ downstreamRemote: { address: '10.0.0.1', port: 5555 }, downstreamLocal: { address: '10.0.0.2', port: 80 }, connectionId: 1 });

function req(path: string, host = 'example.com', extra: [string, string][] = []): HeaderMap {
  return HeaderMap.fromPairs([[':method', 'GET'], [':scheme', 'http'], [':authority', host], [':path', path], ...extra]);
}

function routeName(t: RouteTable, h: HeaderMap): string | undefined {
  const e: RouteEntry | undefined = t.match(h, info);
  return e === undefined ? undefined : `${e.virtualHost.name}/${e.name}`;
}

const DOMAINS = `
name: rc
virtual_hosts:
- {name: exact, domains: ["www.example.com", "API.Example.com:8080"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
- {name: suffix-long, domains: ["*-bar.foo.com"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
- {name: suffix, domains: ["*.foo.com"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
- {name: prefix, domains: ["foo.*", "foo.bar.*"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
- {name: default, domains: ["*"], routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
`;

test('virtual hosts: exact, longest suffix wildcard, longest prefix wildcard, then *', () => {
  const t = table(DOMAINS);
  const vh = (host: string) => routeName(t, req('/', host))?.split('/')[0];
  assert.equal(vh('www.example.com'), 'exact');
  assert.equal(vh('WWW.Example.COM'), 'exact', 'host is lowercased');
  assert.equal(vh('api.example.com:8080'), 'exact', 'domain with port');
  assert.equal(vh('api.example.com'), 'default', 'port in domain must be in host');
  assert.equal(vh('www.example.com:80'), 'default', 'port in host must be in domain');
  assert.equal(vh('x-bar.foo.com'), 'suffix-long', 'longest suffix wins');
  assert.equal(vh('x.foo.com'), 'suffix');
  assert.equal(vh('.foo.com'), 'default', '*.foo.com needs at least one character');
  assert.equal(vh('foo.com'), 'prefix', 'suffix does not match, prefix foo.* does');
  assert.equal(vh('foo.bar.baz'), 'prefix');
  assert.equal(vh('a.b.foo.com'), 'suffix', 'suffix beats prefix');
  assert.equal(vh('elsewhere'), 'default');
});

test('virtual hosts: ignore_port_in_host_matching and no default', () => {
  const t = table(`
ignore_port_in_host_matching: true
virtual_hosts:
- {name: a, domains: ["a.com"], routes: [{match: {prefix: /}, route: {cluster: c}}]}
- {name: v6, domains: ["[::1]"], routes: [{match: {prefix: /}, route: {cluster: c}}]}
`);
  assert.equal(t.match(req('/', 'a.com:8443'), info)?.virtualHost.name, 'a');
  assert.equal(t.match(req('/', '[::1]:80'), info)?.virtualHost.name, 'v6');
  assert.equal(t.match(req('/', '[::1]'), info)?.virtualHost.name, 'v6');
  assert.equal(t.match(req('/', 'b.com'), info), undefined, 'no vhost → undefined (404 NR)');
  const noHost = HeaderMap.fromPairs([[':path', '/']]);
  assert.equal(t.match(noHost, info), undefined);
  const strip = table(`virtual_hosts: [{name: a, domains: ["a.com"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]`, { stripPort: true });
  assert.equal(strip.match(req('/', 'A.com:8443'), info)?.virtualHost.name, 'a', 'stripPort option');
  const only = table(`virtual_hosts: [{name: d, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c}}]}]`);
  assert.equal(only.match(noHost, info)?.virtualHost.name, 'd', 'only a default vhost: host not needed');
});

test('route match kinds: prefix, path, safe_regex, path_separated_prefix, connect; first wins; query ignored', () => {
  const t = table(`
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {name: exact, match: {path: /exact}, route: {cluster: c}}
  - {name: regex, match: {safe_regex: {regex: "/re/[0-9]+"}}, route: {cluster: c}}
  - {name: sep, match: {path_separated_prefix: /api/dev}, route: {cluster: c}}
  - {name: cipath, match: {path: /CiPath, case_sensitive: false}, route: {cluster: c}}
  - {name: ci, match: {prefix: /CI, case_sensitive: false}, route: {cluster: c}}
  - {name: connect, match: {connect_matcher: {}}, route: {cluster: c}}
  - {name: prefix, match: {prefix: /p}, route: {cluster: c}}
  - {name: first, match: {prefix: /}, route: {cluster: c}}
  - {name: never, match: {prefix: /}, route: {cluster: c}}
`);
  const r = (p: string, extra: [string, string][] = []) => routeName(t, req(p, 'h', extra))?.split('/')[1];
  assert.equal(r('/exact'), 'exact');
  assert.equal(r('/exact?x=1'), 'exact', 'query is not part of the path');
  assert.equal(r('/exact#frag'), 'exact');
  assert.equal(r('/exact/'), 'first');
  assert.equal(r('/Exact'), 'first', 'case sensitive by default');
  assert.equal(r('/re/123'), 'regex');
  assert.equal(r('/re/123?q=a'), 'regex');
  assert.equal(r('/re/123x'), 'first', 'regex must match the whole path');
  assert.equal(r('/x/re/1'), 'first');
  for (const p of ['/api/dev', '/api/dev/', '/api/dev/v1', '/api/dev?param=true']) assert.equal(r(p), 'sep', p);
  assert.equal(r('/api/developer'), 'first');
  assert.equal(r('/ci/x'), 'ci');
  assert.equal(r('/cI'), 'ci');
  assert.equal(r('/cipath'), 'cipath');
  assert.equal(r('/cipath/x'), 'ci');
  assert.equal(r('/pp'), 'prefix');
  const connect = HeaderMap.fromPairs([[':method', 'CONNECT'], [':authority', 'h:443']]);
  assert.equal(t.match(connect, info)?.name, 'connect');
});

test('route conditions: headers, query_parameters, grpc, runtime_fraction', () => {
  let next = 0;
  const t = table(
    `
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - name: hdr
    match: {prefix: /, headers: [{name: x-canary, exact_match: "1"}, {name: x-bad, present_match: true, invert_match: true}]}
    route: {cluster: c}
  - name: query
    match: {prefix: /, query_parameters: [{name: debug, present_match: true}, {name: v, string_match: {prefix: "2"}}]}
    route: {cluster: c}
  - {name: grpc, match: {prefix: /, grpc: {}}, route: {cluster: c}}
  - name: frac
    match: {prefix: /f, runtime_fraction: {default_value: {numerator: 25, denominator: HUNDRED}, runtime_key: k}}
    route: {cluster: c}
  - {name: fallback, match: {prefix: /}, route: {cluster: c}}
`,
    { random: () => next },
  );
  const r = (p: string, extra: [string, string][] = []) => t.match(req(p, 'h', extra), info)?.name;
  assert.equal(r('/', [['x-canary', '1']]), 'hdr');
  assert.equal(r('/', [['x-canary', '1'], ['x-bad', 'y']]), 'fallback', 'inverted presence');
  assert.equal(r('/', [['x-canary', '2']]), 'fallback');
  assert.equal(r('/?debug&v=21'), 'query');
  assert.equal(r('/?debug&v=12'), 'fallback');
  assert.equal(r('/?v=2'), 'fallback');
  assert.equal(r('/', [['content-type', 'application/grpc']]), 'grpc');
  assert.equal(r('/', [['content-type', 'application/grpc+proto']]), 'grpc');
  assert.equal(r('/', [['content-type', 'application/grpc-web']]), 'fallback');
  // Envoy: enabled ⇔ random % denominator < numerator (the draw is in [0, 1e6)).
  next = 24.5 / 1e6;
  assert.equal(r('/f'), 'frac');
  next = 25.5 / 1e6;
  assert.equal(r('/f'), 'fallback');
  next = 124.5 / 1e6;
  assert.equal(r('/f'), 'frac');
  // Over real randomness the fraction is ~25%.
  const real = table(
    `virtual_hosts: [{name: v, domains: ["*"], routes: [
      {name: a, match: {prefix: /, runtime_fraction: {default_value: {numerator: 25}}}, route: {cluster: c}},
      {name: b, match: {prefix: /}, route: {cluster: c}}]}]`,
  );
  let hits = 0;
  for (let i = 0; i < 10000; i++) if (real.match(req('/'), info)?.name === 'a') hits++;
  assert.ok(hits > 2200 && hits < 2800, `hits ${hits}`);
});

test('ignore_path_parameters_in_path_matching', () => {
  const t = table(`
ignore_path_parameters_in_path_matching: true
virtual_hosts: [{name: v, domains: ["*"], routes: [{name: a, match: {path: /a}, route: {cluster: c}}]}]`);
  assert.equal(t.match(req('/a;jsessionid=1'), info)?.name, 'a');
});

test('require_tls redirects plain-text requests to https', () => {
  const t = table(`
virtual_hosts:
- {name: all, domains: ["all.com"], require_tls: ALL, routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
- {name: ext, domains: ["ext.com"], require_tls: EXTERNAL_ONLY, routes: [{name: r, match: {prefix: /}, route: {cluster: c}}]}
`);
  const e = t.match(req('/p?q', 'all.com'), info);
  assert.equal(e?.action.kind, 'redirect');
  if (e?.action.kind === 'redirect') assert.equal(e.action.location(req('/p?q', 'all.com')), 'https://all.com/p?q');
  assert.equal(t.match(req('/', 'all.com', [['x-forwarded-proto', 'https']]), info)?.action.kind, 'route');
  assert.equal(t.match(req('/', 'ext.com'), info)?.action.kind, 'redirect');
  assert.equal(t.match(req('/', 'ext.com', [['x-envoy-internal', 'true']]), info)?.action.kind, 'route');
});

test('config errors name their field paths', () => {
  assert.match(
    errorsOf(`{name: rc, virtual_hosts: [{name: a, domains: [x.com, X.com], routes: []}]}`),
    /route_config\.virtual_hosts\[0\]\.domains\[1\]: Only unique values for domains are permitted\. Duplicate entry of domain x\.com in route rc/,
  );
  assert.match(errorsOf(`{virtual_hosts: [{name: a, domains: ["*.a"]}, {name: b, domains: ["*.a"]}]}`), /virtual_hosts\[1\]\.domains\[0\]: Only unique values/);
  assert.match(errorsOf(`{virtual_hosts: [{name: a, domains: ["*"]}, {name: b, domains: ["*"]}]}`), /Only a single wildcard domain/);
  const clusters = new Set(['known']);
  const rc = `{virtual_hosts: [{name: a, domains: ["*"], routes: [
    {match: {prefix: /}, route: {cluster: known}},
    {match: {prefix: /}, route: {cluster: known}},
    {match: {prefix: /}, route: {cluster: foo}}]}]}`;
  assert.match(errorsOf(rc, { clusterNames: clusters }), /route_config\.virtual_hosts\[0\]\.routes\[2\]\.route\.cluster: unknown cluster "foo"/);
  assert.equal(compile(rc, { clusterNames: clusters, dynamic: true }).ok, true, 'RDS: validate_clusters defaults to false');
  assert.equal(compile(`{validate_clusters: false, ${rc.slice(1)}`, { clusterNames: clusters }).ok, true);
  assert.equal(compile(rc).ok, true, 'no cluster names (CDS): nothing to check against');
  const wc = `{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: known, weight: 1}, {name: nope, weight: 1}]}}}]}]}`;
  assert.match(errorsOf(wc, { clusterNames: clusters }), /routes\[0\]\.route\.weighted_clusters\.clusters\[1\]\.name: unknown cluster "nope"/);
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 0}]}}}]}]}`),
    /weighted_clusters\.clusters: Sum of weights in the weighted_cluster must be greater than 0/,
  );
  assert.match(errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {safe_regex: {regex: "(a"}}, route: {cluster: c}}]}]}`), /routes\[0\]\.match\.safe_regex\.regex: invalid regex/);
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /, headers: [{name: x, safe_regex_match: {regex: "a\\\\1"}}]}, route: {cluster: c}}]}]}`),
    /routes\[0\]\.match\.headers\[0\]\.safe_regex_match\.regex: invalid regex/,
  );
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: "("}, substitution: x}}}]}]}`),
    /routes\[0\]\.route\.regex_rewrite\.pattern\.regex: invalid regex/,
  );
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], request_headers_to_add: [{header: {key: ":path", value: x}}]}]}`),
    /virtual_hosts\[0\]\.request_headers_to_add\[0\]\.header\.key: :-prefixed or host headers may not be modified/,
  );
  assert.match(errorsOf(`{response_headers_to_remove: [host]}`), /route_config\.response_headers_to_remove\[0\]: :-prefixed or host headers may not be removed/);
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: "${'x'.repeat(5000)}"}}}]}]}`),
    /direct_response\.body: response body size is 5000 bytes; maximum is 4096/,
  );
  assert.match(
    errorsOf(`{virtual_hosts: [{name: a, domains: ["*"], request_headers_to_add: [{header: {key: x, value: "%NOPE%"}}]}]}`),
    /virtual_hosts\[0\]\.request_headers_to_add\[0\]\.header\.value/,
  );
});

test('bad retry_policy / hedge_policy is a config error at load, with its field path', () => {
  const route = (action: string, vh = '') =>
    `{virtual_hosts: [{name: a, domains: ["*"]${vh}, routes: [{match: {prefix: /x}, route: {cluster: c}}, {match: {prefix: /}, route: {cluster: c${action}}}]}]}`;
  assert.match(
    errorsOf(route(', retry_policy: {retry_on: 5xx, retry_host_predicate: [{name: envoy.retry_host_predicates.nope}]}')),
    /route_config\.virtual_hosts\[0\]\.routes\[1\]\.route\.retry_policy\.retry_host_predicate\[0\]: unknown retry host predicate "envoy\.retry_host_predicates\.nope"/,
  );
  assert.match(
    errorsOf(route(', retry_policy: {retry_on: 5xx, retry_back_off: {base_interval: 1s, max_interval: 0.5s}}')),
    /routes\[1\]\.route\.retry_policy\.retry_back_off\.max_interval: must be greater than or equal to base_interval/,
  );
  assert.match(errorsOf(route(', hedge_policy: {initial_requests: 2}')), /routes\[1\]\.route\.hedge_policy\.initial_requests: /);
  assert.match(
    errorsOf(route('', ', retry_policy: {retry_back_off: {base_interval: 2s, max_interval: 1s}}')),
    /route_config\.virtual_hosts\[0\]\.retry_policy\.retry_back_off\.max_interval: must be greater than or equal to base_interval/,
  );
  assert.match(errorsOf(route('', ', hedge_policy: {initial_requests: 3}')), /virtual_hosts\[0\]\.hedge_policy\.initial_requests: /);
  // Valid policies compile.
  table(route(', retry_policy: {retry_on: "5xx,reset", num_retries: 2, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]}, hedge_policy: {hedge_on_per_try_timeout: true}', ', retry_policy: {retry_on: 5xx}'));
});

test('rate_limits: a header or query parameter matcher that cannot compile rejects the route configuration (route and virtual host), with its path', () => {
  const badHeader = `{virtual_hosts: [{name: a, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: up, rate_limits: [
    {actions: [{generic_key: {descriptor_value: g}}]},
    {actions: [{generic_key: {descriptor_value: g}}, {header_value_match: {descriptor_value: v, headers: [{name: x-a, safe_regex_match: {regex: "a(b"}}]}}]}]}}]}]}`;
  assert.match(errorsOf(badHeader), /^route_config\.virtual_hosts\[0\]\.routes\[0\]\.route\.rate_limits\[1\]\.actions\[1\]\.header_value_match\.headers\[0\]\.safe_regex_match\.regex: invalid regex "a\(b"/);
  const badQuery = `{virtual_hosts: [{name: a, domains: ["*"], rate_limits: [
    {actions: [{query_parameter_value_match: {descriptor_value: v, query_parameters: [{name: q, string_match: {safe_regex: {regex: "[z-a]"}}}]}}]}],
    routes: [{match: {prefix: /}, route: {cluster: up}}]}]}`;
  assert.match(errorsOf(badQuery), /^route_config\.virtual_hosts\[0\]\.rate_limits\[0\]\.actions\[0\]\.query_parameter_value_match\.query_parameters\[0\]\.string_match\.safe_regex\.regex: invalid regex/);
  const good = `{virtual_hosts: [{name: a, domains: ["*"], rate_limits: [{actions: [{header_value_match: {descriptor_value: v, headers: [{name: x-a, safe_regex_match: {regex: "(?i)a+"}}]}}]}],
    routes: [{match: {prefix: /}, route: {cluster: up, rate_limits: [{actions: [{remote_address: {}}]}]}}]}]}`;
  assert.equal(compile(good).ok, true);
});
