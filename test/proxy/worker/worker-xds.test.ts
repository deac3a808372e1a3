// A real worker thread (worker-main.ts through WorkerPool) applying 'xds' messages: it replies with
// its listeners' bound ports once an update is applied, serves the new config, and reports what it
// could not apply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Bootstrap__Output } from '../../../src/generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { SharedCounters } from '../../../src/proxy/shared-counters.ts';
import { WorkerPool } from '../../../src/proxy/worker/worker-pool.ts';
import { cluster } from '../../helpers/config.ts';
import { listener, namedUpstream, rdsHcm, routeConfig, toCluster, toUpdate } from './harness.ts';

test('a worker applies xDS updates and replies with its listeners', { timeout: 30_000 }, async () => {
  const a = await namedUpstream('a');
  const d = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', { static_resources: { clusters: [cluster('a', { ports: [a.port] })] } });
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const pool = new WorkerPool();
  try {
    const ready = await pool.start(1, { bootstrap: d.value, logLevel: 'error', componentLogLevels: [], shared: SharedCounters.create(1024).buffer, runtimeAdmin: {}, ports: {}, secrets: {}, drainTimeS: 1 }, () => {});
    assert.deepEqual(ready, {});
    const [r1] = await pool.ask({ type: 'xds', update: toUpdate({ routes: [routeConfig('r', [toCluster('a')])], listeners: [listener('http', [rdsHcm('r')])] }) });
    const port = r1?.listeners?.['http'];
    assert.ok(port !== undefined && port > 0);
    assert.equal(r1?.errors, undefined);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), 'a');

    const [r2] = await pool.ask({ type: 'xds', update: toUpdate({ removeClusters: ['a'], endpoints: [{ clusterName: 'nope', assignment: { cluster_name: 'nope' } }] }) });
    assert.deepEqual(r2?.listeners, { http: port });
    assert.match(String(r2?.errors?.[0]), /unknown cluster 'nope'/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 503);

    const [r3] = await pool.ask({ type: 'xds', update: toUpdate({ removeListeners: ['http'] }) });
    assert.deepEqual(r3?.listeners, {});
  } finally {
    await pool.shutdown();
    await a.close();
  }
});

test("a worker's static listener with `rds` serves the RouteConfiguration an update brings", { timeout: 30_000 }, async () => {
  const a = await namedUpstream('a');
  const d = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', { static_resources: { clusters: [cluster('a', { ports: [a.port] })], listeners: [listener('static', [rdsHcm('r')])] } });
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const pool = new WorkerPool();
  try {
    const ready = await pool.start(1, { bootstrap: d.value, logLevel: 'error', componentLogLevels: [], shared: SharedCounters.create(1024).buffer, runtimeAdmin: {}, ports: {}, secrets: {} }, () => {});
    const port = ready['static']!;
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    const [r] = await pool.ask({ type: 'xds', update: toUpdate({ routes: [routeConfig('r', [toCluster('a')])] }) });
    assert.deepEqual(r?.listeners, { static: port });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'a');
  } finally {
    await pool.shutdown();
    await a.close();
  }
});
