// The minimal Node proxy (the floor any Node proxy has to beat): node:http server + undici
// Pool.stream, no framework. `node bench/contestants/minimal-proxy.ts <listen-port> <upstream-port> [<extra-json>]`;
// with extra-json ({h2, tls, mtlsUp, mtls, upstreamMtls, ca, serverCert, serverKey, clientCert, clientKey,
// servername}: ports and PEM file paths) it also serves h2c → plain upstream (`h2`, node:http2's core
// 'stream' API, not the compatibility layer), HTTPS → plain upstream (`tls`), plain → mTLS
// upstream (`mtlsUp`) and mTLS → mTLS upstream (`mtls`) with node:https and an undici Pool over TLS.
// `tcp`: a raw TCP proxy, each accepted socket piped to a new upstream connection and back
// (net + stream.pipe, what a Node TCP proxy is at its simplest): the floor for tcp_proxy.

import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Pool } from 'undici';

interface ExtraArgs { h2: number; tcp: number; tls: number; mtlsUp: number; mtls: number; upstreamMtls: number; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; servername: string }

const [listenPort = '0', upstreamPort = '0', extraJson] = process.argv.slice(2);
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

// h2c in: the same upstream request from the stream's pseudo-headers; hop-by-hop headers cannot
// appear in HTTP/2, so only the pseudo-headers are dropped.
function proxyH2(pool: Pool): (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void {
  return (stream, reqHeaders) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(reqHeaders)) if (v !== undefined && k[0] !== ':') headers[k] = v;
    headers.host = reqHeaders[':authority'] ?? '';
    const method = reqHeaders[':method'] ?? 'GET';
    const hasBody = method !== 'GET' && method !== 'HEAD';
    pool.stream(
      { path: reqHeaders[':path'] ?? '/', method: method as 'GET', headers, body: hasBody ? stream : null, opaque: stream },
      ({ statusCode, headers: h, opaque }) => {
        const out: http2.OutgoingHttpHeaders = { ':status': statusCode };
        for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
        // The client may have reset the stream meanwhile (h2load does at the end of its run).
        if (!opaque.destroyed) opaque.respond(out);
        return opaque;
      },
      (err) => {
        if (!err || stream.destroyed) return;
        if (stream.headersSent) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        else stream.respond({ ':status': 502 }, { endStream: true });
      },
    );
  };
}

/** The raw pipe: bytes both ways until either side ends or fails, then both are closed. */
function pipeTo(upstreamPort: number): (client: net.Socket) => void {
  return (client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    const close = (): void => void (client.destroy(), upstream.destroy());
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  };
}

function serve(server: http.Server, port: number): Promise<void> {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  return new Promise((r) => server.listen(port, '127.0.0.1', r));
}

const plainPool = new Pool(`http://127.0.0.1:${upstreamPort}`, POOL);
const plain = proxyTo(plainPool);
await serve(http.createServer(plain), Number(listenPort));
// Only `h2` or `tcp` given (bench/ab.ts --mode h2c / tcp): that listener alone besides the HTTP/1.1 one.
const extra = extraJson ? (JSON.parse(extraJson) as Partial<ExtraArgs>) : {};
if (extra.h2 !== undefined) {
  const h2 = http2.createServer();
  h2.on('stream', proxyH2(plainPool));
  await new Promise<void>((r) => h2.listen(extra.h2, '127.0.0.1', r));
}
if (extra.tcp !== undefined) {
  const tcp = net.createServer(pipeTo(Number(upstreamPort)));
  await new Promise<void>((r) => tcp.listen(extra.tcp, '127.0.0.1', r));
}
if (extra.tls !== undefined) {
  const t = extra as ExtraArgs;
  const ca = readFileSync(t.ca);
  const serverTls = { cert: readFileSync(t.serverCert), key: readFileSync(t.serverKey) };
  const mtls = proxyTo(new Pool(`https://127.0.0.1:${t.upstreamMtls}`, { ...POOL, connect: { ca, cert: readFileSync(t.clientCert), key: readFileSync(t.clientKey), servername: t.servername } }));
  await serve(https.createServer(serverTls, plain), t.tls);
  await serve(http.createServer(mtls), t.mtlsUp);
  await serve(https.createServer({ ...serverTls, ca, requestCert: true, rejectUnauthorized: true }, mtls), t.mtls);
}
process.stdout.write('listening\n');
