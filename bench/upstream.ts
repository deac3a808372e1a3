// The suite's upstream, run as its own process (pinned with the load generator): HTTP/1.1 on one
// port and h2c (for the `direct` HTTP/2 baseline) on another; GET /<n> answers n bytes (12, 1024,
// 65536…), anything else 12 B. Prints `{"h1":port,"h2":port}` on stdout once listening.

import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';

const bodies = new Map<string, Buffer>();
const bodyFor = (path: string | undefined): Buffer => {
  const key = path ?? '/';
  let b = bodies.get(key);
  if (!b) {
    const n = Number(key.slice(1));
    b = Buffer.alloc(Number.isInteger(n) && n > 0 && n <= 1 << 20 ? n : 12, 'x');
    if (bodies.size < 64) bodies.set(key, b);
  }
  return b;
};

const h1 = http.createServer((req, res) => {
  const b = bodyFor(req.url);
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': b.length });
  res.end(b);
});
h1.keepAliveTimeout = 120_000;
h1.headersTimeout = 0;
h1.requestTimeout = 0;
h1.maxRequestsPerSocket = 0;
const h2 = http2.createServer();
h2.on('stream', (stream, headers) => {
  const b = bodyFor(headers[':path']);
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': b.length });
  stream.end(b);
});
await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
process.stdout.write(`${JSON.stringify({ h1: (h1.address() as net.AddressInfo).port, h2: (h2.address() as net.AddressInfo).port })}\n`);
