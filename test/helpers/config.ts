// Test helper: small Envoy v3 bootstraps (plain JSON objects, as a user would write in YAML).

export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const HTTP_OPTIONS_TYPE = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

export function socketAddress(port: number, address = '127.0.0.1'): object {
  return { socket_address: { address, port_value: port } };
}

export interface ClusterSpec {
  ports: number[];
  http2?: boolean;
  lbPolicy?: string;
  extra?: Record<string, unknown>;
}

export function cluster(name: string, spec: ClusterSpec): object {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: spec.lbPolicy ?? 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: spec.ports.map((p) => ({ endpoint: { address: socketAddress(p) } })) }],
    },
    ...(spec.http2
      ? { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS_TYPE, explicit_http_config: { http2_protocol_options: {} } } } }
      : {}),
    ...(spec.extra ?? {}),
  };
}

export function hcm(routeConfig: object, extra: Record<string, unknown> = {}): object {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: 'ingress_http',
      codec_type: 'AUTO',
      route_config: routeConfig,
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
      ...extra,
    },
  };
}

export function httpBootstrap(opts: {
  routes: object[];
  clusters?: Record<string, ClusterSpec>;
  hcmExtra?: Record<string, unknown>;
  listenerName?: string;
  domains?: string[];
}): object {
  return {
    static_resources: {
      listeners: [
        {
          name: opts.listenerName ?? 'http',
          address: socketAddress(0),
          filter_chains: [{ filters: [hcm({ name: 'local_route', virtual_hosts: [{ name: 'local', domains: opts.domains ?? ['*'], routes: opts.routes }] }, opts.hcmExtra)] }],
        },
      ],
      clusters: Object.entries(opts.clusters ?? {}).map(([n, s]) => cluster(n, s)),
    },
    admin: { address: socketAddress(0) },
  };
}
