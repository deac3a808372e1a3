// The two places legate reaches into node:tls internals, kept here so a Node upgrade has one
// file to check. A server TLSSocket made without a tls.Server (as the listener does, to wrap a
// socket its listener filters already peeked at) gets neither of these from the public API.

import type { TLSSocket } from 'node:tls';

interface TlsSocketInternals {
  _handle?: { verifyError?: () => (Error & { code?: string }) | null } | null;
  _releaseControl?: () => boolean;
}

/**
 * OpenSSL's verdict on the peer's chain (the code, e.g. `CERT_HAS_EXPIRED`), null when it
 * verified. `undefined` when node does not expose it: the caller verifies the chain itself.
 */
export function opensslVerifyError(socket: TLSSocket): string | null | undefined {
  const h = (socket as unknown as TlsSocketInternals)._handle;
  if (!h || typeof h.verifyError !== 'function') return undefined;
  const e = h.verifyError();
  return e ? (e.code ?? e.message) : null;
}

/**
 * What tls.Server does once a server socket is handed over: TLS errors after the handshake are
 * emitted as 'error' from then on (before, node only emits its internal `_tlsError`).
 */
export function releaseControl(socket: TLSSocket): void {
  (socket as unknown as TlsSocketInternals)._releaseControl?.();
}
