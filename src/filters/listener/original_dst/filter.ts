// original_dst: restores a redirected connection's destination (iptables REDIRECT / DNAT) as its
// local address, read with getsockopt(SO_ORIGINAL_DST): filter-chain matching (destination_port,
// prefix_ranges), %DOWNSTREAM_LOCAL_ADDRESS%, ORIGINAL_DST clusters and a listener's
// use_original_dst hand-off then see the original destination. A connection without one (not
// NATed, no conntrack entry) keeps its own address, as in Envoy; it is never closed here.

import type { Socket } from 'node:net';
import { logger } from '../../../proxy/log.ts';
import type { ListenerFilter, MutableMatchInput } from '../../../proxy/listener/listener-filters.ts';
import { originalDestination } from '../../../native/original-dst/index.ts';

const log = logger('filter');

export class OriginalDst implements ListenerFilter {
  onAccept(socket: Socket, input: MutableMatchInput): Promise<void> {
    restoreOriginalDst(socket, input);
    return Promise.resolve();
  }
}

/** Sets `input`'s destination to the socket's original one, when it has one; true when it did. */
export function restoreOriginalDst(socket: Socket, input: MutableMatchInput): boolean {
  const r = originalDestination(socket);
  if (!r.ok) {
    log.debug(`original_dst: no original destination for ${input.sourceIp}:${input.sourcePort}: ${r.reason}`);
    return false;
  }
  input.destinationIp = r.address.startsWith('::ffff:') && r.address.includes('.') ? r.address.slice(7) : r.address;
  input.destinationPort = r.port;
  input.localAddressRestored = true;
  return true;
}
