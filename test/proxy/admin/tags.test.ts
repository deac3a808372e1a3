import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractTags, sanitizeName } from '../../../src/proxy/admin/tags.ts';

function tagged(name: string): [string, Record<string, string>, string[]] {
  const t = extractTags(name);
  return [t.name, Object.fromEntries(t.tags.map((x) => [x.name, x.value])), t.tags.map((x) => x.name)];
}

test('cluster name, response code and class are extracted in Envoy order', () => {
  assert.deepEqual(tagged('cluster.foo.upstream_rq_total').slice(0, 2), ['cluster.upstream_rq_total', { 'envoy.cluster_name': 'foo' }]);
  assert.deepEqual(tagged('cluster.foo.upstream_rq_200'), ['cluster.upstream_rq', { 'envoy.response_code': '200', 'envoy.cluster_name': 'foo' }, ['envoy.response_code', 'envoy.cluster_name']]);
  assert.deepEqual(tagged('http.ingress.downstream_rq_2xx'), [
    'http.downstream_rq_xx',
    { 'envoy.response_code_class': '2', 'envoy.http_conn_manager_prefix': 'ingress' },
    ['envoy.response_code_class', 'envoy.http_conn_manager_prefix'],
  ]);
  assert.deepEqual(tagged('cluster.foo.circuit_breakers.default.rq_open').slice(0, 2), ['cluster.circuit_breakers.default.rq_open', { 'envoy.cluster_name': 'foo' }]);
});

test('listener address, tcp prefix, worker id; admin listener and plain names untouched', () => {
  assert.deepEqual(tagged('listener.0.0.0.0_8080.downstream_cx_total').slice(0, 2), ['listener.downstream_cx_total', { 'envoy.listener_address': '0.0.0.0_8080' }]);
  assert.deepEqual(tagged('listener.[__1]_80.downstream_cx_total').slice(0, 2), ['listener.downstream_cx_total', { 'envoy.listener_address': '[__1]_80' }]);
  assert.deepEqual(tagged('tcp.egress.downstream_cx_total').slice(0, 2), ['tcp.downstream_cx_total', { 'envoy.tcp_prefix': 'egress' }]);
  assert.deepEqual(tagged('listener_manager.worker_3.downstream_cx_total').slice(0, 2), ['listener_manager.worker_downstream_cx_total', { 'envoy.worker_id': '3' }]);
  assert.deepEqual(tagged('listener.admin.downstream_cx_total').slice(0, 2), ['listener.admin.downstream_cx_total', {}]);
  assert.deepEqual(tagged('server.live').slice(0, 2), ['server.live', {}]);
  assert.deepEqual(tagged('listener_manager.listener_added').slice(0, 2), ['listener_manager.listener_added', {}]);
  assert.deepEqual(tagged('http.ingress.rq_total').slice(0, 2), ['http.rq_total', { 'envoy.http_conn_manager_prefix': 'ingress' }]);
});

test('listener http prefix, vhost/vcluster, rds route config with dots, ssl cipher suite', () => {
  assert.deepEqual(tagged('listener.127.0.0.1_15000.http.admin.downstream_rq_5xx').slice(0, 2), [
    'listener.http.downstream_rq_xx',
    { 'envoy.response_code_class': '5', 'envoy.http_conn_manager_prefix': 'admin', 'envoy.listener_address': '127.0.0.1_15000' },
  ]);
  assert.deepEqual(tagged('vhost.vh.vcluster.other.upstream_rq_200').slice(0, 2), [
    'vhost.vcluster.upstream_rq',
    { 'envoy.response_code': '200', 'envoy.virtual_cluster': 'other', 'envoy.virtual_host': 'vh' },
  ]);
  assert.deepEqual(tagged('http.ingress.rds.my.routes.config_reload').slice(0, 2), [
    'http.rds.config_reload',
    { 'envoy.rds_route_config': 'my.routes', 'envoy.http_conn_manager_prefix': 'ingress' },
  ]);
  assert.deepEqual(tagged('cluster.a.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256').slice(0, 2), [
    'cluster.ssl.ciphers',
    { cipher_suite: 'ECDHE-RSA-AES128-GCM-SHA256', 'envoy.cluster_name': 'a' },
  ]);
});

test('sanitizeName replaces every non-alphanumeric with _', () => {
  assert.equal(sanitizeName('envoy.cluster_name'), 'envoy_cluster_name');
  assert.equal(sanitizeName('cluster.a-b.x:y'), 'cluster_a_b_x_y');
});
