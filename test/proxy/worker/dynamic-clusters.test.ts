// CDS/EDS on a worker: EDS endpoints shift traffic between two real upstreams; a cluster replaced
// while a slow request is in flight lets it finish on the old pools while new requests use the new
// cluster; a removed cluster answers 503 (NC, as an unknown cluster) while in-flight requests finish.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { assignment, edsCluster, listener, namedUpstream, rdsHcm, routeConfig, startWorker, staticCluster, toCluster, until } from './harness.ts';

async function body(port: number, path = '/'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

test('EDS: endpoints added and removed shift traffic between two upstreams', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  try {
    const r = await w.apply({
      routes: [routeConfig('r', [toCluster('svc')])],
      clusters: [{ cluster: edsCluster('svc'), endpoints: assignment('svc', [a.port]) }],
      listeners: [listener('http', [rdsHcm('r')])],
    });
    const port = r.listeners['http']!;
    for (let i = 0; i < 4; i++) assert.deepEqual(await body(port), { status: 200, body: 'a' });
    assert.equal(w.gauge('cluster.svc.membership_total'), 1);

    await w.apply({ endpoints: [{ clusterName: 'svc', assignment: assignment('svc', [a.port, b.port]) }] });
    assert.equal(w.gauge('cluster.svc.membership_total'), 2);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await body(port)).body);
    assert.deepEqual([...seen].sort(), ['a', 'b']);

    await w.apply({ endpoints: [{ clusterName: 'svc', assignment: assignment('svc', [b.port]) }] });
    const before = a.hits;
    for (let i = 0; i < 4; i++) assert.deepEqual(await body(port), { status: 200, body: 'b' });
    assert.equal(a.hits, before);

    // No endpoints: no healthy upstream.
    await w.apply({ endpoints: [{ clusterName: 'svc', assignment: assignment('svc', []) }] });
    assert.deepEqual(await body(port), { status: 503, body: 'no healthy upstream' });

    assert.equal(w.counter('cluster.svc.update_attempt'), 4);
    assert.equal(w.counter('cluster.svc.update_success'), 4);
    assert.equal(w.counter('cluster.svc.membership_change'), 4);
  } finally {
    await w.close();
    await a.close();
    await b.close();
  }
});

test('EDS: a bad assignment and endpoints for an unknown cluster are reported', { timeout: 20_000 }, async () => {
  const w = startWorker();
  try {
    await w.apply({ clusters: [{ cluster: edsCluster('svc') }] });
    const r = await w.applyRaw({
      endpoints: [
        { clusterName: 'svc', assignment: { cluster_name: 'svc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'not-an-ip', port_value: 80 } } } }] }] } },
        { clusterName: 'nope', assignment: assignment('nope', []) },
      ],
    });
    assert.equal(r.errors.length, 2);
    assert.match(r.errors[0]!, /malformed IP address: not-an-ip/);
    assert.match(r.errors[1]!, /unknown cluster 'nope'/);
  } finally {
    await w.close();
  }
});

test('CDS: a cluster replaced while a slow request is in flight — it completes; new requests use the new cluster', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  try {
    const r = await w.apply({ routes: [routeConfig('r', [toCluster('c')])], clusters: [{ cluster: staticCluster('c', [a.port]) }], listeners: [listener('http', [rdsHcm('r')])] });
    const port = r.listeners['http']!;
    const slow = body(port, '/slow');
    await until(() => a.waiting === 1);

    await w.apply({ clusters: [{ cluster: staticCluster('c', [b.port]) }] });
    assert.equal(w.cm.retiring, 1);
    assert.deepEqual(await body(port), { status: 200, body: 'b' });

    a.release();
    assert.deepEqual(await slow, { status: 200, body: 'a' });
    // The old cluster's pools close once idle.
    await until(() => w.cm.retiring === 0);
    assert.equal(w.gauge('cluster_manager.active_clusters'), 1);
  } finally {
    await w.close();
    await a.close();
    await b.close();
  }
});

test('CDS: a removed cluster answers 503 (NC) to new requests; the one in flight finishes', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  try {
    const r = await w.apply({ routes: [routeConfig('r', [toCluster('c')])], clusters: [{ cluster: staticCluster('c', [a.port]) }], listeners: [listener('http', [rdsHcm('r')])] });
    const port = r.listeners['http']!;
    const client = new Client(`http://127.0.0.1:${port}`);
    try {
      const slow = client.request({ method: 'GET', path: '/slow' }).then(async (res) => ({ status: res.statusCode, body: await res.body.text() }));
      await until(() => a.waiting === 1);
      await w.apply({ removeClusters: ['c'] });
      assert.equal(w.cm.get('c'), undefined);
      assert.equal(w.gauge('cluster_manager.active_clusters'), 0);
      assert.deepEqual(await body(port), { status: 503, body: '' });
      assert.equal(w.counter('http.ingress_http.no_cluster'), 1);
      a.release();
      assert.deepEqual(await slow, { status: 200, body: 'a' });
      await until(() => w.cm.retiring === 0);
    } finally {
      await client.close();
    }
  } finally {
    await w.close();
    await a.close();
  }
});

test('CDS: a new STATIC cluster is usable by the next request; replacing an EDS cluster takes its new assignment', { timeout: 20_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  try {
    const r = await w.apply({ routes: [routeConfig('r', [toCluster('c')])], listeners: [listener('http', [rdsHcm('r')])] });
    const port = r.listeners['http']!;
    assert.deepEqual(await body(port), { status: 503, body: '' });
    await w.apply({ clusters: [{ cluster: edsCluster('c'), endpoints: assignment('c', [a.port]) }] });
    assert.deepEqual(await body(port), { status: 200, body: 'a' });
    await w.apply({ clusters: [{ cluster: { ...edsCluster('c'), lb_policy: 'RANDOM' }, endpoints: assignment('c', [b.port]) }] });
    assert.deepEqual(await body(port), { status: 200, body: 'b' });
    assert.equal(w.cm.get('c')?.info.lbPolicy, 'RANDOM');
  } finally {
    await w.close();
    await a.close();
    await b.close();
  }
});

test('EDS with active health checks: endpoints that arrive later are checked; traffic avoids the failing one', { timeout: 30_000 }, async () => {
  const w = startWorker();
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  b.healthy = false;
  try {
    const hc = { timeout: '1s', interval: '0.05s', unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: '/health' } };
    const r = await w.apply({
      routes: [routeConfig('r', [toCluster('svc')])],
      clusters: [{ cluster: { ...edsCluster('svc'), health_checks: [hc] }, endpoints: assignment('svc', [a.port]) }],
      listeners: [listener('http', [rdsHcm('r')])],
    });
    const port = r.listeners['http']!;
    assert.deepEqual(await body(port), { status: 200, body: 'a' });
    await w.apply({ endpoints: [{ clusterName: 'svc', assignment: assignment('svc', [a.port, b.port]) }] });
    await until(() => w.gauge('cluster.svc.membership_total') === 2 && w.counter('cluster.svc.health_check.failure') > 0);
    for (let i = 0; i < 6; i++) assert.deepEqual(await body(port), { status: 200, body: 'a' });
    assert.equal(b.hits, 0);
    // b recovers: it takes traffic again.
    b.healthy = true;
    await until(() => w.gauge('cluster.svc.membership_healthy') === 2);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await body(port)).body);
    assert.deepEqual([...seen].sort(), ['a', 'b']);
  } finally {
    await w.close();
    await a.close();
    await b.close();
  }
});
