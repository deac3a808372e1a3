// Registers every built-in extension by its metadata (Envoy's extensions_metadata.yaml: names,
// type, category, status, security posture); an extension's module is loaded, with a synchronous
// require, when a config first names it (ExtensionRegistry.find). Called explicitly at start-up
// (main thread and workers); importing a filter module never registers it.

import { createRequire } from 'node:module';
import type { ExtensionMetadata, ExtensionRegistry } from './registry.ts';

/**
 * Loaded on first use rather than imported: every filter's code, source and compiled functions
 * stay out of a process whose config does not name it. With the quick-start config (HCM and
 * router only), idle RSS at --concurrency 2 went 92 -> 87 MB (both threads load less).
 */
const load = createRequire(import.meta.url);

interface Builtin {
  /** Requires the module and returns its register function. */
  readonly load: () => (registry: ExtensionRegistry) => void;
  /** What that register function registers (test/filters/builtins.test.ts checks the two agree). */
  readonly specs: readonly ExtensionMetadata[];
}

export const BUILTINS: readonly Builtin[] = [
  {
    load: () => (load('./network/http_connection_manager/index.ts') as typeof import('./network/http_connection_manager/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.http_connection_manager', aliases: ['envoy.http_connection_manager'], protoType: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', category: 'network', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./network/tcp_proxy/index.ts') as typeof import('./network/tcp_proxy/index.ts')).registerTcpProxy,
    specs: [
      { name: 'envoy.filters.network.tcp_proxy', aliases: ['envoy.tcp_proxy'], protoType: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', category: 'network', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/router/index.ts') as typeof import('./http/router/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.router', aliases: ['envoy.router'], protoType: 'envoy.extensions.filters.http.router.v3.Router', category: 'http', terminal: true, status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/fault/index.ts') as typeof import('./http/fault/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.fault', aliases: ['envoy.fault'], protoType: 'envoy.extensions.filters.http.fault.v3.HTTPFault', category: 'http', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./http/local_ratelimit/index.ts') as typeof import('./http/local_ratelimit/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.local_ratelimit', protoType: 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./network/local_ratelimit/index.ts') as typeof import('./network/local_ratelimit/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.local_ratelimit', protoType: 'envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit', category: 'network', terminal: false, status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./network/connection_limit/index.ts') as typeof import('./network/connection_limit/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.connection_limit', protoType: 'envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit', category: 'network', terminal: false, status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./listener/tls_inspector/index.ts') as typeof import('./listener/tls_inspector/index.ts')).registerTlsInspector,
    specs: [
      { name: 'envoy.filters.listener.tls_inspector', aliases: ['envoy.listener.tls_inspector'], protoType: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector', category: 'listener', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./listener/http_inspector/index.ts') as typeof import('./listener/http_inspector/index.ts')).registerHttpInspector,
    specs: [
      { name: 'envoy.filters.listener.http_inspector', aliases: ['envoy.listener.http_inspector'], protoType: 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector', category: 'listener', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./listener/original_dst/index.ts') as typeof import('./listener/original_dst/index.ts')).registerOriginalDst,
    specs: [
      { name: 'envoy.filters.listener.original_dst', aliases: ['envoy.listener.original_dst'], protoType: 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst', category: 'listener', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./listener/proxy_protocol/index.ts') as typeof import('./listener/proxy_protocol/index.ts')).registerProxyProtocol,
    specs: [
      { name: 'envoy.filters.listener.proxy_protocol', aliases: ['envoy.listener.proxy_protocol'], protoType: 'envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol', category: 'listener', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./transport_sockets/tls/index.ts') as typeof import('./transport_sockets/tls/index.ts')).registerTlsTransportSocket,
    specs: [
      { name: 'envoy.transport_sockets.tls', aliases: ['tls'], protoType: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', category: 'transport_socket', status: 'stable', securityPosture: 'robust_to_untrusted_downstream_and_upstream' },
      { name: 'envoy.transport_sockets.tls', aliases: ['tls'], protoType: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', category: 'transport_socket', status: 'stable', securityPosture: 'robust_to_untrusted_downstream_and_upstream' },
    ],
  },
  {
    load: () => (load('./transport_sockets/raw_buffer/index.ts') as typeof import('./transport_sockets/raw_buffer/index.ts')).registerRawBuffer,
    specs: [
      { name: 'envoy.transport_sockets.raw_buffer', aliases: ['raw_buffer'], protoType: 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer', category: 'transport_socket', status: 'stable', securityPosture: 'robust_to_untrusted_downstream_and_upstream' },
    ],
  },
  {
    load: () => (load('./http/rbac/index.ts') as typeof import('./http/rbac/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.rbac', protoType: 'envoy.extensions.filters.http.rbac.v3.RBAC', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/header_mutation/index.ts') as typeof import('./http/header_mutation/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.header_mutation', protoType: 'envoy.extensions.filters.http.header_mutation.v3.HeaderMutation', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream_and_upstream' },
    ],
  },
  {
    load: () => (load('./http/cors/index.ts') as typeof import('./http/cors/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.cors', aliases: ['envoy.cors'], protoType: 'envoy.extensions.filters.http.cors.v3.Cors', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/health_check/index.ts') as typeof import('./http/health_check/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.health_check', aliases: ['envoy.health_check'], protoType: 'envoy.extensions.filters.http.health_check.v3.HealthCheck', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/ext_authz/index.ts') as typeof import('./http/ext_authz/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.ext_authz', aliases: ['envoy.ext_authz'], protoType: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/grpc_stats/index.ts') as typeof import('./http/grpc_stats/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.grpc_stats', protoType: 'envoy.extensions.filters.http.grpc_stats.v3.FilterConfig', category: 'http', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./http/grpc_web/index.ts') as typeof import('./http/grpc_web/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.grpc_web', aliases: ['envoy.grpc_web'], protoType: 'envoy.extensions.filters.http.grpc_web.v3.GrpcWeb', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/jwt_authn/index.ts') as typeof import('./http/jwt_authn/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.jwt_authn', protoType: 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/ratelimit/index.ts') as typeof import('./http/ratelimit/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.ratelimit', aliases: ['envoy.rate_limit'], protoType: 'envoy.extensions.filters.http.ratelimit.v3.RateLimit', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/header_to_metadata/index.ts') as typeof import('./http/header_to_metadata/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.header_to_metadata', protoType: 'envoy.extensions.filters.http.header_to_metadata.v3.Config', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/basic_auth/index.ts') as typeof import('./http/basic_auth/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.basic_auth', protoType: 'envoy.extensions.filters.http.basic_auth.v3.BasicAuth', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/buffer/index.ts') as typeof import('./http/buffer/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.buffer', aliases: ['envoy.buffer'], protoType: 'envoy.extensions.filters.http.buffer.v3.Buffer', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/compressor/index.ts') as typeof import('./http/compressor/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.compressor', protoType: 'envoy.extensions.filters.http.compressor.v3.Compressor', category: 'http', status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./network/ext_authz/index.ts') as typeof import('./network/ext_authz/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.ext_authz', aliases: ['envoy.ext_authz'], protoType: 'envoy.extensions.filters.network.ext_authz.v3.ExtAuthz', category: 'network', terminal: false, status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./network/rbac/index.ts') as typeof import('./network/rbac/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.rbac', protoType: 'envoy.extensions.filters.network.rbac.v3.RBAC', category: 'network', terminal: false, status: 'stable', securityPosture: 'robust_to_untrusted_downstream' },
    ],
  },
  {
    load: () => (load('./http/istio_metadata_exchange/index.ts') as typeof import('./http/istio_metadata_exchange/index.ts')).register,
    specs: [
      { name: 'istio.metadata_exchange', protoType: 'io.istio.http.peer_metadata.Config', category: 'http', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./http/istio_stats/index.ts') as typeof import('./http/istio_stats/index.ts')).register,
    specs: [
      { name: 'istio.stats', protoType: 'stats.PluginConfig', category: 'http', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./http/istio_alpn/index.ts') as typeof import('./http/istio_alpn/index.ts')).register,
    specs: [
      { name: 'istio.alpn', protoType: 'istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig', category: 'http', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./network/istio_stats/index.ts') as typeof import('./network/istio_stats/index.ts')).register,
    specs: [
      { name: 'istio.stats', protoType: 'stats.PluginConfig', category: 'network', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./network/istio_authn/index.ts') as typeof import('./network/istio_authn/index.ts')).register,
    specs: [
      { name: 'istio_authn', protoType: 'io.istio.network.authn.Config', category: 'network', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./network/istio_metadata_exchange/index.ts') as typeof import('./network/istio_metadata_exchange/index.ts')).register,
    specs: [
      { name: 'istio.metadata_exchange', protoType: 'envoy.tcp.metadataexchange.config.MetadataExchange', category: 'network', status: 'stable', securityPosture: 'unknown' },
      { name: 'istio.metadata_exchange', protoType: 'envoy.tcp.metadataexchange.config.MetadataExchange', category: 'upstream_network', status: 'stable', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./http/wasm/index.ts') as typeof import('./http/wasm/index.ts')).register,
    specs: [
      { name: 'envoy.filters.http.wasm', protoType: 'envoy.extensions.filters.http.wasm.v3.Wasm', category: 'http', status: 'alpha', securityPosture: 'unknown' },
    ],
  },
  {
    load: () => (load('./network/wasm/index.ts') as typeof import('./network/wasm/index.ts')).register,
    specs: [
      { name: 'envoy.filters.network.wasm', protoType: 'envoy.extensions.filters.network.wasm.v3.Wasm', category: 'network', terminal: false, status: 'alpha', securityPosture: 'unknown' },
    ],
  },
];

const registered = new WeakSet<ExtensionRegistry>();

export function registerBuiltins(registry: ExtensionRegistry): void {
  if (registered.has(registry)) return;
  registered.add(registry);
  for (const b of BUILTINS) for (const m of b.specs) registry.registerLazy(m, b.load);
}
