// The fault filter in a real connection manager over HTTP/1.1 and HTTP/2: aborts and delays at
// 100% and at fractions (every denominator), delay then abort, stats and the active-fault gauge.

import test from 'node:test';
import assert from 'node:assert/strict';
import { Client, hcmYaml, startFaultProxy, statusCounts, type Downstream } from './harness.ts';

const P = 'http.ingress_http.fault.';

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: abort at 100% answers the status with Envoy's body, never reaching the upstream`, async () => {
    const p = await startFaultProxy(hcmYaml('abort: { http_status: 503, percentage: { numerator: 100 } }'));
    const c = new Client(kind, p.port);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await c.request({ path: '/x' });
        assert.equal(r.status, 503);
        assert.equal(r.body.toString(), 'fault filter abort');
      }
      assert.equal(p.upstreamRequests, 0);
      assert.equal(p.counter(`${P}aborts_injected`), 3);
      assert.equal(p.counter(`${P}delays_injected`), 0);
      assert.equal(p.gauge(`${P}active_faults`), 0);
      assert.equal(p.counter('http.ingress_http.downstream_rq_5xx'), 3);
    } finally {
      c.close();
      await p.close();
    }
  });

  test(`${kind}: fixed delay at 100% holds the request, then it reaches the upstream`, async () => {
    const p = await startFaultProxy(hcmYaml('delay: { fixed_delay: 0.1s, percentage: { numerator: 100 } }'));
    const c = new Client(kind, p.port);
    try {
      const t0 = performance.now();
      const r = await c.request({ method: 'POST', path: '/x', body: Buffer.from('payload') });
      const took = performance.now() - t0;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
      assert.ok(took >= 95, `took ${took} ms, expected ≥ 100 ms`);
      assert.equal(p.upstreamRequests, 1);
      assert.equal(p.counter(`${P}delays_injected`), 1);
      assert.equal(p.counter(`${P}aborts_injected`), 0);
      assert.equal(p.gauge(`${P}active_faults`), 0);
    } finally {
      c.close();
      await p.close();
    }
  });

  test(`${kind}: delay then abort (Envoy's order), one active fault for both`, async () => {
    const p = await startFaultProxy(
      hcmYaml(`
delay: { fixed_delay: 0.08s, percentage: { numerator: 100 } }
abort: { http_status: 429, percentage: { numerator: 100 } }
max_active_faults: 1`),
    );
    const c = new Client(kind, p.port);
    try {
      const t0 = performance.now();
      const r = await c.request({ path: '/x' });
      assert.equal(r.status, 429);
      assert.ok(performance.now() - t0 >= 75);
      assert.equal(p.counter(`${P}delays_injected`), 1);
      assert.equal(p.counter(`${P}aborts_injected`), 1);
      assert.equal(p.counter(`${P}faults_overflow`), 0);
      assert.equal(p.upstreamRequests, 0);
    } finally {
      c.close();
      await p.close();
    }
  });
}

// Statistical checks: N requests with an expected fraction f abort; the count is Binomial(N, f).
// Tolerance: ±5 standard deviations (sqrt(N·f·(1−f))), so a correct filter fails < 1 in a million runs.
const N = 400;
function assertFraction(observed: number, f: number, what: string): void {
  const sd = Math.sqrt(N * f * (1 - f));
  const tol = Math.ceil(5 * sd);
  assert.ok(Math.abs(observed - N * f) <= tol, `${what}: ${observed} of ${N}, expected ${N * f} ± ${tol}`);
}

const fractions: Array<{ kind: Downstream; yaml: string; f: number }> = [
  { kind: 'h1', yaml: '{ numerator: 50, denominator: HUNDRED }', f: 0.5 },
  { kind: 'h2', yaml: '{ numerator: 2500, denominator: TEN_THOUSAND }', f: 0.25 },
  { kind: 'h1', yaml: '{ numerator: 750000, denominator: MILLION }', f: 0.75 },
];
for (const { kind, yaml, f } of fractions) {
  test(`${kind}: abort at ${yaml} aborts ${f * 100}% of ${N} requests (±5σ)`, async () => {
    const p = await startFaultProxy(hcmYaml(`abort: { http_status: 503, percentage: ${yaml} }`));
    const c = new Client(kind, p.port);
    try {
      const counts = await statusCounts(() => c.request({ path: '/f' }), N);
      const aborted = counts.get(503) ?? 0;
      assert.equal(aborted + (counts.get(200) ?? 0), N);
      assertFraction(aborted, f, 'aborts');
      assert.equal(p.counter(`${P}aborts_injected`), aborted);
      assert.equal(p.upstreamRequests, N - aborted);
    } finally {
      c.close();
      await p.close();
    }
  });
}

for (const kind of ['h1', 'h2'] as Downstream[]) {
  test(`${kind}: delay at 50% delays half of ${N} requests (±5σ), each by the configured time`, async () => {
    const p = await startFaultProxy(hcmYaml('delay: { fixed_delay: 0.02s, percentage: { numerator: 50 } }'));
    // 16 lanes, each its own connection (h1) or stream (one h2 session): ~200 × 20 ms / 16 of delay.
    const clients = kind === 'h1' ? Array.from({ length: 16 }, () => new Client(kind, p.port)) : [new Client(kind, p.port)];
    try {
      let slow = 0;
      const counts = await statusCounts(async (lane) => {
        const t0 = performance.now();
        const r = await clients[lane % clients.length]!.request({ path: '/d' });
        if (performance.now() - t0 >= 19) slow++;
        return r;
      }, N, 16);
      assert.equal(counts.get(200), N);
      const delayed = p.counter(`${P}delays_injected`);
      assertFraction(delayed, 0.5, 'delays');
      // Every delayed request took at least the delay (others may too, under load).
      assert.ok(slow >= delayed, `${slow} slow responses < ${delayed} delays`);
      assert.equal(p.upstreamRequests, N);
      assert.equal(p.gauge(`${P}active_faults`), 0);
    } finally {
      for (const c of clients) c.close();
      await p.close();
    }
  });
}

test('the downstream going away during a delay frees the active fault and never reaches the upstream', async () => {
  const p = await startFaultProxy(hcmYaml('delay: { fixed_delay: 0.2s, percentage: { numerator: 100 } }'));
  const c = new Client('h2', p.port);
  try {
    const a = c.startAndAbortable({ path: '/gone' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(p.gauge(`${P}active_faults`), 1);
    assert.equal(p.shared.cell(`${P}active_faults`).load(), 1);
    a.abort();
    await a.response;
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(p.gauge(`${P}active_faults`), 0);
    assert.equal(p.shared.cell(`${P}active_faults`).load(), 0);
    assert.equal(p.upstreamRequests, 0);
  } finally {
    c.close();
    await p.close();
  }
});
