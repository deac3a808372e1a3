// The whole process serving HTTP: HTTP/1.1 and h2c downstreams, HTTP/1.1 and HTTP/2 upstreams,
// workers sharing a port, load balancing, listener stats per worker, and the admin views.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { request, Agent } from 'undici';
import { startLegate } from '../helpers/legate.ts';
import { startHttp1Upstream, startHttp2Upstream } from '../helpers/upstreams.ts';
import { httpBootstrap } from '../helpers/config.ts';

function h2get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', reject);
    const req = s.request({ ':path': path, ...headers });
    let body = '';
    let h: http2.IncomingHttpHeaders = {};
    req.on('response', (r) => (h = r));
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      s.close();
      resolve({ status: Number(h[':status']), headers: h, body });
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP/1.1 and h2c downstreams reach HTTP/1.1 and HTTP/2 upstreams; stats move', async () => {
  const up1 = await startHttp1Upstream();
  const up2 = await startHttp2Upstream();
  const l = await startLegate(
    httpBootstrap({
      routes: [
        { match: { prefix: '/h2/' }, route: { cluster: 'h2', prefix_rewrite: '/' } },
        { match: { prefix: '/' }, route: { cluster: 'h1' } },
      ],
      clusters: { h1: { ports: [up1.port] }, h2: { ports: [up2.port], http2: true } },
    }),
  );
  try {
    const port = await l.listenerPort('http');
    const r1 = await request(`http://127.0.0.1:${port}/hello?x=1`, { headers: { 'x-test': 'a' } });
    assert.equal(r1.statusCode, 200);
    const b1 = (await r1.body.json()) as { path: string; headers: Record<string, string> };
    assert.equal(b1.path, '/hello?x=1');
    assert.equal(b1.headers['x-test'], 'a');
    assert.ok(b1.headers['x-request-id'], 'x-request-id is generated');
    assert.equal(b1.headers['x-forwarded-proto'], 'http');
    assert.ok(r1.headers['x-envoy-upstream-service-time'] !== undefined);
    const r2 = await h2get(port, '/h2/world');
    assert.equal(r2.status, 200);
    assert.equal(JSON.parse(r2.body).path, '/world');
    assert.equal(r2.headers['x-upstream'], 'h2');
    const r3 = await h2get(port, '/via-h2-to-h1');
    assert.equal(r3.headers['x-upstream'], 'h1');
    const s = await l.stats();
    assert.equal(s['http.ingress_http.downstream_rq_total'], 3);
    assert.equal(s['http.ingress_http.downstream_rq_2xx'], 3);
    assert.equal(s['http.ingress_http.downstream_rq_http1_total'], 1);
    assert.equal(s['http.ingress_http.downstream_rq_http2_total'], 2);
    assert.equal(s['cluster.h1.upstream_rq_total'], 2);
    assert.equal(s['cluster.h1.upstream_rq_200'], 2);
    assert.equal(s['cluster.h2.upstream_rq_2xx'], 1);
    assert.equal(s['cluster.h1.upstream_cx_total'], 1, 'keep-alive: one upstream connection');
    assert.equal(s[`listener.127.0.0.1_${port}.downstream_cx_total`], 3);
    // Prometheus, as Envoy writes it.
    const prom = await (await fetch(`${l.admin}/stats/prometheus`)).text();
    assert.match(prom, /envoy_cluster_upstream_rq_total\{envoy_cluster_name="h1"\} 2/);
    assert.match(prom, /# TYPE envoy_cluster_upstream_rq_total counter/);
  } finally {
    await l.stop();
    await up1.close();
    await up2.close();
  }
});

test('404 for no route, 503 for no healthy upstream, direct responses', async () => {
  const l = await startLegate(
    httpBootstrap({
      routes: [
        { match: { path: '/direct' }, direct_response: { status: 201, body: { inline_string: 'made here' } } },
        { match: { prefix: '/dead' }, route: { cluster: 'dead' } },
      ],
      clusters: { dead: { ports: [] } },
    }),
  );
  try {
    const port = await l.listenerPort('http');
    const d = await request(`http://127.0.0.1:${port}/direct`);
    assert.equal(d.statusCode, 201);
    assert.equal(await d.body.text(), 'made here');
    const nr = await request(`http://127.0.0.1:${port}/nothing`);
    assert.equal(nr.statusCode, 404);
    await nr.body.dump();
    const uh = await request(`http://127.0.0.1:${port}/dead`);
    assert.equal(uh.statusCode, 503);
    assert.equal(await uh.body.text(), 'no healthy upstream');
    const h2nr = await h2get(port, '/nothing');
    assert.equal(h2nr.status, 404);
    const s = await l.stats();
    assert.equal(s['http.ingress_http.no_route'], 2);
    assert.equal(s['http.ingress_http.downstream_rq_4xx'], 2);
    assert.equal(s['http.ingress_http.downstream_rq_5xx'], 1);
    assert.equal(s['http.ingress_http.rq_direct_response'], 1);
  } finally {
    await l.stop();
  }
});

test('--concurrency 2: both workers accept on one port; stats are summed', async () => {
  const up = await startHttp1Upstream();
  const l = await startLegate(httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }], clusters: { b: { ports: [up.port] } } }), { concurrency: 2 });
  try {
    const port = await l.listenerPort('http');
    for (let i = 0; i < 40; i++) {
      // A new connection each time, so the kernel spreads them over the two workers.
      const agent = new Agent({ pipelining: 0 });
      const r = await request(`http://127.0.0.1:${port}/${i}`, { dispatcher: agent });
      await r.body.dump();
      await agent.close();
    }
    const s = await l.stats();
    const p = `listener.127.0.0.1_${port}`;
    assert.equal(s[`${p}.downstream_cx_total`], 40);
    const w0 = s[`${p}.worker_0.downstream_cx_total`] ?? 0;
    const w1 = s[`${p}.worker_1.downstream_cx_total`] ?? 0;
    assert.equal(w0 + w1, 40);
    assert.ok(w0 > 0 && w1 > 0, `both workers took connections (${w0}/${w1})`);
    assert.equal(s['cluster.b.upstream_rq_total'], 40);
  } finally {
    await l.stop();
    await up.close();
  }
});

test('round robin spreads over endpoints; ring hash keeps a header on one endpoint', async () => {
  const ups = await Promise.all([startHttp1Upstream(), startHttp1Upstream(), startHttp1Upstream()]);
  const ports = ups.map((u) => u.port);
  const l = await startLegate(
    httpBootstrap({
      routes: [
        { match: { prefix: '/rr' }, route: { cluster: 'rr' } },
        { match: { prefix: '/hash' }, route: { cluster: 'hash', hash_policy: [{ header: { header_name: 'x-user' } }] } },
      ],
      clusters: { rr: { ports }, hash: { ports, lbPolicy: 'RING_HASH' } },
    }),
  );
  try {
    const port = await l.listenerPort('http');
    for (let i = 0; i < 9; i++) await (await request(`http://127.0.0.1:${port}/rr`)).body.dump();
    assert.deepEqual(
      ups.map((u) => u.seen.length),
      [3, 3, 3],
    );
    for (const u of ups) u.seen.length = 0;
    for (let i = 0; i < 10; i++) await (await request(`http://127.0.0.1:${port}/hash`, { headers: { 'x-user': 'alice' } })).body.dump();
    const hit = ups.filter((u) => u.seen.length > 0);
    assert.equal(hit.length, 1, 'one endpoint serves every request with the same hash');
    assert.equal(hit[0]!.seen.length, 10);
  } finally {
    await l.stop();
    for (const u of ups) await u.close();
  }
});

test('admin: /listeners shows the bound port, /clusters the hosts, /server_info and /config_dump (with name_regex)', async () => {
  const up = await startHttp1Upstream();
  const l = await startLegate(httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }], clusters: { b: { ports: [up.port] }, other: { ports: [up.port] } } }));
  try {
    const port = await l.listenerPort('http');
    assert.ok(port > 0);
    const text = await (await fetch(`${l.admin}/listeners`)).text();
    assert.match(text, new RegExp(`http::127\\.0\\.0\\.1:${port}`));
    const clusters = await (await fetch(`${l.admin}/clusters`)).text();
    assert.match(clusters, new RegExp(`b::127\\.0\\.0\\.1:${up.port}::health_flags::healthy`));
    const cj = (await (await fetch(`${l.admin}/clusters?format=json`)).json()) as { cluster_statuses: Array<{ name: string; host_statuses: unknown[] }> };
    assert.equal(cj.cluster_statuses.find((c) => c.name === 'b')?.host_statuses.length, 1);
    const info = (await (await fetch(`${l.admin}/server_info`)).json()) as { state: string };
    assert.equal(info.state, 'LIVE');
    const dump = (await (await fetch(`${l.admin}/config_dump`)).json()) as { configs: Array<Record<string, unknown>> };
    assert.ok(dump.configs.some((c) => String(c['@type']).endsWith('BootstrapConfigDump')));
    // ?name_regex= is RE2 matching whole names, with ?resource= or across the whole dump.
    type Items = { configs: Array<{ cluster?: { name: string } }> };
    const names = async (q: string): Promise<string[]> => ((await (await fetch(`${l.admin}/config_dump?${q}`)).json()) as Items).configs.map((c) => c.cluster?.name ?? '?');
    assert.deepEqual((await names('resource=static_clusters')).sort(), ['b', 'other']);
    assert.deepEqual(await names('resource=static_clusters&name_regex=ot.*'), ['other']);
    assert.deepEqual(await names('resource=static_clusters&name_regex=o'), [], 'a whole-name match');
    const all = (await (await fetch(`${l.admin}/config_dump?name_regex=b`)).json()) as { configs: Array<Record<string, unknown>> };
    const clustersDump = all.configs.find((c) => String(c['@type']).endsWith('ClustersConfigDump')) as { static_clusters: Array<{ cluster: { name: string } }> };
    assert.deepEqual(clustersDump.static_clusters.map((c) => c.cluster.name), ['b']);
    const listenersDump = all.configs.find((c) => String(c['@type']).endsWith('ListenersConfigDump')) as { static_listeners?: unknown[] };
    assert.equal(listenersDump.static_listeners?.length ?? 0, 0, 'listener "http" does not match');
    const fail = await fetch(`${l.admin}/healthcheck/fail`, { method: 'POST' });
    assert.equal(fail.status, 200);
  } finally {
    await l.stop();
    await up.close();
  }
});

test('a #fragment in the path: 400 by default; stripped when the bootstrap\'s runtime turns http_reject_path_with_fragment off, as Istio\'s does', async () => {
  const up = await startHttp1Upstream();
  const base = httpBootstrap({ routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }], clusters: { up: { ports: [up.port] } } });
  const strict = await startLegate(base);
  const istio = await startLegate({
    ...base,
    layered_runtime: { layers: [{ name: 'global config', static_layer: { 'envoy.reloadable_features.http_reject_path_with_fragment': false } }] },
  });
  try {
    const get = async (port: number): Promise<number> => (await h2get(port, '/page?x=1#top')).status;
    assert.equal(await get(await strict.listenerPort('http')), 400);
    assert.equal(await get(await istio.listenerPort('http')), 200);
    assert.equal(up.seen.at(-1)?.path, '/page?x=1', 'the fragment was stripped before forwarding');
    assert.equal(up.seen.length, 1);
  } finally {
    await strict.stop();
    await istio.stop();
    await up.close();
  }
});
