// Registration of envoy.transport_sockets.tls (explicit call, no import side effects): the
// DownstreamTlsContext (filter chains) and UpstreamTlsContext (clusters) forms. The listener and
// the cluster manager call src/proxy/tls/transport-sockets.ts directly; these specs let
// resolveExtension, validation and the extension list know the extension.

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import type { DownstreamTlsContext__Output } from '../../../generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.ts';
import type { UpstreamTlsContext__Output } from '../../../generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.ts';
import { parseDownstreamTlsContext, parseUpstreamTlsContext, type DownstreamTlsConfig, type UpstreamTlsConfig } from '../../../proxy/tls/context-config.ts';
import { createClientTransportSocket, createServerTransportSocket, DOWNSTREAM_TLS_TYPE, TLS_NAME, UPSTREAM_TLS_TYPE } from '../../../proxy/tls/transport-sockets.ts';
import type { ClientTransportSocket, ServerTransportSocket } from '../../../proxy/tls/types.ts';

export const downstreamTlsSpec: ExtensionSpec<DownstreamTlsConfig, ServerTransportSocket> = {
  name: TLS_NAME,
  aliases: ['tls'],
  protoType: DOWNSTREAM_TLS_TYPE,
  category: 'transport_socket',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream_and_upstream',
  parse: (message, ctx) => parseDownstreamTlsContext(message as DownstreamTlsContext__Output, ctx),
  factory: (config, ctx) => createServerTransportSocket(config, { stats: ctx.stats, secrets: ctx.secrets }),
};

export const upstreamTlsSpec: ExtensionSpec<UpstreamTlsConfig, ClientTransportSocket> = {
  name: TLS_NAME,
  aliases: ['tls'],
  protoType: UPSTREAM_TLS_TYPE,
  category: 'transport_socket',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream_and_upstream',
  parse: (message, ctx) => parseUpstreamTlsContext(message as UpstreamTlsContext__Output, ctx),
  factory: (config, ctx) => createClientTransportSocket(config, { stats: ctx.stats, secrets: ctx.secrets }),
};

export function registerTlsTransportSocket(registry: ExtensionRegistry): void {
  registry.register(upstreamTlsSpec);
  registry.register(downstreamTlsSpec);
}
