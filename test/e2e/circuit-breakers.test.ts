// Circuit breakers end to end: the real legate process with two workers. The limits are process-wide
// (SharedCounters), so max_requests 5 admits exactly 5 requests across both workers; the rest get
// Envoy's 503 UO overflow reply. Stats come merged from /stats, thresholds from /clusters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLegate } from '../helpers/legate.ts';
import { httpBootstrap } from '../helpers/config.ts';
import { parallel, startHoldingUpstream, until } from '../proxy/upstream/circuit-breakers-upstreams.ts';

const TIMEOUT = { timeout: 40_000 };
const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

for (const down of ['h1', 'h2'] as const) {
  test(`--concurrency 2, max_requests 5, 20 concurrent ${down} requests: exactly 5 admitted process-wide, 15 × 503 UO`, TIMEOUT, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'legate-cb-e2e-'));
    const log = join(dir, 'access.log');
    const upstream = await startHoldingUpstream('http1');
    const config = httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }],
      clusters: {
        up: {
          ports: [upstream.port],
          extra: { circuit_breakers: { thresholds: [{ max_requests: 5, track_remaining: true }, { priority: 'HIGH', max_connections: 7, max_pending_requests: 8, max_requests: 9, max_retries: 10 }] } },
        },
      },
      hcmExtra: {
        access_log: [
          {
            name: 'envoy.access_loggers.file',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
              path: log,
              log_format: { text_format_source: { inline_string: '%RESPONSE_CODE% %RESPONSE_FLAGS%\n' } },
            },
          },
        ],
      },
    });
    const legate = await startLegate(config, { concurrency: 2 });
    try {
      const port = await legate.listenerPort('http');
      const run = parallel(down, port, 20, '/', {}, 10);
      await until(() => upstream.held() === 5 && run.replies.length === 15, 10_000, '5 held, 15 answered');
      // Hold a little longer: a per-worker limit would let more through.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(upstream.held(), 5);
      for (const r of run.replies) {
        assert.equal(r.status, 503);
        assert.equal(r.headers['x-envoy-overloaded'], 'true');
        assert.equal(r.body, OVERFLOW_BODY);
      }
      let stats = await legate.stats();
      assert.equal(stats['cluster.up.upstream_rq_pending_overflow'], 15);
      assert.equal(stats['cluster.up.circuit_breakers.default.rq_open'], 1);
      assert.equal(stats['cluster.up.circuit_breakers.default.remaining_rq'], 0);
      assert.equal(stats['cluster.up.upstream_rq_active'], 5);

      upstream.release();
      const all = await run.done;
      assert.equal(all.filter((r) => r.status === 200).length, 5);
      assert.equal(all.filter((r) => r.status === 503).length, 15);
      stats = await legate.stats();
      assert.equal(stats['cluster.up.circuit_breakers.default.rq_open'], 0);
      assert.equal(stats['cluster.up.circuit_breakers.default.remaining_rq'], 5, "'max' merge: one process-wide value, not one per worker");
      assert.equal(stats['cluster.up.upstream_rq_pending_overflow'], 15);
      await until(() => readFileSync(log, { flag: 'a+' }).toString().trim().split('\n').length === 20, 5000, 'access log');
      const lines = readFileSync(log).toString().trim().split('\n');
      assert.equal(lines.filter((l) => l === '503 UO').length, 15);
      assert.equal(lines.filter((l) => l === '200 -').length, 5);

      // /clusters shows the configured thresholds (defaults filled).
      const text = await (await fetch(`${legate.admin}/clusters`)).text();
      assert.match(text, /^up::default_priority::max_connections::1024$/m);
      assert.match(text, /^up::default_priority::max_requests::5$/m);
      assert.match(text, /^up::default_priority::max_retries::3$/m);
      assert.match(text, /^up::high_priority::max_connections::7$/m);
      assert.match(text, /^up::high_priority::max_pending_requests::8$/m);
      assert.match(text, /^up::high_priority::max_requests::9$/m);
      assert.match(text, /^up::high_priority::max_retries::10$/m);
    } finally {
      upstream.release();
      await legate.stop();
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
