// The suite's upstream, run as its own process (pinned with the load generator): HTTP/1.1 on one
// port, h2c (for the `direct` HTTP/2 baseline) on another and, given certificate files, HTTPS on
// two more: `tls` (server certificate only) and `mtls` (requires a client certificate signed by the
// CA). GET /<n> answers n bytes (12, 1024, 65536…), anything else 12 B.
// `node bench/upstream.ts [<ca.crt> <server.crt> <server.key>]`; prints
// `{"h1":port,"h2":port,"tls":port,"mtls":port}` on stdout once listening (no tls/mtls without files).

import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
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

const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  const b = bodyFor(req.url);
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': b.length });
  res.end(b);
};
const longLived = <S extends http.Server>(s: S): S => {
  s.keepAliveTimeout = 120_000;
  s.headersTimeout = 0;
  s.requestTimeout = 0;
  s.maxRequestsPerSocket = 0;
  return s;
};
const h1 = longLived(http.createServer(handler));
const h2 = http2.createServer();
h2.on('stream', (stream, headers) => {
  const b = bodyFor(headers[':path']);
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': b.length });
  stream.end(b);
});
const listen = async (s: net.Server): Promise<number> => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
};
const ports: Record<string, number> = { h1: await listen(h1), h2: await listen(h2) };
const [caFile, certFile, keyFile] = process.argv.slice(2);
if (caFile && certFile && keyFile) {
  const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  ports.tls = await listen(longLived(https.createServer(tls, handler)));
  ports.mtls = await listen(longLived(https.createServer({ ...tls, ca: readFileSync(caFile), requestCert: true, rejectUnauthorized: true }, handler)));
}
process.stdout.write(`${JSON.stringify(ports)}\n`);
