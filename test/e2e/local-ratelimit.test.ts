// Local rate limiting through the real legate process: the HTTP filter's bucket is one per process
// (two workers together let exactly max_tokens requests through), and the corpus's
// local_ratelimit__envoy.yaml serves as Envoy's sandbox describes (2 requests per 5 s, then 429).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { startLegate, type Legate } from '../helpers/legate.ts';
import { CORPUS_DIR } from '../helpers/corpus.ts';
import { httpBootstrap } from '../helpers/config.ts';
import { startHttp1Upstream } from '../helpers/upstreams.ts';
import { freePort } from '../helpers/free-port.ts';

const TIMEOUT = { timeout: 30_000 };
const LRL = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/** One request on its own connection (so the kernel may hand it to either worker). */
function get(port: number, path = '/'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** Stats are merged from the workers periodically: wait until `name` reaches `want`. */
async function statEventually(l: Legate, name: string, want: number): Promise<Record<string, number>> {
  let s = await l.stats();
  for (let i = 0; i < 30 && s[name] !== want; i++) {
    await sleep(100);
    s = await l.stats();
  }
  return s;
}


test('--concurrency 2: the token bucket is process-wide: exactly max_tokens of 40 requests pass', TIMEOUT, async () => {
  const up = await startHttp1Upstream();
  const config = httpBootstrap({
    routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }],
    clusters: { up: { ports: [up.port] } },
    hcmExtra: {
      http_filters: [
        {
          name: 'envoy.filters.http.local_ratelimit',
          typed_config: {
            '@type': LRL,
            stat_prefix: 'http_local_rate_limiter',
            token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: '60s' },
            filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
            filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
          },
        },
        { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
      ],
    },
  });
  const l = await startLegate(config, { concurrency: 2 });
  try {
    const port = await l.listenerPort('http');
    const rs = await Promise.all(Array.from({ length: 40 }, () => get(port)));
    assert.equal(rs.filter((r) => r.status === 200).length, 5);
    assert.equal(rs.filter((r) => r.status === 429).length, 35);
    assert.ok(rs.filter((r) => r.status === 429).every((r) => r.body === 'local_rate_limited'));
    const s = await statEventually(l, 'http_local_rate_limiter.http_local_rate_limit.rate_limited', 35);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.ok'], 5);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.rate_limited'], 35);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.enforced'], 35);
    assert.equal(up.seen.length, 5);
    // Both workers took connections (40 connections all on one worker: odds 2^-39), yet 5 passed in all.
    const perWorker = Object.entries(s).filter(([k]) => /^listener\.127\.0\.0\.1_\d+\.worker_\d\.downstream_cx_total$/.test(k));
    assert.equal(perWorker.length, 2, JSON.stringify(perWorker));
    assert.ok(perWorker.every(([, v]) => v > 0), JSON.stringify(perWorker));
  } finally {
    await l.stop();
    await up.close();
  }
});

test('corpus local_ratelimit__envoy.yaml: 2 requests per 5 s on each listener, then 429 with x-local-rate-limit', TIMEOUT, async () => {
  const up = await startHttp1Upstream();
  const c = parse(readFileSync(`${CORPUS_DIR}/local_ratelimit__envoy.yaml`, 'utf8')) as {
    static_resources: { listeners: Array<{ address: { socket_address: Record<string, unknown> } }>; clusters: Array<{ name: string; load_assignment: { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: Record<string, unknown> } } }> }> } }> };
    admin: { address: { socket_address: Record<string, unknown> } };
  };
  const [adminPort, statsPort, servicePort] = [await freePort(), await freePort(), await freePort()];
  const [statsListener, serviceListener] = c.static_resources.listeners;
  Object.assign(statsListener!.address.socket_address, { address: '127.0.0.1', port_value: statsPort });
  Object.assign(serviceListener!.address.socket_address, { address: '127.0.0.1', port_value: servicePort });
  Object.assign(c.admin.address.socket_address, { address: '127.0.0.1', port_value: adminPort });
  const endpoint = (name: string) => c.static_resources.clusters.find((x) => x.name === name)!.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address;
  Object.assign(endpoint('envoy-stat'), { address: '127.0.0.1', port_value: adminPort });
  Object.assign(endpoint('service'), { address: '127.0.0.1', port_value: up.port });
  const l = await startLegate(c);
  try {
    const service = [await get(servicePort), await get(servicePort), await get(servicePort)];
    assert.deepEqual(service.map((r) => r.status), [200, 200, 429]);
    assert.equal(service[2]!.body, 'local_rate_limited');
    assert.equal(service[2]!.headers['x-local-rate-limit'], 'true');
    assert.equal(service[0]!.headers['x-local-rate-limit'], undefined);
    const stats = [await get(statsPort, '/stats/prometheus'), await get(statsPort, '/stats/prometheus'), await get(statsPort, '/stats/prometheus')];
    assert.deepEqual(stats.map((r) => r.status), [200, 200, 429]);
    assert.match(stats[0]!.body, /envoy_http_local_rate_limiter_http_local_rate_limit_ok|# TYPE/);
    assert.equal(stats[2]!.headers['x-local-rate-limit'], 'true');
    const s = await statEventually(l, 'http_local_rate_limiter.http_local_rate_limit.rate_limited', 2);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.enabled'], 6);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.ok'], 4);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.rate_limited'], 2);
    assert.equal(s['http_local_rate_limiter.http_local_rate_limit.enforced'], 2);
  } finally {
    await l.stop();
    await up.close();
  }
});
