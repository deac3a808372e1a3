// RDS on a worker: an HCM with `rds` serves 404 NR until its RouteConfiguration arrives, picks up
// a swapped table on the next request of an existing keep-alive connection, and goes back to
// 404 NR when the configuration is removed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { once } from 'node:events';
import { Client } from 'undici';
import { directResponse, listener, rdsHcm, routeConfig, startWorker, staticCluster, namedUpstream, toCluster } from './harness.ts';

test('RDS: 404 NR without a table, a swapped table applies to the next request on the same connection, removal → 404', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  try {
    const r0 = await w.apply({ clusters: [{ cluster: staticCluster('a', [a.port]) }, { cluster: staticCluster('b', [b.port]) }], listeners: [listener('http', [rdsHcm('r1')])] });
    const port = r0.listeners['http']!;
    assert.ok(port > 0);
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1 });
    const get = async (path = '/'): Promise<{ status: number; body: string }> => {
      const res = await client.request({ method: 'GET', path });
      return { status: res.statusCode, body: await res.body.text() };
    };
    try {
      // No RouteConfiguration yet: Envoy's 404 with NR.
      assert.deepEqual(await get(), { status: 404, body: '' });
      assert.equal(w.counter('http.ingress_http.no_route'), 1);

      await w.apply({ routes: [routeConfig('r1', [toCluster('a')])] });
      assert.deepEqual(await get(), { status: 200, body: 'a' });

      await w.apply({ routes: [routeConfig('r1', [toCluster('b')])] });
      assert.deepEqual(await get(), { status: 200, body: 'b' });

      await w.apply({ routes: [routeConfig('r1', [directResponse('direct')])] });
      assert.deepEqual(await get(), { status: 200, body: 'direct' });

      // All of it over one downstream connection.
      assert.equal(w.counter('listener.127.0.0.1_' + port + '.downstream_cx_total'), 1);

      await w.apply({ removeRoutes: ['r1'] });
      assert.deepEqual(await get(), { status: 404, body: '' });
      assert.equal(w.counter('http.ingress_http.no_route'), 2);
    } finally {
      await client.close();
    }
  } finally {
    await w.close();
    await a.close();
    await b.close();
  }
});

test('RDS: a listener added before its routes, and two HCMs sharing one route configuration', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  try {
    const r = await w.apply({
      clusters: [{ cluster: staticCluster('a', [a.port]) }],
      listeners: [listener('one', [rdsHcm('shared', 'one')]), listener('two', [rdsHcm('shared', 'two')])],
    });
    await w.apply({ routes: [routeConfig('shared', [toCluster('a')])] });
    for (const name of ['one', 'two']) {
      const res = await fetch(`http://127.0.0.1:${r.listeners[name]}/`);
      assert.equal(await res.text(), 'a');
    }
  } finally {
    await w.close();
    await a.close();
  }
});

test('a bad RouteConfiguration is reported and changes nothing', { timeout: 20_000 }, async () => {
  const w = startWorker();
  try {
    const r0 = await w.apply({ routes: [routeConfig('r1', [directResponse('v1')])], listeners: [listener('http', [rdsHcm('r1')])] });
    const bad = await w.applyRaw({ routes: [{ name: 'r1', vhds: { config_source: { ads: {} } } }] });
    assert.equal(bad.errors.length, 1);
    assert.match(bad.errors[0]!, /RouteConfiguration r1\.vhds: vhds is not supported/);
    const res = await fetch(`http://127.0.0.1:${r0.listeners['http']}/`);
    assert.equal(await res.text(), 'v1');
  } finally {
    await w.close();
  }
});

test('RDS over HTTP/2: a swapped table applies to the next stream of the same session', { timeout: 20_000 }, async () => {
  const w = startWorker();
  try {
    const r = await w.apply({ routes: [routeConfig('r1', [directResponse('v1')])], listeners: [listener('http', [rdsHcm('r1')])] });
    const session = http2.connect(`http://127.0.0.1:${r.listeners['http']}`);
    const get = async (): Promise<string> => {
      const s = session.request({ ':path': '/' });
      let body = '';
      s.on('data', (d: Buffer) => (body += d.toString()));
      await once(s, 'end');
      return body;
    };
    try {
      assert.equal(await get(), 'v1');
      await w.apply({ routes: [routeConfig('r1', [directResponse('v2')])] });
      assert.equal(await get(), 'v2');
      await w.apply({ removeRoutes: ['r1'] });
      const s = session.request({ ':path': '/' });
      const [headers] = (await once(s, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 404);
      s.resume();
      await once(s, 'end');
    } finally {
      session.close();
    }
  } finally {
    await w.close();
  }
});
