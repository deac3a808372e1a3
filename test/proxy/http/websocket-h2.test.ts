// WebSocket over HTTP/2 (RFC 8441 extended CONNECT) through the real connection manager and router:
// an h2c client's CONNECT with `:protocol: websocket` reaches a real HTTP/1.1 WebSocket server as an
// Upgrade request (its handshake computed as RFC 6455 says), the server's 101 comes back as 200, and
// masked frames go one way and unmasked ones back through the stream. Without allow_connect the
// setting is not offered; an upgrade the HCM does not allow is 403.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { startProxy, type Proxy } from '../../filters/http/router/proxy-harness.ts';
import { filtersHcm, oneHostCluster } from '../../helpers/filter-hcm.ts';
import { H2_CODECS, withH2Codec } from '../../helpers/h2-codec.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const accept = (key: string): string => createHash('sha1').update(key + GUID).digest('base64');

/** One WebSocket frame, FIN set, text opcode; masked as a client must. */
function frame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  const mask = masked ? randomBytes(4) : Buffer.alloc(0);
  const head = Buffer.from([0x81, (masked ? 0x80 : 0) | payload.length]);
  const body = masked ? payload.map((b, i) => b ^ mask[i % 4]!) : payload;
  return Buffer.concat([head, mask, body]);
}

/** Frames in `buf` (payloads under 126 bytes), unmasked. */
function parse(buf: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i + 2 <= buf.length; ) {
    const masked = (buf[i + 1]! & 0x80) !== 0;
    const len = buf[i + 1]! & 0x7f;
    const mask = masked ? buf.subarray(i + 2, i + 6) : undefined;
    const start = i + 2 + (masked ? 4 : 0);
    const payload = buf.subarray(start, start + len);
    out.push(Buffer.from(mask ? payload.map((b, j) => b ^ mask[j % 4]!) : payload).toString());
    i = start + len;
  }
  return out;
}

/** A WebSocket echo server on HTTP/1.1: answers the handshake, echoes each text frame as `echo:<text>`. */
async function wsServer(): Promise<{ port: number; upgrades: http.IncomingMessage[]; sockets: Socket[]; close(): void }> {
  const upgrades: http.IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const socketList: Socket[] = [];
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    upgrades.push(req);
    sockets.add(socket);
    socketList.push(socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    socket.on('data', (d: Buffer) => {
      for (const text of parse(d)) socket.write(frame(`echo:${text}`, false));
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    upgrades,
    sockets: socketList,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function hcm(allowConnect: boolean, upgrades: boolean): string {
  return filtersHcm([], { routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }, {
    ...(upgrades ? { upgrade_configs: [{ upgrade_type: 'websocket' }] } : {}),
    http2_protocol_options: { allow_connect: allowConnect },
  });
}

async function connect(proxy: Proxy): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  await once(s, 'remoteSettings');
  return s;
}

for (const codec of H2_CODECS) {
test(`${codec}: extended CONNECT: the WebSocket handshake reaches an HTTP/1.1 server as an upgrade; 200 back; frames both ways, the first sent before the upstream agreed`, { timeout: 20_000 }, async () => {
  const ws = await wsServer();
  const proxy = await withH2Codec(codec, () => startProxy(hcm(true, true), [oneHostCluster('ws', ws.port)]));
  const session = await connect(proxy);
  try {
    assert.equal(session.remoteSettings.enableConnectProtocol, true, 'allow_connect offers SETTINGS_ENABLE_CONNECT_PROTOCOL');
    const key = randomBytes(16).toString('base64');
    const st = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat?room=1', ':authority': 'chat.example', 'sec-websocket-version': '13', 'sec-websocket-key': key }, { endStream: false });
    // Written before the response: held until the tunnel is open, then delivered first.
    st.write(frame('zero', true));
    const [headers] = (await once(st, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    assert.equal(headers['sec-websocket-accept'], accept(key), 'the server’s handshake answer comes through');
    assert.equal(headers['upgrade'], undefined);
    const seen = ws.upgrades[0]!;
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/chat?room=1');
    assert.equal(seen.headers['upgrade'], 'websocket');
    assert.equal(seen.headers['host'], 'chat.example');
    const got: string[] = [];
    const three = new Promise<void>((resolve) => {
      st.on('data', (d: Buffer) => {
        got.push(...parse(d));
        if (got.length >= 4) resolve();
      });
    });
    for (const m of ['one', 'two', 'three']) st.write(frame(m, true));
    await three;
    assert.deepEqual(got, ['echo:zero', 'echo:one', 'echo:two', 'echo:three']);
    // The client's END_STREAM reaches the server as a FIN; its close ends the stream.
    const serverSocket = ws.sockets[0]!;
    const fin = once(serverSocket, 'end');
    st.end();
    await fin;
    const ended = once(st, 'close');
    serverSocket.end();
    await ended;
    st.close();
    assert.equal(proxy.counter('cluster.ws.upstream_rq_101'), 1);
  } finally {
    session.close();
    await proxy.close();
    ws.close();
  }
});
}

test('without allow_connect the setting is not offered; an upgrade the HCM does not allow is 403', { timeout: 20_000 }, async () => {
  const ws = await wsServer();
  const off = await startProxy(hcm(false, true), [oneHostCluster('ws', ws.port)]);
  const noUpgrade = await startProxy(hcm(true, false), [oneHostCluster('ws', ws.port)]);
  const s1 = await connect(off);
  const s2 = await connect(noUpgrade);
  try {
    assert.notEqual(s1.remoteSettings.enableConnectProtocol, true);
    const st = s2.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat', ':authority': 'chat.example', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') }, { endStream: false });
    const [headers] = (await once(st, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 403);
    assert.equal(ws.upgrades.length, 0);
  } finally {
    s1.close();
    s2.close();
    await off.close();
    await noUpgrade.close();
    ws.close();
  }
});
