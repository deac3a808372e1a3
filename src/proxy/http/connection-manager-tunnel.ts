// The byte tunnel of an upgraded HTTP/1.1 stream (WebSocket): downstream ↔ upstream with
// backpressure (pipe), bytes counted into StreamInfo; either side closing or failing ends both.

import type { Duplex } from 'node:stream';
import type { StreamInfo } from './stream-info.ts';

export function openTunnel(down: Duplex, downHead: Buffer, up: Duplex, upHead: Buffer, info: StreamInfo, onClose: () => void): void {
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    down.destroy();
    up.destroy();
    onClose();
  };
  down.on('data', (d: Buffer) => (info.bytesReceived += d.length));
  up.on('data', (d: Buffer) => (info.bytesSent += d.length));
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
}
