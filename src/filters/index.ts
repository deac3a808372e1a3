// Registers every built-in extension. Called explicitly at start-up (main thread and workers);
// importing a filter module never registers it.

import type { ExtensionRegistry } from './registry.ts';
import { register as registerHcm } from './network/http_connection_manager/index.ts';
import { registerTcpProxy } from './network/tcp_proxy/index.ts';
import { register as registerRouter } from './http/router/index.ts';
import { register as registerFault } from './http/fault/index.ts';
import { register as registerLocalRateLimit } from './http/local_ratelimit/index.ts';
import { register as registerNetworkLocalRateLimit } from './network/local_ratelimit/index.ts';
import { register as registerConnectionLimit } from './network/connection_limit/index.ts';
import { registerTlsInspector } from './listener/tls_inspector/index.ts';
import { registerHttpInspector } from './listener/http_inspector/index.ts';
import { registerOriginalDst } from './listener/original_dst/index.ts';
import { registerProxyProtocol } from './listener/proxy_protocol/index.ts';
import { registerTlsTransportSocket } from './transport_sockets/tls/index.ts';
import { registerRawBuffer } from './transport_sockets/raw_buffer/index.ts';
import { register as registerHttpRbac } from './http/rbac/index.ts';
import { register as registerHeaderMutation } from './http/header_mutation/index.ts';
import { register as registerCors } from './http/cors/index.ts';
import { register as registerHealthCheck } from './http/health_check/index.ts';
import { register as registerExtAuthz } from './http/ext_authz/index.ts';
import { register as registerGrpcStats } from './http/grpc_stats/index.ts';
import { register as registerGrpcWeb } from './http/grpc_web/index.ts';
import { register as registerJwtAuthn } from './http/jwt_authn/index.ts';
import { register as registerRateLimit } from './http/ratelimit/index.ts';
import { register as registerHeaderToMetadata } from './http/header_to_metadata/index.ts';
import { register as registerBuffer } from './http/buffer/index.ts';
import { register as registerCompressor } from './http/compressor/index.ts';
import { register as registerNetworkExtAuthz } from './network/ext_authz/index.ts';
import { register as registerNetworkRbac } from './network/rbac/index.ts';
import { register as registerHttpWasm } from './http/wasm/index.ts';
import { register as registerNetworkWasm } from './network/wasm/index.ts';

const registered = new WeakSet<ExtensionRegistry>();

export function registerBuiltins(registry: ExtensionRegistry): void {
  if (registered.has(registry)) return;
  registered.add(registry);
  registerHcm(registry);
  registerTcpProxy(registry);
  registerRouter(registry);
  registerFault(registry);
  registerLocalRateLimit(registry);
  registerNetworkLocalRateLimit(registry);
  registerConnectionLimit(registry);
  registerTlsInspector(registry);
  registerHttpInspector(registry);
  registerOriginalDst(registry);
  registerProxyProtocol(registry);
  registerTlsTransportSocket(registry);
  registerRawBuffer(registry);
  registerHttpRbac(registry);
  registerHeaderMutation(registry);
  registerCors(registry);
  registerHealthCheck(registry);
  registerExtAuthz(registry);
  registerGrpcStats(registry);
  registerGrpcWeb(registry);
  registerJwtAuthn(registry);
  registerRateLimit(registry);
  registerHeaderToMetadata(registry);
  registerBuffer(registry);
  registerCompressor(registry);
  registerNetworkExtAuthz(registry);
  registerNetworkRbac(registry);
  registerHttpWasm(registry);
  registerNetworkWasm(registry);
}
