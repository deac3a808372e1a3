// Test helper for circuit breakers: an upstream (HTTP/1.1 or h2c) that holds every request until
// released and counts its connections, and downstream clients that really run requests in parallel
// (HTTP/1.1: one connection per request; HTTP/2: one session, many streams).

import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';

export interface HoldingUpstream {
  readonly port: number;
  /** Requests waiting for release(). */
  held(): number;
  /** Requests seen in total. */
  seen(): number;
  /** TCP connections accepted in total, and open now. */
  connections(): number;
  openConnections(): number;
  /** Answers every held request 200 `ok`; later requests are answered at once. */
  release(): void;
  close(): Promise<void>;
}

export async function startHoldingUpstream(protocol: 'http1' | 'http2'): Promise<HoldingUpstream> {
  const held: Array<() => void> = [];
  let seen = 0;
  let accepted = 0;
  const open = new Set<Socket>();
  let released = false;
  const hold = (answer: () => void): void => {
    seen++;
    if (released) answer();
    else held.push(answer);
  };
  let server: http.Server | http2.Http2Server;
  const sessions = new Set<http2.ServerHttp2Session>();
  if (protocol === 'http1') {
    const s = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      req.on('end', () => hold(() => res.end('ok')));
    });
    server = s;
  } else {
    const s = http2.createServer();
    s.on('session', (sess) => {
      sessions.add(sess);
      sess.on('close', () => sessions.delete(sess));
    });
    s.on('stream', (stream) => {
      stream.resume();
      stream.on('end', () =>
        hold(() => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        }),
      );
    });
    server = s;
  }
  server.on('connection', (sock: Socket) => {
    accepted++;
    open.add(sock);
    sock.on('close', () => open.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    held: () => held.length,
    seen: () => seen,
    connections: () => accepted,
    openConnections: () => open.size,
    release() {
      released = true;
      for (const a of held.splice(0)) a();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * `n` requests at once to 127.0.0.1:port; resolves with every reply (in completion order). HTTP/2
 * spreads the streams over `h2Sessions` sessions (several connections reach several workers).
 */
export function parallel(kind: 'h1' | 'h2', port: number, n: number, path = '/', headers: Record<string, string> = {}, h2Sessions = 1): { replies: Reply[]; done: Promise<Reply[]> } {
  const replies: Reply[] = [];
  const sessions: http2.ClientHttp2Session[] = [];
  if (kind === 'h2') {
    for (let i = 0; i < h2Sessions; i++) {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      s.on('error', () => {});
      sessions.push(s);
    }
  }
  let next = 0;
  const one = (): Promise<Reply> =>
    new Promise((resolve, reject) => {
      if (kind === 'h1') {
        const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
        return;
      }
      const stream = sessions[next++ % sessions.length]!.request({ ':path': path, ...headers });
      let status = 0;
      let h: Record<string, string | string[] | undefined> = {};
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (rh) => {
        status = Number(rh[':status']);
        h = rh as Record<string, string | string[] | undefined>;
      });
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve({ status, headers: h, body }));
      stream.on('error', reject);
    });
  const all = Array.from({ length: n }, () =>
    one().then((r) => {
      replies.push(r);
      return r;
    }),
  );
  const done = Promise.all(all).finally(() => {
    for (const s of sessions) s.close();
  });
  done.catch(() => {}); // a test that fails early never awaits it
  return { replies, done };
}

/** Polls `cond` every 10 ms until it holds (throws after `ms`). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
