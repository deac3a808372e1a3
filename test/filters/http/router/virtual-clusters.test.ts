// Virtual clusters behind the real connection manager and router: each request counts under the
// first virtual cluster whose headers match (else `other`), with Envoy's vhost.<vh>.vcluster.<vc>.*
// stats: totals, response codes, retries, timeouts, times; a virtual host without them has none.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startProxy } from './proxy-harness.ts';
import { filtersHcm, oneHostCluster } from '../../../helpers/filter-hcm.ts';

test('vhost.<vh>.vcluster.<vc>.*: the first matching virtual cluster, else other', { timeout: 20_000 }, async () => {
  const up = http.createServer((req, res) => {
    if (req.url?.startsWith('/api/fail')) res.writeHead(503);
    if (req.url?.startsWith('/api/slow')) return void setTimeout(() => res.end('late'), 1000);
    res.end('ok');
  });
  up.listen(0, '127.0.0.1');
  await once(up, 'listening');
  const hcm = filtersHcm(
    [],
    [
      {
        name: 'shop',
        domains: ['shop.example'],
        virtual_clusters: [
          { name: 'api', headers: [{ name: ':path', string_match: { prefix: '/api/' } }] },
          { name: 'writes', headers: [{ name: ':method', string_match: { exact: 'POST' } }] },
        ],
        routes: [
          { match: { prefix: '/api/slow' }, route: { cluster: 'up', timeout: '0.2s' } },
          { match: { prefix: '/' }, route: { cluster: 'up', retry_policy: { retry_on: '5xx', num_retries: 1 } } },
        ],
      },
      { name: 'plain', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] },
    ],
    { stat_prefix: 'vc' },
  );
  const proxy = await startProxy(hcm, [oneHostCluster('up', (up.address() as AddressInfo).port)]);
  try {
    const send = async (method: string, path: string, host = 'shop.example'): Promise<number> => {
      const r = await request(`http://127.0.0.1:${proxy.port}${path}`, { method, headers: { host } });
      await r.body.dump();
      return r.statusCode;
    };
    assert.equal(await send('GET', '/api/items'), 200);
    assert.equal(await send('POST', '/api/items'), 200, 'the first match wins: api, not writes');
    assert.equal(await send('POST', '/cart'), 200);
    assert.equal(await send('GET', '/'), 200);
    assert.equal(await send('GET', '/api/fail'), 503);
    assert.equal(await send('GET', '/api/slow'), 504);
    assert.equal(await send('GET', '/', 'other.example'), 200);
    const c = (name: string): number => proxy.counter(`vhost.shop.vcluster.${name}`);
    assert.equal(c('api.upstream_rq_total'), 4);
    assert.equal(c('api.upstream_rq_200'), 2);
    assert.equal(c('api.upstream_rq_2xx'), 2);
    assert.equal(c('api.upstream_rq_503'), 1);
    assert.equal(c('api.upstream_rq_retry'), 1, 'the 503 was retried once');
    assert.equal(c('api.upstream_rq_timeout'), 1);
    assert.equal(c('api.upstream_rq_504'), 1);
    assert.equal(c('writes.upstream_rq_total'), 1);
    assert.equal(c('other.upstream_rq_total'), 1);
    assert.equal(c('other.upstream_rq_200'), 1);
    const names = Object.keys(proxy.stats.snapshot().counters);
    assert.ok(!names.some((n) => n.startsWith('vhost.plain.')), 'no virtual clusters, no vhost stats');
    assert.ok(proxy.stats.snapshot().histograms['vhost.shop.vcluster.api.upstream_rq_time'] !== undefined);
  } finally {
    await proxy.close();
    up.closeAllConnections();
    up.close();
  }
});
