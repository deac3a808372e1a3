import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdmin, type AdminServer } from '../../../src/proxy/admin/server.ts';
import { logLevels, setLogLevel } from '../../../src/proxy/log.ts';
import { FakeSource } from './fake-source.ts';

let admin: AdminServer;
const src = new FakeSource();
const dir = mkdtempSync(join(tmpdir(), 'legate-admin-'));
const accessLogPath = join(dir, 'admin_access.log');
const req = (path: string, method = 'GET'): Promise<Response> => fetch(`http://127.0.0.1:${admin.port}${path}`, { method, signal: AbortSignal.timeout(5000) });
const post = (path: string): Promise<Response> => req(path, 'POST');

before(async () => {
  src.clusterList = [
    {
      name: 'backend',
      addedViaApi: false,
      hosts: [
        { address: '127.0.0.1', port: 8081, weight: 1, priority: 0, health: 'healthy', counters: { rq_total: 4, cx_total: 2 }, gauges: { cx_active: 1 } },
        { address: '::1', port: 8082, weight: 3, priority: 1, health: 'unhealthy', hostname: 'b.local', locality: { region: 'eu', zone: 'eu-1', subZone: '' } },
      ],
    },
    { name: 'xds', addedViaApi: true, edsServiceName: 'xds-eds', circuitBreakers: { default: { maxConnections: 10, maxPendingRequests: 20, maxRequests: 30, maxRetries: 1 } }, hosts: [] },
  ];
  src.listenerList = [
    { name: 'ingress', address: '0.0.0.0', port: 10000 },
    { name: 'v6', address: '::', port: 10001 },
  ];
  admin = await startAdmin({ address: '127.0.0.1', port: 0, source: src, accessLogPath });
});

after(async () => {
  await admin.close();
  rmSync(dir, { recursive: true, force: true });
});

test('/ready follows server state and health-check failure', async () => {
  let res = await req('/ready');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'LIVE\n');
  src.state = 'INITIALIZING';
  res = await req('/ready');
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'INITIALIZING\n');
  src.state = 'LIVE';

  res = await req('/healthcheck/fail');
  assert.equal(res.status, 405);
  assert.equal(await res.text(), 'Method GET not allowed, POST required.');
  assert.equal(src.hcFailed, false);

  res = await post('/healthcheck/fail');
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'OK\n');
  res = await req('/ready');
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'DRAINING\n');
  assert.equal(((await (await req('/server_info')).json()) as { state: string }).state, 'DRAINING');

  assert.equal((await post('/healthcheck/ok')).status, 200);
  assert.equal((await req('/ready')).status, 200);
});

test('/server_info is Envoy ServerInfo JSON', async () => {
  const res = await req('/server_info');
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(res.headers.get('cache-control'), 'no-cache, max-age=0');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const info = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(info), ['version', 'state', 'uptime_current_epoch', 'uptime_all_epochs', 'hot_restart_version', 'command_line_options', 'node']);
  assert.equal(info.state, 'LIVE');
  assert.equal(info.uptime_current_epoch, '12s');
  assert.equal(info.hot_restart_version, 'disabled');
  assert.deepEqual(info.node, { id: 'node-1', cluster: 'test' });
  assert.equal(await (await req('/hot_restart_version')).text(), 'disabled');
});

test('/clusters text in Envoy form', async () => {
  const text = await (await req('/clusters')).text();
  const lines = text.trimEnd().split('\n');
  for (const l of [
    'backend::observability_name::backend',
    'backend::default_priority::max_connections::1024',
    'backend::default_priority::max_pending_requests::1024',
    'backend::default_priority::max_requests::1024',
    'backend::default_priority::max_retries::3',
    'backend::high_priority::max_connections::1024',
    'backend::added_via_api::false',
    'backend::127.0.0.1:8081::cx_active::1',
    'backend::127.0.0.1:8081::cx_connect_fail::0',
    'backend::127.0.0.1:8081::cx_total::2',
    'backend::127.0.0.1:8081::rq_total::4',
    'backend::127.0.0.1:8081::hostname::',
    'backend::127.0.0.1:8081::health_flags::healthy',
    'backend::127.0.0.1:8081::weight::1',
    'backend::127.0.0.1:8081::region::',
    'backend::127.0.0.1:8081::zone::',
    'backend::127.0.0.1:8081::sub_zone::',
    'backend::127.0.0.1:8081::canary::false',
    'backend::127.0.0.1:8081::priority::0',
    'backend::127.0.0.1:8081::success_rate::-1',
    'backend::[::1]:8082::health_flags::/failed_eds_health',
    'backend::[::1]:8082::hostname::b.local',
    'backend::[::1]:8082::weight::3',
    'backend::[::1]:8082::region::eu',
    'backend::[::1]:8082::zone::eu-1',
    'backend::[::1]:8082::priority::1',
    'xds::default_priority::max_connections::10',
    'xds::default_priority::max_retries::1',
    'xds::added_via_api::true',
    'xds::eds_service_name::xds-eds',
  ])
    assert.ok(lines.includes(l), `missing ${l}`);
  const hostStats = lines.filter((l) => l.startsWith('backend::127.0.0.1:8081::')).slice(0, 8).map((l) => l.split('::')[2]);
  assert.deepEqual(hostStats, ['cx_active', 'cx_connect_fail', 'cx_total', 'rq_active', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total']);
});

test('/clusters?format=json is envoy.admin.v3.Clusters', async () => {
  const body = (await (await req('/clusters?format=json')).json()) as { cluster_statuses: Array<Record<string, unknown>> };
  const [backend, xds] = body.cluster_statuses as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(backend.name, 'backend');
  assert.equal(backend.added_via_api, undefined);
  assert.equal(xds.added_via_api, true);
  const hosts = backend.host_statuses as Array<Record<string, unknown>>;
  assert.deepEqual(hosts[0]!.address, { socket_address: { address: '127.0.0.1', port_value: 8081 } });
  assert.deepEqual(hosts[0]!.health_status, { eds_health_status: 'HEALTHY' });
  assert.equal(hosts[0]!.weight, 1);
  const stats = hosts[0]!.stats as Array<Record<string, unknown>>;
  assert.deepEqual(stats.find((s) => s.name === 'rq_total'), { value: '4', name: 'rq_total' });
  assert.deepEqual(stats.find((s) => s.name === 'cx_active'), { value: '1', type: 'GAUGE', name: 'cx_active' });
  assert.deepEqual(stats.find((s) => s.name === 'rq_error'), { name: 'rq_error' });
  assert.deepEqual(hosts[1]!.health_status, { eds_health_status: 'UNHEALTHY' });
  assert.deepEqual(hosts[1]!.locality, { region: 'eu', zone: 'eu-1' });
  assert.equal(hosts[1]!.priority, 1);
  assert.equal(hosts[1]!.hostname, 'b.local');
  const cb = xds.circuit_breakers as { thresholds: Array<Record<string, unknown>> };
  assert.deepEqual(cb.thresholds[0], { max_connections: 10, max_pending_requests: 20, max_requests: 30, max_retries: 1 });
  assert.equal(cb.thresholds[1]!.priority, 'HIGH');
});

test('/listeners text and json', async () => {
  assert.equal(await (await req('/listeners')).text(), 'ingress::0.0.0.0:10000\nv6::[::]:10001\n');
  const body = await (await req('/listeners?format=json')).json();
  assert.deepEqual(body, {
    listener_statuses: [
      { name: 'ingress', local_address: { socket_address: { address: '0.0.0.0', port_value: 10000 } } },
      { name: 'v6', local_address: { socket_address: { address: '::', port_value: 10001 } } },
    ],
  });
});

test('/config_dump passes resource, include_eds and name_regex; unknown resource is 404', async () => {
  let res = await req('/config_dump');
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { configs: unknown[] }).configs.length, 1);
  res = await req('/config_dump?include_eds');
  assert.equal(((await res.json()) as { configs: unknown[] }).configs.length, 2);
  res = await req('/config_dump?resource=dynamic_active_clusters&name_regex=^a$');
  assert.equal(res.status, 200);
  const last = src.dumpCalls.at(-1)!;
  assert.equal(last.resource, 'dynamic_active_clusters');
  // RE2 matching whole names, as Envoy's RegexMatcher.
  assert.equal(last.nameRegex?.test('a'), true);
  assert.equal(last.nameRegex?.test('ab'), false);
  res = await req('/config_dump?name_regex=(?i)b.*');
  assert.equal(res.status, 200);
  assert.equal(src.dumpCalls.at(-1)!.nameRegex?.test('Backend'), true);
  assert.equal(src.dumpCalls.at(-1)!.nameRegex?.test('a-backend'), false);
  assert.equal(last.includeEds, false);
  res = await req('/config_dump?resource=nope');
  assert.equal(res.status, 404);
  res = await req('/config_dump?name_regex=(');
  assert.equal(res.status, 400);
  assert.match(await res.text(), /^INVALID_ARGUMENT: Error while parsing name_regex from \(: /);
});

test('/runtime lists layers and entries', async () => {
  const body = await (await req('/runtime')).json();
  assert.deepEqual(body, {
    layers: ['static_layer', 'admin'],
    entries: {
      'a.b': { final_value: '2', layer_values: ['1', '2'] },
      'c.d': { final_value: 'x', layer_values: ['x', ''] },
    },
  });
});

test('/logging lists levels on GET and changes them on POST', async (t) => {
  const saved = logLevels();
  t.after(() => {
    setLogLevel(saved.default);
    for (const [c, l] of Object.entries(saved.components)) setLogLevel(l, c);
  });
  let res = await req('/logging');
  assert.equal(res.status, 200);
  let text = await res.text();
  assert.match(text, /^active loggers:\n/);
  assert.match(text, /\n {2}upstream: info\n/);

  assert.equal((await req('/logging?level=debug')).status, 405);
  res = await post('/logging?level=debug');
  assert.equal(res.status, 200);
  assert.equal(logLevels().default, 'debug');
  assert.match(await res.text(), /\n {2}admin: debug\n/);

  res = await post('/logging?upstream=trace');
  text = await res.text();
  assert.match(text, /\n {2}upstream: trace\n/);
  assert.match(text, /\n {2}router: debug\n/);
  res = await post('/logging?paths=router:warning,pool:error');
  text = await res.text();
  assert.match(text, /\n {2}router: warning\n/);
  assert.match(text, /\n {2}pool: error\n/);

  res = await post('/logging?level=loud');
  assert.equal(res.status, 404);
  assert.match(await res.text(), /^usage: \/logging\?<name>=<level> \(change single level\)\n/);
});

test('/drain_listeners and /quitquitquit are POST-only and reach the source', async () => {
  assert.equal((await req('/drain_listeners')).status, 405);
  assert.equal(await (await post('/drain_listeners?inboundonly&graceful')).text(), 'OK\n');
  assert.equal(await (await post('/drain_listeners')).text(), 'OK\n');
  assert.deepEqual(src.drains, [
    { inboundOnly: true, graceful: true },
    { inboundOnly: false, graceful: false },
  ]);
  assert.equal((await req('/quitquitquit')).status, 405);
  assert.equal(src.quits, 0);
  assert.equal(await (await post('/quitquitquit')).text(), 'OK\n');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(src.quits, 1);
});

test('help on / and /help; unknown path is 404 with the help text', async () => {
  const help = await (await req('/help')).text();
  assert.match(help, /^admin commands are:\n/);
  assert.match(help, /\n {2}\/clusters: upstream cluster status\n/);
  assert.match(help, /\n {2}\/healthcheck\/fail \(POST\): cause the server to fail health checks\n/);
  assert.match(help, /\n {6}usedonly: /);
  assert.equal(await (await req('/')).text(), help);
  const res = await req('/nope');
  assert.equal(res.status, 404);
  assert.equal(await res.text(), 'invalid path. ' + help);
  assert.equal((await req('/reset_counters', 'POST')).status, 404, 'absent when the source cannot reset');
});

test('a throwing source answers 500 and the server keeps serving', async () => {
  const orig = src.clusters;
  src.clusters = () => {
    throw new Error('boom');
  };
  try {
    const res = await req('/clusters');
    assert.equal(res.status, 500);
    assert.equal(await res.text(), 'boom\n');
  } finally {
    src.clusters = orig;
  }
  assert.equal((await req('/clusters')).status, 200);
});

test('admin access log gets one line per request in Envoy default format', async () => {
  await req('/ready?x=1');
  await new Promise((r) => setTimeout(r, 50));
  const lines = readFileSync(accessLogPath, 'utf8').trimEnd().split('\n');
  const last = lines.at(-1)!;
  assert.match(last, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/ready\?x=1 HTTP\/1\.1" 200 - 0 5 \d+ - "-" "[^"]*" "-" "127\.0\.0\.1:\d+" "-"$/);
});
