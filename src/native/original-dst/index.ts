// SO_ORIGINAL_DST from Node: the Node-API addon beside this file (original_dst.c), built by
// `npm install` (scripts/build-native.sh). Loaded on first use; when it was not built (no C
// compiler on the machine), every lookup answers why, and callers carry on as Envoy does when
// getsockopt fails: with the address the socket has.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

interface Addon {
  originalDst(fd: number, family: 4 | 6): [string, number] | number;
}

export type OriginalDstResult =
  | { readonly ok: true; readonly address: string; readonly port: number }
  | { readonly ok: false; readonly reason: string };

const ADDON_PATH = './build/Release/original_dst.node';
let addon: Addon | Error | undefined;

function load(): Addon | Error {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (e) {
    addon = new Error(`the SO_ORIGINAL_DST addon is not built (src/native/original-dst; run \`npm run build:native\`): ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  return addon;
}

/** Why original destinations cannot be read on this machine; undefined when they can. */
export function originalDstUnavailable(): string | undefined {
  const a = load();
  return a instanceof Error ? a.message : undefined;
}

/** Node's TCP handle keeps its file descriptor here (Unix). */
function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * The connection's destination before NAT (iptables REDIRECT / DNAT): getsockopt(SO_ORIGINAL_DST),
 * or IP6T_SO_ORIGINAL_DST on an IPv6 socket. Fails with the reason (no conntrack entry: ENOENT).
 */
export function originalDestination(socket: Socket): OriginalDstResult {
  const a = load();
  if (a instanceof Error) return { ok: false, reason: a.message };
  const fd = fdOf(socket);
  if (fd === undefined) return { ok: false, reason: 'the socket has no file descriptor' };
  const local = socket.localAddress ?? '';
  const family = local.includes(':') && !local.startsWith('::ffff:') ? 6 : 4;
  const r = a.originalDst(fd, family);
  if (typeof r === 'number') return { ok: false, reason: `getsockopt(SO_ORIGINAL_DST) failed: errno ${r}` };
  return { ok: true, address: r[0], port: r[1] };
}
