// The minimal Node proxy (the floor any Node proxy has to beat): node:http server + undici
// Pool.stream, no framework. `node bench/contestants/minimal-proxy.ts <listen-port> <upstream-port>`.

import http from 'node:http';
import { Pool } from 'undici';

const [listenPort = '0', upstreamPort = '0'] = process.argv.slice(2);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, keepAliveTimeout: 60_000 });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

const server = http.createServer((req, res) => {
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
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(Number(listenPort), '127.0.0.1', () => process.stdout.write('listening\n'));
