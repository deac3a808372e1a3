// Listener-level behaviour of the real process: IPv6 listeners, filter chains chosen by
// http_inspector, access logs to a file, /drain_listeners and /quitquitquit, and the bundled config.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startLegate, runCli } from '../helpers/legate.ts';
import { hcm, socketAddress } from '../helpers/config.ts';

const direct = (body: string): object => ({ name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: body } } }] }] });

/** A direct_response route whose response names both ends of the connection, as Envoy's formatter prints them. */
const addresses = {
  name: 'r',
  virtual_hosts: [{
    name: 'v',
    domains: ['*'],
    routes: [{
      match: { prefix: '/' },
      direct_response: { status: 200, body: { inline_string: 'ok' } },
      response_headers_to_add: [{ header: { key: 'x-addresses', value: '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%' } }],
    }],
  }],
};

/** One HTTP/1.1 request on a raw socket: the response's x-addresses, and the socket's own two ends. */
async function addressesSeen(host: string, port: number): Promise<{ header: string; local: string; remote: string }> {
  const s = net.connect(port, host);
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  const local = s.address() as net.AddressInfo;
  const remote = { address: s.remoteAddress!, port: s.remotePort! };
  const bracket = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  s.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  let text = '';
  for await (const c of s) text += String(c);
  const header = /^x-addresses: (.*)$/im.exec(text)?.[1]?.trim() ?? '';
  return { header, local: `${bracket(local.address)}:${local.port}`, remote: `${bracket(remote.address)}:${remote.port}` };
}

async function ipv6Available(): Promise<boolean> {
  const s = net.createServer();
  return new Promise((r) => {
    s.once('error', () => r(false));
    s.listen(0, '::1', () => s.close(() => r(true)));
  });
}

test('an IPv6 listener on [::1] serves, named after its bound address', async (t) => {
  if (!(await ipv6Available())) return t.skip('no IPv6 loopback on this machine');
  const l = await startLegate({
    static_resources: { listeners: [{ name: 'v6', address: socketAddress(0, '::1'), filter_chains: [{ filters: [hcm(direct('six'))] }] }] },
    admin: { address: socketAddress(0) },
  });
  try {
    const port = await l.listenerPort('v6');
    const r = await request(`http://[::1]:${port}/`);
    assert.equal(await r.body.text(), 'six');
    const s = await l.stats();
    assert.equal(s[`listener.::1_${port}.downstream_cx_total`], 1);
  } finally {
    await l.stop();
  }
});

test('the connection\'s addresses: a listener on one IPv4 address (local address known without asking the socket) and on [::1]', async (t) => {
  const v6 = await ipv6Available();
  const l = await startLegate({
    static_resources: {
      listeners: [
        { name: 'v4', address: socketAddress(0, '127.0.0.1'), filter_chains: [{ filters: [hcm(addresses)] }] },
        ...(v6 ? [{ name: 'v6', address: socketAddress(0, '::1'), filter_chains: [{ filters: [hcm(addresses)] }] }] : []),
      ],
    },
    admin: { address: socketAddress(0) },
  });
  try {
    const port = await l.listenerPort('v4');
    const seen = await addressesSeen('127.0.0.1', port);
    // Our socket's remote end is the listener's local one, and the other way round.
    assert.equal(seen.header, `127.0.0.1:${port} ${seen.local}`);
    assert.equal(seen.remote, `127.0.0.1:${port}`);
    if (!v6) return t.diagnostic('no IPv6 loopback: the [::1] half is skipped');
    const port6 = await l.listenerPort('v6');
    const seen6 = await addressesSeen('::1', port6);
    assert.equal(seen6.header, `[::1]:${port6} ${seen6.local}`);
  } finally {
    await l.stop();
  }
});

test('http_inspector picks the filter chain by application protocol (h2c vs http/1.1)', async () => {
  const l = await startLegate({
    static_resources: {
      listeners: [
        {
          name: 'sniff',
          address: socketAddress(0),
          listener_filters: [{ name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector' } }],
          filter_chains: [
            { filter_chain_match: { application_protocols: ['h2c'] }, filters: [hcm(direct('chain-h2c'), { stat_prefix: 'h2c' })] },
            { filter_chain_match: { application_protocols: ['http/1.1'] }, filters: [hcm(direct('chain-h1'), { stat_prefix: 'h1' })] },
          ],
        },
      ],
    },
    admin: { address: socketAddress(0) },
  });
  try {
    const port = await l.listenerPort('sniff');
    const r = await request(`http://127.0.0.1:${port}/`);
    assert.equal(await r.body.text(), 'chain-h1');
    const body = await new Promise<string>((res, rej) => {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      s.on('error', rej);
      const req = s.request({ ':path': '/' });
      let d = '';
      req.on('data', (c: Buffer) => (d += c));
      req.on('end', () => {
        s.close();
        res(d);
      });
      req.end();
    });
    assert.equal(body, 'chain-h2c');
    const s = await l.stats();
    assert.equal(s['http.h1.downstream_rq_total'], 1);
    assert.equal(s['http.h2c.downstream_rq_total'], 1);
    assert.equal(s['http_inspector.http11_found'], 1);
    assert.equal(s['http_inspector.http2_found'], 1);
  } finally {
    await l.stop();
  }
});

test('access log written to a file in a custom format; /drain_listeners stops accepting; /quitquitquit exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-al-'));
  const logPath = join(dir, 'access.log');
  const accessLog = [
    {
      name: 'envoy.access_loggers.file',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
        path: logPath,
        log_format: { text_format_source: { inline_string: '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %PROTOCOL%\n' } },
      },
    },
  ];
  const l = await startLegate({
    static_resources: { listeners: [{ name: 'l', address: socketAddress(0), filter_chains: [{ filters: [hcm(direct('ok'), { access_log: accessLog })] }] }] },
    admin: { address: socketAddress(0) },
  });
  try {
    const port = await l.listenerPort('l');
    const r = await request(`http://127.0.0.1:${port}/logged`, { method: 'PUT', body: 'x' });
    await r.body.dump();
    const until = Date.now() + 5000;
    while (!readFileSync(logPath, { flag: 'a+' }).toString().includes('PUT') && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
    assert.equal(readFileSync(logPath, 'utf8'), 'PUT /logged 200 HTTP/1.1\n');
    const d = await fetch(`${l.admin}/drain_listeners`, { method: 'POST' });
    assert.equal(d.status, 200);
    await new Promise((res) => setTimeout(res, 200));
    await assert.rejects(request(`http://127.0.0.1:${port}/`, { headersTimeout: 2000 }));
    const q = await fetch(`${l.admin}/quitquitquit`, { method: 'POST' });
    assert.equal(q.status, 200);
    const code = await new Promise<number | null>((res) => l.proc.once('exit', (c) => res(c)));
    assert.equal(code, 0);
  } finally {
    await l.stop();
  }
});

test('the bundled config/default.yaml validates', async () => {
  const r = await runCli(['--mode', 'validate', '-c', fileURLToPath(new URL('../../config/default.yaml', import.meta.url))]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'OK');
});
