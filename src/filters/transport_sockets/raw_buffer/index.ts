// Registration of envoy.transport_sockets.raw_buffer: plaintext, no config, no runtime object
// (a connection without TLS needs nothing from a transport socket).

import type { ExtensionRegistry, ExtensionSpec } from '../../registry.ts';
import { ok } from '../../../config/result.ts';
import { RAW_BUFFER_NAME, RAW_BUFFER_TYPE } from '../../../proxy/tls/transport-sockets.ts';

export const rawBufferSpec: ExtensionSpec<undefined, undefined> = {
  name: RAW_BUFFER_NAME,
  aliases: ['raw_buffer'],
  protoType: RAW_BUFFER_TYPE,
  category: 'transport_socket',
  status: 'stable',
  securityPosture: 'robust_to_untrusted_downstream_and_upstream',
  parse: () => ok(undefined),
  factory: () => undefined,
};

export function registerRawBuffer(registry: ExtensionRegistry): void {
  registry.register(rawBufferSpec);
}
