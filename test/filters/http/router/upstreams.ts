// Test upstreams for the router: one request handler served over HTTP/1.1 (node:http) or h2c
// (node:http2 compatibility API), on 127.0.0.1, tracking connections and closed requests.

import http from 'node:http';
import net from 'node:net';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';

export type Req = http.IncomingMessage | http2.Http2ServerRequest;
/** Both servers' responses, typed as node:http's (the HTTP/2 compatibility API has the same shape). */
export type Res = http.ServerResponse;
export type Handler = (req: Req, res: Res) => void;

export interface TestUpstream {
  readonly port: number;
  readonly protocol: 'http1' | 'http2';
  /** Connections accepted. */
  connections: number;
  /** Requests whose downstream side (the router) went away before the response ended. */
  aborted: number;
  close(): Promise<void>;
}

export async function startUpstream(protocol: 'http1' | 'http2', handler: Handler): Promise<TestUpstream> {
  const sockets = new Set<Socket>();
  const server = protocol === 'http1' ? http.createServer({ keepAliveTimeout: 30_000 }) : http2.createServer();
  const up: TestUpstream = {
    port: 0,
    protocol,
    connections: 0,
    aborted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s: Socket) => {
    up.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('request', (req: Req, res: Res | http2.Http2ServerResponse) => {
    const r = res as Res;
    r.on('close', () => {
      if (!r.writableEnded) up.aborted++;
    });
    handler(req, r);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (up as { port: number }).port = (server.address() as AddressInfo).port;
  return up;
}

/** A port nothing listens on. */
/** Does a connection to 127.0.0.1:port get refused? */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(false)));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/**
 * A port on 127.0.0.1 where connections are refused. A privileged port nothing here listens on
 * (tests never bind one), checked; not a just-closed ephemeral port, which a server another test
 * file starts at the same moment may take (seen once in a CI run: a 200 where a 503 was due).
 */
export async function closedPort(): Promise<number> {
  for (const port of [1, 9, 13, 17, 19]) if (await refuses(port)) return port;
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function readBody(req: Req): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
