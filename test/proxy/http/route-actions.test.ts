import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { compileRouteTable, type RouteTableContext } from '../../../src/proxy/http/route-table.ts';
import { xxHash64 } from '../../../src/proxy/upstream/hash.ts';
import type { ClusterRouteAction, DirectResponseAction, RedirectAction, RouteTable } from '../../../src/proxy/http/route-types.ts';
import type { RouteConfiguration__Output } from '../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';

function table(y: string, ctx: Partial<RouteTableContext> = {}): RouteTable {
  const d = decodeJson<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', parse(y));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = compileRouteTable(d.value, { path: 'route_config', clusterNames: undefined, ...ctx });
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

/** One virtual host `*` with the given routes (YAML flow list items). */
function routes(...items: string[]): RouteTable {
  return table(`virtual_hosts: [{name: v, domains: ["*"], routes: [${items.join(',')}]}]`);
}

const info = newStreamInfo({ downstreamRemote: { address: '10.0.0.1', port: 5555 }, downstreamLocal: { address: '10.0.0.2', port: 80 }, connectionId: 1 });

function req(path: string, host = 'example.com', extra: [string, string][] = []): HeaderMap {
  return HeaderMap.fromPairs([[':method', 'GET'], [':scheme', 'http'], [':authority', host], [':path', path], ...extra]);
}

function clusterAction(t: RouteTable, h: HeaderMap): ClusterRouteAction {
  const a = t.match(h, info)?.action;
  assert.equal(a?.kind, 'route');
  return a as ClusterRouteAction;
}

/** Matches `path` and applies the route's rewrite; returns the rewritten headers. */
function rewritten(t: RouteTable, path: string, extra: [string, string][] = [], host = 'example.com'): HeaderMap {
  const h = req(path, host, extra);
  clusterAction(t, h).rewrite(h);
  return h;
}

test('cluster, cluster_header, defaults (timeout 15 s, 503 when cluster missing)', () => {
  const t = routes(
    `{match: {prefix: /h}, route: {cluster_header: X-Cluster, cluster_not_found_response_code: NOT_FOUND, timeout: 0s, idle_timeout: 2.5s}}`,
    `{match: {prefix: /}, route: {cluster: backend, retry_policy: {retry_on: 5xx, num_retries: 3}}}`,
  );
  const a = clusterAction(t, req('/'));
  assert.equal(a.pickCluster(req('/')), 'backend');
  assert.equal(a.timeoutMs, 15000);
  assert.equal(a.idleTimeoutMs, undefined);
  assert.equal(a.clusterNotFoundStatus, 503);
  assert.equal((a.retryPolicy as { num_retries: { value: number } }).num_retries.value, 3);
  assert.equal(a.hash(req('/'), info), undefined);
  const h = clusterAction(t, req('/h'));
  assert.equal(h.pickCluster(req('/h', 'x', [['x-cluster', 'dyn']])), 'dyn');
  assert.equal(h.pickCluster(req('/h')), undefined);
  assert.equal(h.clusterNotFoundStatus, 404);
  assert.equal(h.timeoutMs, 0, '0 disables the timeout');
  assert.equal(h.idleTimeoutMs, 2500);
});

test('weighted_clusters: split within tolerance over 10k picks; header random value; per-cluster headers', () => {
  const t = routes(`{match: {prefix: /}, route: {weighted_clusters: {header_name: x-rand, clusters: [
    {name: a, weight: 1, request_headers_to_add: [{header: {key: x-from, value: a}}]},
    {name: b, weight: 3},
    {name: z, weight: 0}]}}}`);
  const a = clusterAction(t, req('/'));
  const counts = new Map<string, number>();
  for (let i = 0; i < 10000; i++) {
    const c = a.pickCluster(req('/')) ?? 'none';
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const ca = counts.get('a') ?? 0;
  assert.ok(ca > 2250 && ca < 2750, `a picked ${ca}/10000`);
  assert.equal(counts.get('z'), undefined, 'weight 0 is never picked');
  assert.equal(a.pickCluster(req('/', 'h', [['x-rand', '0']])), 'a');
  assert.equal(a.pickCluster(req('/', 'h', [['x-rand', '1']])), 'b');
  assert.equal(a.pickCluster(req('/', 'h', [['x-rand', '4']])), 'a', 'value mod total weight');
  const m = a.clusterHeaders?.('a');
  assert.ok(m);
  const h = req('/');
  m.request.apply(h, info);
  assert.equal(h.get('x-from'), 'a');
  assert.equal(a.clusterHeaders?.('b'), undefined);
  // A deterministic draw picks by cumulative weight.
  let r = 0;
  const d = table(`virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {weighted_clusters: {clusters: [{name: a, weight: 10}, {name: b, weight: 90}]}}}]}]`, { random: () => r });
  const da = clusterAction(d, req('/'));
  r = 0.099;
  assert.equal(da.pickCluster(req('/')), 'a');
  r = 0.1;
  assert.equal(da.pickCluster(req('/')), 'b');
});

test('prefix_rewrite: Envoy semantics incl. the trailing-slash subtlety, path, regex and path_separated_prefix routes', () => {
  const t = routes(
    `{match: {prefix: /prefix/}, route: {cluster: c, prefix_rewrite: /}}`,
    `{match: {prefix: /prefix}, route: {cluster: c, prefix_rewrite: /}}`,
    `{match: {path: /exact}, route: {cluster: c, prefix_rewrite: /other}}`,
    `{match: {path_separated_prefix: /api}, route: {cluster: c, prefix_rewrite: /v2}}`,
    `{match: {safe_regex: {regex: "/re/[0-9]+"}}, route: {cluster: c, prefix_rewrite: /x}}`,
    `{match: {prefix: /CI/, case_sensitive: false}, route: {cluster: c, prefix_rewrite: /ci/}}`,
    `{match: {prefix: /}, route: {cluster: c}}`,
  );
  const p = (path: string) => rewritten(t, path).get(':path');
  assert.equal(p('/prefix/etc'), '/etc');
  assert.equal(p('/prefix'), '/');
  assert.equal(p('/prefixetc'), '/etc', 'a plain prefix does not respect segments');
  assert.equal(p('/prefix/etc?a=b'), '/etc?a=b', 'query kept');
  assert.equal(p('/exact?q=1'), '/other?q=1');
  assert.equal(p('/api'), '/v2');
  assert.equal(p('/api/x/y'), '/v2/x/y');
  assert.equal(p('/api?z'), '/v2?z');
  assert.equal(p('/re/12?q'), '/x?q', 'regex route: the whole path is the matched prefix');
  assert.equal(p('/ci/Foo'), '/ci/Foo');
  assert.equal(p('/cI/Foo'), '/ci/Foo', 'case-insensitive match keeps the rest as sent');
  const h = rewritten(t, '/prefix/etc?a');
  assert.equal(h.get('x-envoy-original-path'), '/prefix/etc?a');
  const plain = rewritten(t, '/other');
  assert.equal(plain.get('x-envoy-original-path'), undefined, 'no rewrite, no original path');
  const s = req('/prefix/etc');
  clusterAction(t, s).rewrite(s, { insertOriginalPath: false });
  assert.equal(s.get(':path'), '/etc');
  assert.equal(s.get('x-envoy-original-path'), undefined);
});

test('regex_rewrite: substitution with groups, query kept', () => {
  const t = routes(
    `{match: {prefix: /service}, route: {cluster: c, regex_rewrite: {pattern: {regex: "^/service/([^/]+)(/.*)$"}, substitution: "\\\\2/instance/\\\\1"}}}`,
    `{match: {prefix: /}, route: {cluster: c, regex_rewrite: {pattern: {regex: "one"}, substitution: two}}}`,
  );
  assert.equal(rewritten(t, '/service/foo/v1/api?x=1').get(':path'), '/v1/api/instance/foo?x=1');
  assert.equal(rewritten(t, '/xxx/one/yyy/one/zzz?one').get(':path'), '/xxx/two/yyy/two/zzz?one');
});

test('host rewrites: literal, header, path regex, auto; x-forwarded-host', () => {
  const t = routes(
    `{match: {prefix: /lit}, route: {cluster: c, host_rewrite_literal: new.example, append_x_forwarded_host: true}}`,
    `{match: {prefix: /hdr}, route: {cluster: c, host_rewrite_header: x-host}}`,
    `{match: {prefix: /re/}, route: {cluster: c, host_rewrite_path_regex: {pattern: {regex: "^/re/([^/]+)/.*$"}, substitution: "\\\\1"}, prefix_rewrite: /}}`,
    `{match: {prefix: /auto}, route: {cluster: c, auto_host_rewrite: true}}`,
  );
  const lit = rewritten(t, '/lit');
  assert.equal(lit.get(':authority'), 'new.example');
  assert.equal(lit.get('x-forwarded-host'), 'example.com');
  assert.equal(rewritten(t, '/hdr', [['x-host', 'from-header']]).get(':authority'), 'from-header');
  assert.equal(rewritten(t, '/hdr').get(':authority'), 'example.com', 'absent header: unchanged');
  const re = rewritten(t, '/re/host.example/path?q');
  assert.equal(re.get(':authority'), 'host.example', 'host from the path before the path rewrite');
  assert.equal(re.get(':path'), '/host.example/path?q');
  const auto = clusterAction(t, req('/auto'));
  assert.equal(auto.autoHostRewrite, true);
  assert.equal(clusterAction(t, req('/lit')).autoHostRewrite, false);
});

test('direct_response: inline_string, inline_bytes, filename, no body', () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-route-'));
  const file = join(dir, 'body.txt');
  writeFileSync(file, 'from file');
  const t = routes(
    `{match: {path: /s}, direct_response: {status: 200, body: {inline_string: hello}}}`,
    `{match: {path: /b}, direct_response: {status: 403, body: {inline_bytes: ${Buffer.from('bytes!').toString('base64')}}}}`,
    `{match: {path: /f}, direct_response: {status: 503, body: {filename: ${JSON.stringify(file)}}}}`,
    `{match: {path: /n}, direct_response: {status: 204}}`,
  );
  const d = (p: string) => t.match(req(p), info)?.action as DirectResponseAction;
  assert.deepEqual([d('/s').kind, d('/s').status, d('/s').body], ['direct_response', 200, 'hello']);
  assert.deepEqual([d('/b').status, d('/b').body], [403, 'bytes!']);
  assert.deepEqual([d('/f').status, d('/f').body], [503, 'from file']);
  assert.deepEqual([d('/n').status, d('/n').body], [204, undefined]);
});

test('redirects: scheme, https, host, port, path, prefix, regex, strip_query, response codes', () => {
  const t = routes(
    `{match: {prefix: /https}, redirect: {https_redirect: true}}`,
    `{match: {prefix: /scheme}, redirect: {scheme_redirect: HTTPS, response_code: FOUND}}`,
    `{match: {prefix: /host}, redirect: {host_redirect: other.example, response_code: SEE_OTHER}}`,
    `{match: {prefix: /port}, redirect: {port_redirect: 8443, response_code: TEMPORARY_REDIRECT}}`,
    `{match: {prefix: /pathq}, redirect: {path_redirect: "/new?x=1", strip_query: true}}`,
    `{match: {prefix: /path}, redirect: {path_redirect: /new, response_code: PERMANENT_REDIRECT}}`,
    `{match: {prefix: /strip}, redirect: {path_redirect: /s, strip_query: true}}`,
    `{match: {prefix: /old/}, redirect: {prefix_rewrite: /new/}}`,
    `{match: {prefix: /re}, redirect: {regex_rewrite: {pattern: {regex: "^/re/(.*)$"}, substitution: "/\\\\1/re"}, strip_query: true}}`,
  );
  const loc = (path: string, host = 'example.com', extra: [string, string][] = []) => {
    const h = req(path, host, extra);
    const a = t.match(h, info)?.action as RedirectAction;
    assert.equal(a.kind, 'redirect');
    return [a.status, a.location(h)];
  };
  assert.deepEqual(loc('/https/a?q=1'), [301, 'https://example.com/https/a?q=1']);
  assert.deepEqual(loc('/https', 'example.com:80'), [301, 'https://example.com/https'], 'default port of the old scheme dropped');
  assert.deepEqual(loc('/https', 'example.com:8080'), [301, 'https://example.com:8080/https']);
  assert.deepEqual(loc('/scheme'), [302, 'https://example.com/scheme']);
  assert.deepEqual(loc('/host/x'), [303, 'http://other.example/host/x']);
  assert.deepEqual(loc('/port/x', 'example.com:80'), [307, 'http://example.com:8443/port/x']);
  assert.deepEqual(loc('/port/x', '[::1]:80'), [307, 'http://[::1]:8443/port/x']);
  assert.deepEqual(loc('/path?q=1'), [308, 'http://example.com/new?q=1'], 'request query kept');
  assert.deepEqual(loc('/pathq?q=1'), [301, 'http://example.com/new?x=1'], 'query in path_redirect wins and is not stripped');
  assert.deepEqual(loc('/strip?q=1'), [301, 'http://example.com/s']);
  assert.deepEqual(loc('/old/a/b?z'), [301, 'http://example.com/new/a/b?z']);
  assert.deepEqual(loc('/re/abc?z'), [301, 'http://example.com/abc/re']);
  assert.deepEqual(loc('/host', 'e.com', [['x-forwarded-proto', 'https']]), [303, 'https://other.example/host'], 'scheme from x-forwarded-proto');
});

test('hash_policy: header, cookie, source_ip, query_parameter; combination, terminal, determinism', () => {
  const t = routes(
    `{match: {prefix: /h}, route: {cluster: c, hash_policy: [{header: {header_name: x-user}}]}}`,
    `{match: {prefix: /two}, route: {cluster: c, hash_policy: [{header: {header_name: x-a}}, {header: {header_name: x-b}}]}}`,
    `{match: {prefix: /term}, route: {cluster: c, hash_policy: [{header: {header_name: x-a}, terminal: true}, {header: {header_name: x-b}}]}}`,
    `{match: {prefix: /cookie}, route: {cluster: c, hash_policy: [{cookie: {name: sid, ttl: 10s}}]}}`,
    `{match: {prefix: /ip}, route: {cluster: c, hash_policy: [{connection_properties: {source_ip: true}}]}}`,
    `{match: {prefix: /q}, route: {cluster: c, hash_policy: [{query_parameter: {name: u}}]}}`,
  );
  const hash = (path: string, extra: [string, string][] = []) => {
    const h = req(path, 'e', extra);
    return clusterAction(t, h).hash(h, info);
  };
  assert.equal(hash('/h', [['x-user', 'alice']]), xxHash64('alice'));
  assert.equal(hash('/h', [['x-user', 'alice']]), hash('/h', [['x-user', 'alice']]), 'deterministic');
  assert.notEqual(hash('/h', [['x-user', 'alice']]), hash('/h', [['x-user', 'bob']]));
  assert.equal(hash('/h'), undefined);
  assert.equal(hash('/h', [['x-user', 'a'], ['x-user', 'b']]), hash('/h', [['x-user', 'b'], ['x-user', 'a']]), 'repeated values: order-insensitive');
  const a = xxHash64('1');
  const b = xxHash64('2');
  const M = (1n << 64n) - 1n;
  assert.equal(hash('/two', [['x-a', '1'], ['x-b', '2']]), (((a << 1n) | (a >> 63n)) & M) ^ b);
  assert.equal(hash('/two', [['x-b', '2']]), b);
  assert.equal(hash('/term', [['x-a', '1'], ['x-b', '2']]), a, 'terminal policy stops once hashed');
  assert.equal(hash('/term', [['x-b', '2']]), b, 'terminal without a hash does not stop');
  assert.equal(hash('/cookie', [['cookie', 'a=1; sid=xyz; b=2']]), xxHash64('xyz'));
  assert.equal(hash('/cookie', [['cookie', 'a=1']]), undefined);
  assert.equal(hash('/ip'), xxHash64('10.0.0.1'));
  assert.equal(hash('/q?x=1&u=bob'), xxHash64('bob'));
  assert.equal(hash('/q?x=1'), undefined);
});
