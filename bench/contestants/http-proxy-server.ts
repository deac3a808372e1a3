// node-http-proxy (`http-proxy`) with a keep-alive agent, as the suite runs it.
// `node bench/contestants/http-proxy-server.ts <listen-port> <upstream-port>`.

import http from 'node:http';
import httpProxy from 'http-proxy';

const [listenPort = '0', upstreamPort = '0'] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 60_000 });
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
  else res.destroy();
});
const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 120_000;
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(Number(listenPort), '127.0.0.1', () => process.stdout.write('listening\n'));
