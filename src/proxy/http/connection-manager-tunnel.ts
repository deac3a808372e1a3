// Upgraded HTTP/1.1 streams (WebSocket): which filter chain an upgrade runs through (or none: it
// is refused), and the byte tunnel once the upstream agreed: downstream <-> upstream with
// backpressure (pipe), bytes counted into StreamInfo; either side closing or failing ends both.

import type { Duplex } from 'node:stream';
import type { StreamInfo } from './stream-info.ts';
import type { RouteEntry } from './route-types.ts';
import type { RuntimeFilter, StreamOwner } from './connection-manager-types.ts';

type RouteUpgradeConfigs = { upgrade_configs?: { upgrade_type: string; enabled: { value: boolean } | null }[] } | undefined;

/**
 * The filter chain for an upgrade of `type` (lowercase) on `route`, as Envoy decides it: the
 * route's upgrade_configs entry, when present, enables or disables it; otherwise the HCM's does.
 * undefined: the upgrade is not allowed (403).
 */
export function upgradeFilterChain(owner: StreamOwner, route: RouteEntry | undefined, type: string): readonly RuntimeFilter[] | undefined {
  let routeEnabled = false;
  const action = route?.action;
  const routeCfgs = action?.kind === 'route' ? (action.raw as RouteUpgradeConfigs)?.upgrade_configs : undefined;
  const rc = routeCfgs?.find((u) => u.upgrade_type.toLowerCase() === type);
  if (rc) {
    if (rc.enabled && !rc.enabled.value) return undefined;
    routeEnabled = true;
  }
  const hcm = owner.cfg.upgradeConfigs.find((u) => u.upgradeType === type);
  if ((!hcm || !hcm.enabled) && !routeEnabled) return undefined;
  return owner.upgradeFilters.get(type) ?? owner.filters;
}

/**
 * Pipes the two sockets both ways until either closes; `onActivity` on every chunk (the stream's
 * idle timer). Returns a function that closes the tunnel (both sockets), as a timeout does.
 */
export function openTunnel(down: Duplex, downHead: Buffer, up: Duplex, upHead: Buffer, info: StreamInfo, onClose: () => void, onActivity: () => void): () => void {
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    down.destroy();
    up.destroy();
    onClose();
  };
  down.on('data', (d: Buffer) => {
    info.bytesReceived += d.length;
    onActivity();
  });
  up.on('data', (d: Buffer) => {
    info.bytesSent += d.length;
    onActivity();
  });
  for (const s of [down, up]) {
    s.on('error', close);
    s.on('close', close);
  }
  // A half-close is forwarded (pipe ends the other side); the tunnel ends when both are closed.
  down.on('end', () => up.end());
  up.on('end', () => down.end());
  if (upHead.length > 0) {
    info.bytesSent += upHead.length;
    down.write(upHead);
  }
  if (downHead.length > 0) {
    info.bytesReceived += downHead.length;
    up.write(downHead);
  }
  down.pipe(up, { end: false });
  up.pipe(down, { end: false });
  down.resume();
  up.resume();
  return close;
}
