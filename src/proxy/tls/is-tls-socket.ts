// Whether a socket is node:tls's TLSSocket, without importing node:tls: loading it sets up Node's
// TLS layer (idle RSS with the quick-start config 3.9 MB higher), which a config without TLS never
// uses. TLSSocket's constructor sets `encrypted = true` (node:http reads it the same way); a
// net.Socket has no such property.

import type { TLSSocket } from 'node:tls';

export function isTlsSocket(socket: object): socket is TLSSocket {
  return (socket as { encrypted?: unknown }).encrypted === true;
}
