// Which requests get faults: header-controlled faults, gRPC aborts, max_active_faults, per-route
// overrides and disabling, upstream_cluster, downstream_nodes, header matchers, runtime keys, and
// the DI/FI response flags in the access log.

import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, FAULT_TYPE, hcmYaml, startFaultProxy, type Downstream } from './harness.ts';

const P = 'http.ingress_http.fault.';

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: header-controlled abort and delay (x-envoy-fault-*), capped by the configured percentage`, async () => {
    const p = await startFaultProxy(
      hcmYaml(`
abort: { header_abort: {}, percentage: { numerator: 100 } }
delay: { header_delay: {}, percentage: { numerator: 100 } }`),
    );
    const c = new Client(kind, p.port);
    try {
      assert.equal((await c.request({ path: '/' })).status, 200, 'no header, no fault');
      const a = await c.request({ path: '/', headers: { 'x-envoy-fault-abort-request': '429' } });
      assert.equal(a.status, 429);
      assert.equal(a.body.toString(), 'fault filter abort');
      assert.equal((await c.request({ path: '/', headers: { 'x-envoy-fault-abort-request': '700' } })).status, 200, 'out of [200, 600)');
      assert.equal((await c.request({ path: '/', headers: { 'x-envoy-fault-abort-request': 'abc' } })).status, 200);
      // The percentage header is capped by the configured 100; 0 turns the fault off.
      assert.equal((await c.request({ path: '/', headers: { 'x-envoy-fault-abort-request': '429', 'x-envoy-fault-abort-request-percentage': '0' } })).status, 200);
      const t0 = performance.now();
      const d = await c.request({ path: '/', headers: { 'x-envoy-fault-delay-request': '80' } });
      assert.equal(d.status, 200);
      assert.ok(performance.now() - t0 >= 75);
      assert.equal(p.counter(`${P}aborts_injected`), 1);
      assert.equal(p.counter(`${P}delays_injected`), 1);
    } finally {
      c.close();
      await p.close();
    }
  });
}

test('header faults with a configured percentage of 0: headers alone inject nothing', async () => {
  const p = await startFaultProxy(hcmYaml('abort: { header_abort: {} }'));
  const c = new Client('h1', p.port);
  try {
    const r = await c.request({ path: '/', headers: { 'x-envoy-fault-abort-request': '503', 'x-envoy-fault-abort-request-percentage': '100' } });
    assert.equal(r.status, 200);
    assert.equal(p.counter(`${P}aborts_injected`), 0);
  } finally {
    c.close();
    await p.close();
  }
});

test('h2: gRPC requests: grpc_status abort is a trailers-only 200 with grpc-status; http_status maps to UNAVAILABLE; header grpc abort', async () => {
  const grpc = { 'content-type': 'application/grpc', te: 'trailers' };
  const p1 = await startFaultProxy(hcmYaml('abort: { grpc_status: 8, percentage: { numerator: 100 } }'));
  const c1 = new Client('h2', p1.port);
  try {
    const r = await c1.request({ method: 'POST', path: '/pkg.Svc/Method', headers: grpc });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '8');
    assert.equal(r.headers['grpc-message'], 'fault filter abort');
    assert.equal(r.headers['content-type'], 'application/grpc');
    assert.equal(p1.counter(`${P}aborts_injected`), 1);
  } finally {
    c1.close();
    await p1.close();
  }
  const p2 = await startFaultProxy(hcmYaml('abort: { http_status: 503, percentage: { numerator: 100 } }'));
  const c2 = new Client('h2', p2.port);
  try {
    const r = await c2.request({ method: 'POST', path: '/pkg.Svc/Method', headers: grpc });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '14');
  } finally {
    c2.close();
    await p2.close();
  }
  const p3 = await startFaultProxy(hcmYaml('abort: { header_abort: {}, percentage: { numerator: 100 } }'));
  const c3 = new Client('h2', p3.port);
  try {
    const r = await c3.request({ method: 'POST', path: '/pkg.Svc/Method', headers: { ...grpc, 'x-envoy-fault-abort-grpc-request': '4' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '4');
    assert.equal(p3.counter(`${P}aborts_injected`), 1);
  } finally {
    c3.close();
    await p3.close();
  }
});

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: max_active_faults caps concurrent faults; the overflow passes untouched; runtime overrides the cap`, async () => {
    const p = await startFaultProxy(hcmYaml('delay: { fixed_delay: 0.15s, percentage: { numerator: 100 } }\nmax_active_faults: 2'));
    const clients = Array.from({ length: 5 }, () => new Client(kind, p.port));
    try {
      const started = clients.map(async (c) => {
        const t0 = performance.now();
        const r = await c.request({ path: '/' });
        return { status: r.status, ms: performance.now() - t0 };
      });
      await new Promise((r) => setTimeout(r, 60));
      assert.equal(p.gauge(`${P}active_faults`), 2);
      const results = await Promise.all(started);
      assert.ok(results.every((r) => r.status === 200));
      assert.equal(results.filter((r) => r.ms >= 140).length, 2);
      assert.equal(p.counter(`${P}delays_injected`), 2);
      assert.equal(p.counter(`${P}faults_overflow`), 3);
      assert.equal(p.gauge(`${P}active_faults`), 0);

      p.runtime.setAdmin({ 'fault.http.max_active_faults': '1' });
      const again = await Promise.all(clients.slice(0, 3).map((c) => c.request({ path: '/' })));
      assert.ok(again.every((r) => r.status === 200));
      assert.equal(p.counter(`${P}delays_injected`), 3);
      assert.equal(p.counter(`${P}faults_overflow`), 5);
    } finally {
      for (const c of clients) c.close();
      await p.close();
    }
  });
}

test('per-route typed_per_filter_config: an override replaces the filter config, FilterConfig disabled turns it off', async () => {
  const routes = `
- match: { prefix: "/off" }
  route: { cluster: backend }
  typed_per_filter_config:
    envoy.filters.http.fault:
      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
      disabled: true
- match: { prefix: "/teapot" }
  route: { cluster: backend }
  typed_per_filter_config:
    envoy.filters.http.fault:
      "@type": ${FAULT_TYPE}
      abort: { http_status: 418, percentage: { numerator: 100 } }`;
  const p = await startFaultProxy(hcmYaml('abort: { http_status: 503, percentage: { numerator: 100 } }', { routesYaml: routes }));
  try {
    for (const kind of ['h1', 'h2'] as Downstream[]) {
      const c = new Client(kind, p.port);
      assert.equal((await c.request({ path: '/off' })).status, 200);
      assert.equal((await c.request({ path: '/teapot' })).status, 418);
      assert.equal((await c.request({ path: '/other' })).status, 503);
      c.close();
    }
    assert.equal(p.counter(`${P}aborts_injected`), 4);
    assert.equal(p.upstreamRequests, 2);
  } finally {
    await p.close();
  }
});

test('virtual-host level override applies to its routes', async () => {
  const vhost = `
typed_per_filter_config:
  envoy.filters.http.fault:
    "@type": ${FAULT_TYPE}
    abort: { http_status: 502, percentage: { numerator: 100 } }`;
  const p = await startFaultProxy(hcmYaml('{}', { vhostExtra: vhost }));
  const c = new Client('h1', p.port);
  try {
    assert.equal((await c.request({ path: '/' })).status, 502);
  } finally {
    c.close();
    await p.close();
  }
});

test('upstream_cluster, downstream_nodes and header matchers restrict which requests get faults', async () => {
  const routes = `
- match: { prefix: "/other" }
  route: { cluster: other }`;
  const p = await startFaultProxy(
    hcmYaml(
      `
abort: { http_status: 418, percentage: { numerator: 100 } }
upstream_cluster: other
downstream_nodes: [node-a, node-b]
headers: [{ name: x-fault, string_match: { exact: "on" } }]`,
      { routesYaml: routes },
    ),
    { moreClusters: ['other'] },
  );
  const c = new Client('h1', p.port);
  const all = { 'x-envoy-downstream-service-node': 'node-b', 'x-fault': 'on' };
  try {
    assert.equal((await c.request({ path: '/other', headers: all })).status, 418);
    assert.equal((await c.request({ path: '/backend', headers: all })).status, 200, 'another cluster');
    assert.equal((await c.request({ path: '/other', headers: { ...all, 'x-envoy-downstream-service-node': 'node-c' } })).status, 200, 'unlisted node');
    assert.equal((await c.request({ path: '/other', headers: { 'x-fault': 'on' } })).status, 200, 'no node header');
    assert.equal((await c.request({ path: '/other', headers: { ...all, 'x-fault': 'off' } })).status, 200, 'header matcher');
    assert.equal(p.counter(`${P}aborts_injected`), 1);
    assert.equal(p.upstreamRequests, 4);
  } finally {
    c.close();
    await p.close();
  }
});

test('runtime keys: percent, status and duration overrides, custom keys, downstream-cluster keys and stats', async () => {
  const p = await startFaultProxy(
    hcmYaml(`
abort: { http_status: 503, percentage: { numerator: 0 } }
delay: { fixed_delay: 5s, percentage: { numerator: 0 } }`),
  );
  const c = new Client('h2', p.port);
  try {
    assert.equal((await c.request({ path: '/' })).status, 200);
    p.runtime.setAdmin({ 'fault.http.abort.abort_percent': '100', 'fault.http.abort.http_status': '502' });
    assert.equal((await c.request({ path: '/' })).status, 502);
    p.runtime.setAdmin({ 'fault.http.abort.abort_percent': '', 'fault.http.abort.http_status': '' });
    // Downstream-cluster keys: fault.http.<cluster>.…, and http.<prefix>.fault.<cluster>.* stats.
    p.runtime.setAdmin({ 'fault.http.web.delay.fixed_delay_percent': '100', 'fault.http.web.delay.fixed_duration_ms': '60' });
    const t0 = performance.now();
    const r = await c.request({ path: '/', headers: { 'x-envoy-downstream-service-cluster': 'web' } });
    assert.equal(r.status, 200);
    const took = performance.now() - t0;
    assert.ok(took >= 55 && took < 2000, `took ${took} ms`);
    assert.equal(p.counter(`${P}web.delays_injected`), 1);
    assert.equal((await c.request({ path: '/', headers: { 'x-envoy-downstream-service-cluster': 'api' } })).status, 200);
    assert.equal(p.counter(`${P}delays_injected`), 1);
    assert.equal(p.counter(`${P}aborts_injected`), 1);
  } finally {
    c.close();
    await p.close();
  }
  const q = await startFaultProxy(hcmYaml('abort: { http_status: 503, percentage: { numerator: 0 } }\nabort_percent_runtime: my.abort\nabort_http_status_runtime: my.status'), {
    runtime: { 'my.abort': '100', 'my.status': '504', 'fault.http.abort.abort_percent': '0' },
  });
  const d = new Client('h1', q.port);
  try {
    assert.equal((await d.request({ path: '/' })).status, 504);
  } finally {
    d.close();
    await q.close();
  }
});

test('DI and FI response flags and fault_filter_abort details in the access log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-fault-'));
  const log = join(dir, 'access.log');
  const extra = `
access_log:
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: ${log}
    log_format: { text_format_source: { inline_string: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n" } }`;
  const p = await startFaultProxy(
    hcmYaml(
      `
abort: { header_abort: {}, percentage: { numerator: 100 } }
delay: { header_delay: {}, percentage: { numerator: 100 } }`,
      { extra },
    ),
  );
  const c = new Client('h1', p.port);
  try {
    await c.request({ path: '/plain' });
    await c.request({ path: '/delayed', headers: { 'x-envoy-fault-delay-request': '20' } });
    await c.request({ path: '/aborted', headers: { 'x-envoy-fault-abort-request': '503' } });
    await c.request({ path: '/both', headers: { 'x-envoy-fault-delay-request': '20', 'x-envoy-fault-abort-request': '500' } });
    const until = Date.now() + 3000;
    let text = '';
    while (Date.now() < until) {
      text = readFileSync(log, { flag: 'a+' }).toString();
      if (text.split('\n').length >= 5) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const lines = text.trim().split('\n');
    assert.deepEqual(lines, ['/plain 200 - via_upstream', '/delayed 200 DI via_upstream', '/aborted 503 FI fault_filter_abort', '/both 500 DI,FI fault_filter_abort']);
  } finally {
    c.close();
    await p.close();
  }
});
