// The minimal Node proxy (the floor any Node proxy has to beat): node:http server + undici
// Pool.stream, no framework. `node bench/contestants/minimal-proxy.ts <listen-port> <upstream-port> [<tls-json>]`;
// with tls-json ({tls, mtlsUp, mtls, upstreamMtls, ca, serverCert, serverKey, clientCert, clientKey,
// servername}: ports and PEM file paths) it also serves HTTPS → plain upstream (`tls`), plain → mTLS
// upstream (`mtlsUp`) and mTLS → mTLS upstream (`mtls`) with node:https and an undici Pool over TLS.

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

interface TlsArgs { tls: number; mtlsUp: number; mtls: number; upstreamMtls: number; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; servername: string }

const [listenPort = '0', upstreamPort = '0', tlsJson] = process.argv.slice(2);
const POOL = { connections: 128, keepAliveTimeout: 60_000 };
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function proxyTo(pool: Pool): http.RequestListener {
  return (req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    pool.stream(
      { path: req.url ?? '/', method: req.method as 'GET', headers, body: hasBody ? req : null, opaque: res },
      ({ statusCode, headers: h, opaque }) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
        opaque.writeHead(statusCode, out);
        return opaque;
      },
      (err) => {
        if (!err) return;
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      },
    );
  };
}

function serve(server: http.Server, port: number): Promise<void> {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  return new Promise((r) => server.listen(port, '127.0.0.1', r));
}

const plain = proxyTo(new Pool(`http://127.0.0.1:${upstreamPort}`, POOL));
await serve(http.createServer(plain), Number(listenPort));
if (tlsJson) {
  const t = JSON.parse(tlsJson) as TlsArgs;
  const ca = readFileSync(t.ca);
  const serverTls = { cert: readFileSync(t.serverCert), key: readFileSync(t.serverKey) };
  const mtls = proxyTo(new Pool(`https://127.0.0.1:${t.upstreamMtls}`, { ...POOL, connect: { ca, cert: readFileSync(t.clientCert), key: readFileSync(t.clientKey), servername: t.servername } }));
  await serve(https.createServer(serverTls, plain), t.tls);
  await serve(http.createServer(mtls), t.mtlsUp);
  await serve(https.createServer({ ...serverTls, ca, requestCert: true, rejectUnauthorized: true }, mtls), t.mtls);
}
process.stdout.write('listening\n');
