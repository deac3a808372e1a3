// Test helper: real upstream servers on 127.0.0.1 (HTTP/1.1 and h2c) that echo what they got.

import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface Upstream {
  readonly port: number;
  /** Requests seen, in order. */
  readonly seen: Array<{ method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string }>;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

const echo: Handler = (req, res, body) => {
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-upstream', 'h1');
  res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: body.toString() }));
};

export async function startHttp1Upstream(handler: Handler = echo): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: body.toString() });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export async function startHttp2Upstream(): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const h: Record<string, string | string[] | undefined> = {};
      for (const [k, v] of Object.entries(headers)) h[k] = v as string | string[] | undefined;
      seen.push({ method: String(headers[':method']), path: String(headers[':path']), headers: h, body });
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': 'h2' });
      stream.end(JSON.stringify({ method: headers[':method'], path: headers[':path'], headers: h, body }));
    });
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}
