import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startAdmin, type AdminServer } from '../../../src/proxy/admin/server.ts';
import { FakeSource, parseProm } from './fake-source.ts';

let admin: AdminServer;
const src = new FakeSource();
const get = (path: string, init?: RequestInit): Promise<Response> => fetch(`http://127.0.0.1:${admin.port}${path}`, { ...init, signal: AbortSignal.timeout(5000) });

before(async () => {
  const [w0, w1] = src.workers as [typeof src.main, typeof src.main];
  w0.counter('cluster.backend.upstream_rq_total').inc(3);
  w1.counter('cluster.backend.upstream_rq_total').inc(4);
  w0.counter('cluster.backend.upstream_rq_200').inc(5);
  w1.counter('cluster.backend.upstream_rq_503').inc(2);
  w0.counter('http.ingress.downstream_rq_2xx').inc(6);
  w1.counter('http.ingress.downstream_rq_5xx').inc(1);
  w0.counter('http.ingress.rq_total').inc(7);
  w0.counter('listener.0.0.0.0_8080.downstream_cx_total').inc(8);
  w1.counter('tcp.egress.downstream_cx_total').inc(9);
  w0.gauge('cluster.backend.circuit_breakers.default.rq_open').set(0);
  src.main.counter('listener_manager.listener_added').inc(2);
  src.main.gauge('server.live', 'max').set(1);
  w0.gauge('server.live', 'max').set(1);
  w0.gauge('cluster.backend.upstream_cx_active').set(2);
  w1.gauge('cluster.backend.upstream_cx_active').set(3);
  w0.counter('cluster.backend.upstream_rq_retry'); // created, never written
  const h = w0.histogram('cluster.backend.upstream_rq_time');
  for (const v of [3, 7, 20, 40]) h.record(v);
  w1.histogram('cluster.backend.upstream_rq_time').record(400);
  w1.histogram('cluster.idle.upstream_rq_time'); // no samples
  admin = await startAdmin({ address: '127.0.0.1', port: 0, source: src, stats: src.main });
});

after(() => admin.close());

test('/stats text: merged over workers, sorted, counters and gauges interleaved, histograms last', async () => {
  const res = await get('/stats');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const lines = (await res.text()).trimEnd().split('\n');
  const names = lines.map((l) => l.slice(0, l.indexOf(':')));
  const scalars = names.filter((n) => !n.endsWith('upstream_rq_time'));
  assert.deepEqual(scalars, [...scalars].sort());
  assert.ok(lines.includes('cluster.backend.upstream_rq_total: 7'));
  assert.ok(lines.includes('cluster.backend.upstream_cx_active: 5'));
  assert.ok(lines.includes('server.live: 1'), 'max gauge not summed');
  assert.ok(lines.includes('cluster.idle.upstream_rq_time: No recorded values'));
  const hist = lines.find((l) => l.startsWith('cluster.backend.upstream_rq_time: '));
  assert.match(hist ?? '', /^cluster\.backend\.upstream_rq_time: P0\(nan,[\d.]+\) P25\(nan,[\d.]+\) P50\(nan,[\d.]+\) P75\(nan,[\d.]+\) P90\(nan,[\d.]+\) P95\(nan,[\d.]+\) P99\(nan,[\d.]+\) P99\.5\(nan,[\d.]+\) P99\.9\(nan,[\d.]+\) P100\(nan,[\d.]+\)$/);
  assert.equal(names.indexOf('cluster.backend.upstream_rq_time') > names.indexOf('tcp.egress.downstream_cx_total'), true);
});

test('/stats?filter and ?usedonly', async () => {
  const body = await (await get('/stats?filter=^cluster\\.backend\\.upstream_rq_')).text();
  assert.deepEqual(
    body.trimEnd().split('\n').map((l) => l.split(':')[0]),
    ['cluster.backend.upstream_rq_200', 'cluster.backend.upstream_rq_503', 'cluster.backend.upstream_rq_retry', 'cluster.backend.upstream_rq_total', 'cluster.backend.upstream_rq_time'],
  );
  const used = await (await get('/stats?usedonly&filter=upstream_rq_')).text();
  assert.ok(!used.includes('upstream_rq_retry'));
  assert.ok(!used.includes('cluster.idle.upstream_rq_time'));
  assert.ok(used.includes('cluster.backend.upstream_rq_200: 5'));
  const bad = await get('/stats?filter=(');
  assert.equal(bad.status, 400);
  assert.equal(await bad.text(), 'Invalid re2 regex');
  // RE2 syntax JavaScript lacks: a leading (?i).
  const folded = await (await get('/stats?filter=(?i)^CLUSTER\\.backend\\.upstream_rq_2')).text();
  assert.deepEqual(folded.trimEnd().split('\n').map((l) => l.split(':')[0]), ['cluster.backend.upstream_rq_200']);
  const counters = await (await get('/stats?type=Counters&filter=upstream_cx_active|server.live|rq_time')).text();
  assert.equal(counters, '');
});

test('/stats?format=json', async () => {
  const res = await get('/stats?format=json&filter=cluster\\.backend\\.');
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { stats: Array<Record<string, unknown>> };
  assert.deepEqual(body.stats[0], { name: 'cluster.backend.circuit_breakers.default.rq_open', value: 0 });
  assert.ok(body.stats.some((s) => s.name === 'cluster.backend.upstream_rq_total' && s.value === 7));
  const last = body.stats.at(-1) as { histograms: { supported_quantiles: number[]; computed_quantiles: Array<{ name: string; values: Array<{ interval: null; cumulative: number | null }> }> } };
  assert.deepEqual(last.histograms.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
  const q = last.histograms.computed_quantiles[0]!;
  assert.equal(q.name, 'cluster.backend.upstream_rq_time');
  assert.equal(q.values.length, 10);
  assert.equal(q.values[0]!.interval, null);
  const cum = q.values.map((v) => v.cumulative ?? NaN);
  assert.deepEqual(cum, [...cum].sort((a, b) => a - b), 'quantiles are monotonic');
  assert.ok(cum[0]! >= 1 && cum[0]! <= 5 && cum[9]! > 250 && cum[9]! <= 500, `range ${cum.join(',')}`);
});

test('/stats/prometheus: Envoy tag extraction, types and values, parsed back', async () => {
  const res = await get('/stats/prometheus');
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok(!text.includes('# HELP'));
  const { types, samples } = parseProm(text);
  const find = (name: string, labels: Record<string, string>) => samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length);
  const one = (name: string, labels: Record<string, string>): number => {
    const f = find(name, labels);
    assert.equal(f.length, 1, `${name} ${JSON.stringify(labels)} in\n${text}`);
    return f[0]!.value;
  };
  assert.equal(types.get('envoy_cluster_upstream_rq_total'), 'counter');
  assert.equal(one('envoy_cluster_upstream_rq_total', { envoy_cluster_name: 'backend' }), 7);
  assert.equal(types.get('envoy_cluster_upstream_rq'), 'counter');
  assert.equal(one('envoy_cluster_upstream_rq', { envoy_response_code: '200', envoy_cluster_name: 'backend' }), 5);
  assert.equal(one('envoy_cluster_upstream_rq', { envoy_response_code: '503', envoy_cluster_name: 'backend' }), 2);
  assert.equal(one('envoy_http_downstream_rq_xx', { envoy_response_code_class: '2', envoy_http_conn_manager_prefix: 'ingress' }), 6);
  assert.equal(one('envoy_http_downstream_rq_xx', { envoy_response_code_class: '5', envoy_http_conn_manager_prefix: 'ingress' }), 1);
  assert.match(text, /envoy_http_downstream_rq_xx\{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress"\} 6/);
  assert.equal(one('envoy_http_rq_total', { envoy_http_conn_manager_prefix: 'ingress' }), 7);
  assert.equal(one('envoy_listener_downstream_cx_total', { envoy_listener_address: '0.0.0.0_8080' }), 8);
  assert.equal(one('envoy_tcp_downstream_cx_total', { envoy_tcp_prefix: 'egress' }), 9);
  assert.equal(types.get('envoy_server_live'), 'gauge');
  assert.equal(one('envoy_server_live', {}), 1);
  assert.equal(one('envoy_listener_manager_listener_added', {}), 2);
  assert.equal(types.get('envoy_cluster_circuit_breakers_default_rq_open'), 'gauge');
  assert.equal(one('envoy_cluster_circuit_breakers_default_rq_open', { envoy_cluster_name: 'backend' }), 0);
  assert.equal(one('envoy_cluster_upstream_cx_active', { envoy_cluster_name: 'backend' }), 5);

  assert.equal(types.get('envoy_cluster_upstream_rq_time'), 'histogram');
  const buckets = samples.filter((s) => s.name === 'envoy_cluster_upstream_rq_time_bucket' && s.labels.envoy_cluster_name === 'backend');
  assert.deepEqual(buckets.map((b) => b.labels.le), ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf']);
  assert.deepEqual(buckets.slice(0, 9).map((b) => b.value), [0, 0, 1, 2, 3, 4, 4, 4, 5]);
  assert.equal(buckets.at(-1)!.value, 5);
  assert.equal(one('envoy_cluster_upstream_rq_time_sum', { envoy_cluster_name: 'backend' }), 470);
  assert.equal(one('envoy_cluster_upstream_rq_time_count', { envoy_cluster_name: 'backend' }), 5);
  assert.equal(one('envoy_cluster_upstream_rq_time_count', { envoy_cluster_name: 'idle' }), 0);

  // Counters, then gauges, then histograms; families sorted within each.
  const order = [...types.keys()];
  const kinds = order.map((n) => types.get(n));
  assert.deepEqual(kinds, [...kinds].sort((a, b) => ['counter', 'gauge', 'histogram'].indexOf(a!) - ['counter', 'gauge', 'histogram'].indexOf(b!)));
  const counterNames = order.filter((n) => types.get(n) === 'counter');
  assert.deepEqual(counterNames, [...counterNames].sort());
});

test('/stats?format=prometheus honours usedonly and filter', async () => {
  const text = await (await get('/stats?format=prometheus&usedonly&filter=^cluster\\.')).text();
  const { types, samples } = parseProm(text);
  assert.ok(!types.has('envoy_cluster_upstream_rq_retry'));
  assert.ok(!types.has('envoy_server_live'));
  assert.ok(types.has('envoy_cluster_upstream_rq_total'));
  assert.ok(!samples.some((s) => s.labels.envoy_cluster_name === 'idle'));
  const empty = await get('/stats/prometheus?filter=^nothing_matches$');
  assert.equal(empty.status, 200);
  assert.equal(await empty.text(), '');
});

test('/stats/prometheus scrape of 2,000 stats stays fast', async () => {
  const w = src.workers[0]!;
  for (let c = 0; c < 100; c++) {
    for (let i = 0; i < 18; i++) w.counter(`cluster.bulk${c}.stat_${i}_total`).inc(i);
    w.gauge(`cluster.bulk${c}.upstream_cx_active`).set(c);
    w.histogram(`cluster.bulk${c}.upstream_cx_length_ms`).record(c);
  }
  await get('/stats/prometheus'); // warm the tag cache
  const t0 = performance.now();
  const text = await (await get('/stats/prometheus')).text();
  const ms = performance.now() - t0;
  const { samples } = parseProm(text);
  assert.ok(samples.some((s) => s.name === 'envoy_cluster_stat_17_total' && s.labels.envoy_cluster_name === 'bulk99' && s.value === 17));
  console.log(`# prometheus scrape of ~2,000 stats: ${ms.toFixed(0)} ms (reported, not asserted)`);
});

test('the admin listener counts its own requests under http.admin and listener.admin', async () => {
  await get('/ready');
  await get('/nope');
  await new Promise((r) => setTimeout(r, 20));
  const text = await (await get('/stats?filter=^(http|listener)\\.admin\\.')).text();
  const stat = (n: string): number => Number(/: (\d+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${n}: `)) ?? '')?.[1] ?? NaN);
  assert.ok(stat('http.admin.downstream_rq_total') >= 3, text);
  assert.ok(stat('http.admin.downstream_rq_2xx') >= 1);
  assert.ok(stat('http.admin.downstream_rq_4xx') >= 1);
  assert.ok(stat('listener.admin.downstream_cx_total') >= 1);
  const { samples } = parseProm(await (await get('/stats/prometheus?filter=admin')).text());
  // Envoy keeps `listener.admin.*` untagged; `http.admin.*` gets the connection manager prefix.
  assert.ok(samples.some((s) => s.name === 'envoy_listener_admin_downstream_cx_total'));
  assert.ok(samples.some((s) => s.name === 'envoy_http_downstream_rq_xx' && s.labels.envoy_http_conn_manager_prefix === 'admin' && s.labels.envoy_response_code_class === '2'));
});
