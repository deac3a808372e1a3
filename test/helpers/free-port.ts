import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A port on 127.0.0.1 that nothing listens on, for a listener a test must name before it starts
 * (a config file, an xDS resource).
 *
 * Not `listen(0)`: the kernel hands that out of the ephemeral range, the same range every
 * outgoing connection of every test running in parallel takes its local port from, so between
 * close and the proxy's bind another process's client socket could hold it (EADDRINUSE; seen
 * once in CI). The port is drawn at random below the ephemeral range, where only ports named
 * explicitly live, checked by binding it, and never handed out twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = BELOW_EPHEMERAL - 1 - Math.floor(Math.random() * SPAN);
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free port in ${BELOW_EPHEMERAL - SPAN}..${BELOW_EPHEMERAL - 1} after 50 tries`);
}

const SPAN = 10_000;
const BELOW_EPHEMERAL = ephemeralLow();
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > SPAN + 1024) return low;
  } catch {
    // Not Linux: the IANA dynamic range starts at 49152.
  }
  return 49_152;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}
