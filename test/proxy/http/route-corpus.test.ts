import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { decodeJson, unpackAny } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import { newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { compileRouteTable } from '../../../src/proxy/http/route-table.ts';
import type { ClusterRouteAction, RouteTable } from '../../../src/proxy/http/route-types.ts';
import type { Bootstrap__Output } from '../../../src/generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { HttpConnectionManager__Output } from '../../../src/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import { CORPUS_DIR } from '../../helpers/corpus.ts';

const CORPUS = CORPUS_DIR;
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const info = newStreamInfo({ downstreamRemote: { address: '10.0.0.1', port: 5555 }, downstreamLocal: { address: '10.0.0.2', port: 80 }, connectionId: 1 });

/** Every inline route_config of a bootstrap, compiled against its static clusters, by listener index. */
function routeTables(file: string): RouteTable[] {
  const d = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', parse(readFileSync(join(CORPUS, file), 'utf8')));
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const sr = d.value.static_resources;
  assert.ok(sr);
  const clusters = new Set(sr.clusters.map((c) => c.name));
  const out: RouteTable[] = [];
  sr.listeners.forEach((l, li) => {
    l.filter_chains.forEach((fc, fi) => {
      fc.filters.forEach((f, i) => {
        if (f.config_type !== 'typed_config' || !f.typed_config) return;
        const path = `static_resources.listeners[${li}].filter_chains[${fi}].filters[${i}].typed_config`;
        const hcm = unpackAny<HttpConnectionManager__Output>(f.typed_config, path);
        if (!hcm.ok) throw new Error(formatErrors(hcm.errors));
        if (hcm.value.typeName !== HCM || !hcm.value.message.route_config) return;
        const t = compileRouteTable(hcm.value.message.route_config, { path: `${path}.route_config`, clusterNames: clusters });
        if (!t.ok) throw new Error(formatErrors(t.errors));
        out.push(t.value);
      });
    });
  });
  return out;
}

function cluster(t: RouteTable, path: string, host = 'localhost:8080', extra: [string, string][] = []): string | undefined {
  const h = HeaderMap.fromPairs([[':method', 'GET'], [':scheme', 'http'], [':authority', host], [':path', path], ...extra]);
  const e = t.match(h, info);
  if (!e) return undefined;
  assert.equal(e.action.kind, 'route');
  return (e.action as ClusterRouteAction).pickCluster(h);
}


test('front-proxy: /service/1 and /service/2 on both listeners', () => {
  const tables = routeTables('front-proxy__envoy.yaml');
  assert.equal(tables.length, 2);
  for (const t of tables) {
    assert.equal(t.name, 'local_route');
    assert.equal(cluster(t, '/service/1'), 'service1-envoy');
    assert.equal(cluster(t, '/service/1/x?y=1', 'anything.example'), 'service1-envoy');
    assert.equal(cluster(t, '/service/2'), 'service2-envoy');
    assert.equal(cluster(t, '/service/10'), 'service1-envoy', 'a plain prefix, not a path segment');
    assert.equal(cluster(t, '/service/3'), undefined, 'no route → 404 NR');
    assert.equal(cluster(t, '/'), undefined);
  }
});

test('envoy-demo: listener_0 sends everything to loopback; listener_1 has no virtual hosts', () => {
  const [proxy, local] = routeTables('configs__envoy-demo.yaml');
  assert.ok(proxy && local);
  assert.equal(cluster(proxy, '/'), 'loopback');
  assert.equal(cluster(proxy, '/any/path?q', 'www.example.com'), 'loopback');
  const a = proxy.match(HeaderMap.fromPairs([[':authority', 'x'], [':path', '/']]), info)?.action as ClusterRouteAction;
  assert.equal(a.timeoutMs, 15000);
  assert.equal(local.match(HeaderMap.fromPairs([[':authority', 'x'], [':path', '/']]), info), undefined);
});

test('grpc-bridge: the route only matches gRPC requests', () => {
  const [t] = routeTables('grpc-bridge__server__envoy-proxy.yaml');
  assert.ok(t);
  assert.equal(cluster(t, '/helloworld.Greeter/SayHello', 'h', [['content-type', 'application/grpc']]), 'backend_grpc_service');
  assert.equal(cluster(t, '/helloworld.Greeter/SayHello'), undefined);
});

test('every corpus bootstrap with inline routes compiles', () => {
  let n = 0;
  for (const f of readdirSync(CORPUS)) {
    if (!f.endsWith('.yaml')) continue;
    const y = parse(readFileSync(join(CORPUS, f), 'utf8')) as { static_resources?: unknown };
    if (!y?.static_resources) continue;
    n += routeTables(f).length;
  }
  assert.ok(n >= 5, `compiled ${n} route tables`);
});
