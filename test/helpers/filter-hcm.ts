// Test helper for the filter tests: an HTTP connection manager (YAML) with filters before the
// router and its virtual hosts, and a cluster of one 127.0.0.1 endpoint (HTTP/1.1 or HTTP/2).

import { stringify } from 'yaml';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

/** stat_prefix ingress_http, codec AUTO; `virtualHost` holds the routes (and any other fields). */
export function filterHcm(filter: Readonly<Record<string, unknown>>, virtualHost: Readonly<Record<string, unknown>>): string {
  return filtersHcm([filter], virtualHost);
}

/**
 * As filterHcm with several filters before the router; `virtualHost` is one virtual host's fields
 * (named `vh`, every domain) or a whole list of them; `extra`: more HCM fields (stat_prefix too).
 */
export function filtersHcm(filters: readonly object[], virtualHost: Readonly<Record<string, unknown>> | readonly object[], extra: Readonly<Record<string, unknown>> = {}): string {
  const hosts = Array.isArray(virtualHost) ? virtualHost : [{ name: 'vh', domains: ['*'], ...virtualHost }];
  return stringify({
    stat_prefix: 'ingress_http',
    codec_type: 'AUTO',
    ...extra,
    route_config: { name: 'local', virtual_hosts: hosts },
    http_filters: [...filters, ROUTER],
  });
}

export function oneHostCluster(name: string, port: number, h2 = false): string {
  return stringify({
    name,
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ...(h2
      ? { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } }
      : {}),
  });
}
