// Envoy's `ssl.*` stats for one handshake, under the owner's prefix (`listener.<addr>.ssl.`,
// `cluster.<name>.ssl.`): success counters by version/cipher/curve, failures by reason.

import type { TLSSocket } from 'node:tls';
import type { StatsStore } from '../stats.ts';
import type { TlsFailureStat } from './types.ts';

/** Counter names Envoy creates for every TLS context, so they show as 0 before any handshake. */
const BASE = ['connection_error', 'handshake', 'session_reused', 'no_certificate', 'fail_verify_no_cert', 'fail_verify_error', 'fail_verify_san', 'fail_verify_cert_hash'] as const;

export function declareSslStats(stats: StatsStore, statPrefix: string): void {
  for (const n of BASE) stats.counter(`${statPrefix}ssl.${n}`);
}

export function countFailure(stats: StatsStore, statPrefix: string, stat: TlsFailureStat): void {
  stats.counter(`${statPrefix}ssl.${stat}`).inc();
}

/** A successful handshake: ssl.handshake, versions, ciphers, curves (client side: node reports the group only there), reuse, no_certificate. */
export function countHandshake(stats: StatsStore, statPrefix: string, socket: TLSSocket, peerCertPresented: boolean): void {
  const p = `${statPrefix}ssl.`;
  stats.counter(`${p}handshake`).inc();
  const version = socket.getProtocol();
  if (version) stats.counter(`${p}versions.${version}`).inc();
  const cipher = socket.getCipher()?.name;
  if (cipher) stats.counter(`${p}ciphers.${cipher}`).inc();
  const eph = socket.getEphemeralKeyInfo() as { name?: string } | null;
  if (eph && typeof eph.name === 'string' && eph.name) stats.counter(`${p}curves.${eph.name}`).inc();
  if (socket.isSessionReused()) stats.counter(`${p}session_reused`).inc();
  if (!peerCertPresented) stats.counter(`${p}no_certificate`).inc();
}
