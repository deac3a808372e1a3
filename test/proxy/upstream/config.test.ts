import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import type { ClusterConfig } from '../../../src/proxy/upstream/types.ts';

function decode(yaml: string): Cluster__Output {
  const r = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(yaml));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function ok(yaml: string): ClusterConfig {
  const r = parseCluster(decode(yaml), 'clusters[0]');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function errors(yaml: string): string[] {
  const r = parseCluster(decode(yaml), 'clusters[0]');
  assert.equal(r.ok, false);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
}

const EP = `
load_assignment:
  cluster_name: c
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }`;

test('defaults follow Envoy: STATIC, ROUND_ROBIN, 5 s connect, 1 MiB buffer, HTTP/1.1, 1 h idle', () => {
  const c = ok(`name: c${EP}`);
  assert.equal(c.type, 'STATIC');
  assert.equal(c.lbPolicy, 'ROUND_ROBIN');
  assert.equal(c.connectTimeoutMs, 5000);
  assert.equal(c.perConnectionBufferLimitBytes, 1024 * 1024);
  assert.equal(c.protocol, 'http1');
  assert.equal(c.idleTimeoutMs, 3600 * 1000);
  assert.equal(c.dnsRefreshRateMs, 5000);
  assert.equal(c.dnsLookupFamily, 'AUTO');
  assert.equal(c.maxConnections, 1024);
  assert.equal(c.statPrefix, 'cluster.c.');
  assert.equal(c.lb.maglevTableSize, 65537);
  assert.deepEqual([c.lb.minRingSize, c.lb.maxRingSize, c.lb.choiceCount], [1024, 8 * 1024 * 1024, 2]);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.localities[0]!.endpoints[0]));
});

test('priorities, locality weights, endpoint weights, hostname and health status', () => {
  const c = ok(`
name: c
type: STRICT_DNS
alt_stat_name: alt
dns_lookup_family: V4_ONLY
dns_refresh_rate: 2s
load_assignment:
  cluster_name: c
  endpoints:
  - locality: { region: r1, zone: z1 }
    load_balancing_weight: 3
    lb_endpoints:
    - endpoint: { address: { socket_address: { address: a.local, port_value: 80 } }, hostname: api.example }
      load_balancing_weight: 7
    - endpoint: { address: { socket_address: { address: b.local, port_value: 81 } } }
      health_status: DEGRADED
  - priority: 1
    lb_endpoints:
    - endpoint: { address: { socket_address: { address: c.local, port_value: 82 } } }
      health_status: DRAINING`);
  assert.equal(c.statPrefix, 'cluster.alt.');
  assert.equal(c.dnsRefreshRateMs, 2000);
  const [l0, l1] = c.localities;
  assert.deepEqual(l0!.locality, { region: 'r1', zone: 'z1', subZone: '' });
  assert.equal(l0!.weight, 3);
  assert.deepEqual(l0!.endpoints.map((e) => [e.address, e.port, e.hostname, e.weight, e.health]), [
    ['a.local', 80, 'api.example', 7, 'healthy'],
    ['b.local', 81, 'b.local', 1, 'degraded'],
  ]);
  assert.equal(l1!.priority, 1);
  assert.equal(l1!.endpoints[0]!.health, 'unhealthy');
});

test('HttpProtocolOptions: explicit HTTP/2, idle timeout, use_downstream_protocol_config; legacy http2_protocol_options', () => {
  const c = ok(`
name: c${EP}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    common_http_protocol_options: { idle_timeout: 30s, max_requests_per_connection: 10 }
    explicit_http_config: { http2_protocol_options: {} }`);
  assert.deepEqual([c.protocol, c.idleTimeoutMs, c.maxRequestsPerConnection], ['http2', 30000, 10]);
  const d = ok(`
name: c${EP}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    use_downstream_protocol_config: {}`);
  assert.equal(d.protocol, 'downstream');
  assert.equal(ok(`name: c\nhttp2_protocol_options: {}${EP}`).protocol, 'http2');
  // http2_protocol_options: Envoy's defaults, and the values given (their ranges are the decoder's to check).
  assert.deepEqual(ok(`name: c\nhttp2_protocol_options: {}${EP}`).http2, { maxConcurrentStreams: 2147483647, initialStreamWindowSize: 268435456, initialConnectionWindowSize: 268435456 });
  assert.deepEqual(ok(`name: c\nhttp2_protocol_options: { max_concurrent_streams: 8, initial_stream_window_size: 65535, initial_connection_window_size: 1048576 }${EP}`).http2, { maxConcurrentStreams: 8, initialStreamWindowSize: 65535, initialConnectionWindowSize: 1048576 });
  assert.equal(c.http2?.maxConcurrentStreams, 2147483647);
  assert.throws(() => decode(`name: c\nhttp2_protocol_options: { max_concurrent_streams: 0 }${EP}`), /http2_protocol_options\.max_concurrent_streams/);
  assert.throws(() => decode(`name: c\nhttp2_protocol_options: { initial_stream_window_size: 1000 }${EP}`), /http2_protocol_options\.initial_stream_window_size/);
});

test('lb configs: ring sizes, choice_count, maglev table size', () => {
  const r = ok(`name: c\nlb_policy: RING_HASH\nring_hash_lb_config: { minimum_ring_size: 64, maximum_ring_size: 4096 }${EP}`);
  assert.deepEqual([r.lb.minRingSize, r.lb.maxRingSize], [64, 4096]);
  assert.equal(ok(`name: c\nlb_policy: LEAST_REQUEST\nleast_request_lb_config: { choice_count: 5 }${EP}`).lb.choiceCount, 5);
  assert.equal(ok(`name: c\nlb_policy: MAGLEV\nmaglev_lb_config: { table_size: 251 }${EP}`).lb.maglevTableSize, 251);
});

test('errors name the field path', () => {
  assert.deepEqual(errors(`name: c\ntype: ORIGINAL_DST`), ['clusters[0].lb_policy: cluster type ORIGINAL_DST may only be used with lb_policy CLUSTER_PROVIDED (got ROUND_ROBIN)']);
  assert.deepEqual(errors(`name: c\ntype: ORIGINAL_DST\nlb_policy: CLUSTER_PROVIDED${EP}`), ['clusters[0].load_assignment: ORIGINAL_DST clusters must have no load assignment configured']);
  assert.deepEqual(errors(`name: c\ntype: EDS`), ['clusters[0].eds_cluster_config: cannot create an EDS cluster without an EDS config']);
  assert.deepEqual(errors(`name: c\ntype: EDS\neds_cluster_config: { service_name: s }`), ['clusters[0].eds_cluster_config.eds_config: value is required']);
  assert.deepEqual(errors(`name: c\nlb_policy: CLUSTER_PROVIDED${EP}`), ['clusters[0].lb_policy: lb_policy CLUSTER_PROVIDED is not valid for cluster type STATIC: only ORIGINAL_DST clusters provide their own load balancer']);
  assert.deepEqual(errors(`name: c\nlb_policy: MAGLEV\nmaglev_lb_config: { table_size: 100 }${EP}`), ['clusters[0].maglev_lb_config.table_size: The table size of maglev must be prime number']);
  assert.deepEqual(errors(`name: c\nlb_policy: RING_HASH\nring_hash_lb_config: { minimum_ring_size: 5000, maximum_ring_size: 100 }${EP}`), [
    'clusters[0].ring_hash_lb_config: ring hash: minimum_ring_size (5000) > maximum_ring_size (100)',
  ]);
  assert.deepEqual(errors(`name: c${EP.replace('127.0.0.1', 'example.com')}`), [
    'clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: malformed IP address: example.com',
  ]);
  const two = `
load_assignment:
  cluster_name: c
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: a.local, port_value: 1 } } }
    - endpoint: { address: { socket_address: { address: b.local, port_value: 1 } } }`;
  assert.deepEqual(errors(`name: c\ntype: LOGICAL_DNS${two}`), ['clusters[0].load_assignment: LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint']);
  const h3 = errors(`
name: c${EP}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http3_protocol_options: {} }`);
  assert.deepEqual(h3, ['clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http3_protocol_options: HTTP/3 upstreams are not supported']);
});

test('EDS clusters: no endpoints until the ClusterLoadAssignment comes; service_name defaults to the cluster name', () => {
  const c = ok(`name: c\ntype: EDS\neds_cluster_config: { eds_config: { ads: {} } }${EP}`);
  assert.equal(c.type, 'EDS');
  assert.deepEqual(c.localities, []);
  assert.equal(c.edsServiceName, 'c');
  assert.equal(ok(`name: c\ntype: EDS\neds_cluster_config: { service_name: svc, eds_config: { ads: {} } }`).edsServiceName, 'svc');
});

test('ORIGINAL_DST: original_dst_lb_config and cleanup_interval, with their defaults', () => {
  const d = ok(`name: c\ntype: ORIGINAL_DST\nlb_policy: CLUSTER_PROVIDED`);
  assert.equal(d.type, 'ORIGINAL_DST');
  assert.deepEqual(d.originalDst, { useHttpHeader: false, httpHeaderName: 'x-envoy-original-dst-host', upstreamPortOverride: undefined, cleanupIntervalMs: 5000 });
  const c = ok(`name: c\ntype: ORIGINAL_DST\nlb_policy: CLUSTER_PROVIDED\ncleanup_interval: 2s\noriginal_dst_lb_config: { use_http_header: true, http_header_name: X-Dst, upstream_port_override: 8080 }`);
  assert.deepEqual(c.originalDst, { useHttpHeader: true, httpHeaderName: 'x-dst', upstreamPortOverride: 8080, cleanupIntervalMs: 2000 });
});
