// The stream's peers as Istio's filters leave them in filter state: `downstream_peer` (who sent the
// request) and `upstream_peer` (who answered), set once each by istio.metadata_exchange and read by
// istio.stats.

import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import { PeerMetadata, type WorkloadMetadata } from './workload.ts';

export type PeerKey = 'downstream_peer' | 'upstream_peer';

/** Records a peer unless one is already there (Istio keeps the first: "Duplicate peer metadata, skipping"). */
export function setPeer(info: StreamInfo, key: PeerKey, w: WorkloadMetadata): void {
  const fs = (info.filterState ??= new Map());
  if (!fs.has(key)) fs.set(key, new PeerMetadata(w));
}

export function peerOf(info: StreamInfo, key: PeerKey): WorkloadMetadata | undefined {
  const v = info.filterState?.get(key);
  return v instanceof PeerMetadata ? v.workload : undefined;
}
