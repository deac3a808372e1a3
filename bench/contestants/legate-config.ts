// The Envoy v3 bootstraps the suite runs legate with. `legate` / `legate-c2`: a plain HCM listener,
// a tcp_proxy listener, TLS termination (DownstreamTlsContext), plain in → mTLS upstream
// (UpstreamTlsContext with a client certificate, the server's SPIFFE ID checked) and mTLS both ways.
// `legate-ext`: a plain HCM listener, one with fault (0%) + local_ratelimit (never limiting) +
// header_mutation before the router, one with the Proxy-Wasm header filter, and an inbound one with
// Istio's istio.metadata_exchange and istio.stats.

import type { BenchPki } from '../lib/pki.ts';
import { SERVER_ID, SERVER_NAME } from '../lib/pki.ts';
import type { Upstream } from './types.ts';
import { encodeStruct } from '../../src/filters/common/istio/struct-codec.ts';

type Obj = Record<string, unknown>;
const T = 'type.googleapis.com/envoy.extensions';
const socket = (port: number): Obj => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': `${T}.filters.http.router.v3.Router` } };
const file = (filename: string): Obj => ({ filename });

function hcm(statPrefix: string, cluster: string, httpFilters: readonly Obj[] = [], route: Obj = {}): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': `${T}.filters.network.http_connection_manager.v3.HttpConnectionManager`,
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      route_config: {
        name: `${statPrefix}_route`,
        virtual_hosts: [{ name: 'backend', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster }, ...route }] }],
      },
      http_filters: [...httpFilters, ROUTER],
    },
  };
}

function listener(name: string, port: number, filter: Obj, transportSocket?: Obj): Obj {
  return { name, address: socket(port), filter_chains: [{ filters: [filter], ...(transportSocket ? { transport_socket: transportSocket } : {}) }] };
}

const certificate = (f: { cert: string; key: string }): Obj => ({ certificate_chain: file(f.cert), private_key: file(f.key) });

function downstreamTls(pki: BenchPki, requireClientCert: boolean): Obj {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `${T}.transport_sockets.tls.v3.DownstreamTlsContext`,
      common_tls_context: {
        tls_certificates: [certificate(pki.server)],
        ...(requireClientCert ? { validation_context: { trusted_ca: file(pki.caFile) } } : {}),
      },
      ...(requireClientCert ? { require_client_certificate: true } : {}),
    },
  };
}

function upstreamMtls(pki: BenchPki): Obj {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `${T}.transport_sockets.tls.v3.UpstreamTlsContext`,
      sni: SERVER_NAME,
      common_tls_context: {
        tls_certificates: [certificate(pki.client)],
        validation_context: { trusted_ca: file(pki.caFile), match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: SERVER_ID } }] },
      },
    },
  };
}

function clusters(up: Upstream, pki: BenchPki, withMtls: boolean): Obj[] {
  const cluster = (name: string, port: number, extra: Obj = {}): Obj => ({
    name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(port) } }] }] }, ...extra,
  });
  return [cluster('app', up.h1), ...(withMtls ? [cluster('app_mtls', up.mtls, { transport_socket: upstreamMtls(pki) })] : [])];
}

const bootstrap = (listeners: readonly Obj[], cl: readonly Obj[]): Obj => ({ admin: { address: socket(0) }, static_resources: { listeners, clusters: cl } });

export interface CorePorts { h1: number; tcp: number; tls: number; mtlsUp: number; mtls: number }

/** `legate` and `legate-c2`: plain, tcp_proxy, TLS termination, mTLS upstream, mTLS both ways. */
export function coreBootstrap(up: Upstream, pki: BenchPki, p: CorePorts): Obj {
  return bootstrap([
    listener('http', p.h1, hcm('ingress_http', 'app')),
    listener('tcp', p.tcp, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': `${T}.filters.network.tcp_proxy.v3.TcpProxy`, stat_prefix: 'tcp', cluster: 'app' } }),
    listener('tls', p.tls, hcm('ingress_tls', 'app'), downstreamTls(pki, false)),
    listener('mtls_up', p.mtlsUp, hcm('ingress_mtls_up', 'app_mtls')),
    listener('mtls', p.mtls, hcm('ingress_mtls', 'app_mtls'), downstreamTls(pki, true)),
  ], clusters(up, pki, true));
}

const pct100 = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
const FAULT_0 = {
  name: 'envoy.filters.http.fault',
  typed_config: {
    '@type': `${T}.filters.http.fault.v3.HTTPFault`,
    abort: { http_status: 503, percentage: { numerator: 0, denominator: 'HUNDRED' } },
    delay: { fixed_delay: '0.001s', percentage: { numerator: 0, denominator: 'HUNDRED' } },
  },
};
const RATELIMIT_NEVER = {
  name: 'envoy.filters.http.local_ratelimit',
  typed_config: {
    '@type': `${T}.filters.http.local_ratelimit.v3.LocalRateLimit`,
    stat_prefix: 'bench_rl',
    token_bucket: { max_tokens: 1_000_000_000, tokens_per_fill: 1_000_000_000, fill_interval: '1s' },
    filter_enabled: { ...pct100, runtime_key: 'bench_rl_enabled' },
    filter_enforced: { ...pct100, runtime_key: 'bench_rl_enforced' },
  },
};
const REQUEST_HEADER = { key: 'x-bench-request', value: 'filters' };
const RESPONSE_HEADER = { key: 'x-bench-response', value: 'filters' };
const HEADER_MUTATION = {
  name: 'envoy.filters.http.header_mutation',
  typed_config: {
    '@type': `${T}.filters.http.header_mutation.v3.HeaderMutation`,
    mutations: {
      request_mutations: [{ append: { header: REQUEST_HEADER, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } }],
      response_mutations: [{ append: { header: RESPONSE_HEADER, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' } }],
    },
  },
};
/** What stands in for the header_mutation filter when legate lacks it: the same headers added by the route. */
const ROUTE_HEADERS = {
  request_headers_to_add: [{ header: REQUEST_HEADER, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
  response_headers_to_add: [{ header: RESPONSE_HEADER, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
};
/** The response header the filters listener adds (checked once at start). */
export const FILTERS_RESPONSE_HEADER = RESPONSE_HEADER;

function wasmFilter(pluginFile: string): Obj {
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': `${T}.filters.http.wasm.v3.Wasm`,
      config: {
        name: 'header-filter',
        root_id: 'header_filter',
        configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'bench' },
        vm_config: { vm_id: 'header-filter', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: pluginFile } } },
      },
    },
  };
}

export interface ExtPorts { h1: number; filters: number; wasm?: number; istio: number }

/** Istio's node metadata for `legate-ext` (the inbound sidecar of ratings-v1). */
const ISTIO_NODE = {
  id: 'sidecar~127.0.0.1~ratings-v1-5d8f7c9b6-abcde.default~default.svc.cluster.local',
  metadata: {
    NAME: 'ratings-v1-5d8f7c9b6-abcde',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'ratings-v1',
    CLUSTER_ID: 'Kubernetes',
    OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/ratings-v1',
    LABELS: { app: 'ratings', version: 'v1', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'v1' },
  },
};

/** What the calling sidecar (productpage-v1) sends with every request: its id and metadata (base64 of a Struct). */
export const ISTIO_PEER_HEADERS: Readonly<Record<string, string>> = {
  'x-envoy-peer-metadata-id': 'sidecar~127.0.0.2~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local',
  'x-envoy-peer-metadata': encodeStruct({
    NAME: 'productpage-v1-6b746f74dc-9stvs',
    NAMESPACE: 'default',
    WORKLOAD_NAME: 'productpage-v1',
    CLUSTER_ID: 'Kubernetes',
    LABELS: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage', 'service.istio.io/canonical-revision': 'v1' },
    OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1',
  }).toString('base64'),
};
export const ISTIO_NODE_ID = ISTIO_NODE.id;

/** istiod's inbound HTTP filters: peer metadata from Istio's headers (answered in the response), then Istio's standard metrics. */
const ISTIO_FILTERS: readonly Obj[] = [
  {
    name: 'istio.metadata_exchange',
    typed_config: { '@type': 'type.googleapis.com/io.istio.http.peer_metadata.Config', downstream_discovery: [{ istio_headers: {} }, { workload_discovery: {} }], downstream_propagation: [{ istio_headers: {} }] },
  },
  { name: 'istio.stats', typed_config: { '@type': 'type.googleapis.com/stats.PluginConfig', disable_host_header_fallback: true } },
];

/**
 * `legate-ext`. `headerMutationFilter: false` adds the headers with the route's
 * request/response_headers_to_add instead of the header_mutation filter (when legate lacks it).
 */
export function extBootstrap(up: Upstream, pki: BenchPki, p: ExtPorts, o: { wasmPlugin?: string; headerMutationFilter: boolean }): Obj {
  const filters = o.headerMutationFilter ? [FAULT_0, RATELIMIT_NEVER, HEADER_MUTATION] : [FAULT_0, RATELIMIT_NEVER];
  const b = bootstrap([
    listener('http', p.h1, hcm('ingress_http', 'app')),
    listener('filters', p.filters, hcm('ingress_filters', 'app', filters, o.headerMutationFilter ? {} : ROUTE_HEADERS)),
    ...(o.wasmPlugin && p.wasm !== undefined ? [listener('wasm', p.wasm, hcm('ingress_wasm', 'app', [wasmFilter(o.wasmPlugin)]))] : []),
    { ...listener('istio', p.istio, hcm('inbound_0.0.0.0_9080', 'app', ISTIO_FILTERS)), traffic_direction: 'INBOUND' },
  ], clusters(up, pki, false));
  return { ...b, node: ISTIO_NODE };
}
