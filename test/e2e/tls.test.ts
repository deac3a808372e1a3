// Downstream TLS through the real process (certificates on disk from the test PKI): certificates
// picked by SNI (exact and `*.example.com`) with tls_inspector, HTTP/1.1 and HTTP/2 by ALPN, mTLS
// with a URI SAN matcher and with the SPIFFE validator — accepted for the right identity, refused
// for a wrong one, none, an expired one and an untrusted CA, each counted under
// `listener.<addr>.ssl.` — the TLS access log operators, x-forwarded-client-cert as configured,
// and bad certificates failing `--mode validate` with their field path.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { CLIENT_ID, SERVER_ID, testPki, writePki, type Issued } from '../helpers/certs.ts';
import { cluster, hcm, socketAddress } from '../helpers/config.ts';
import { runCli, startLegate, writeConfig, type Legate } from '../helpers/legate.ts';
import { startHttp1Upstream, type Upstream } from '../helpers/upstreams.ts';

const TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const TIMEOUT = { timeout: 60_000 };
const LOG_FORMAT = '%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_PEER_SUBJECT% %REQUESTED_SERVER_NAME% %DOWNSTREAM_LOCAL_URI_SAN%\n';

const dir = mkdtempSync(join(tmpdir(), 'legate-tls-'));
const pki = testPki();
const files = writePki(dir, { ca: pki.ca, server: pki.server, server2: pki.server2 });

function tlsSocket(cert: { cert: string; key: string }, common: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TLS_TYPE,
      common_tls_context: { tls_certificates: [{ certificate_chain: { filename: cert.cert }, private_key: { filename: cert.key } }], ...common },
      ...extra,
    },
  };
}

function route(): object {
  return { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }] };
}

function accessLog(path: string): object {
  return {
    access_log: [
      {
        name: 'envoy.access_loggers.file',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path, log_format: { text_format_source: { inline_string: LOG_FORMAT } } },
      },
    ],
  };
}

const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };
const edgeLog = join(dir, 'edge.log');
const mtlsLog = join(dir, 'mtls.log');

function bootstrap(upstreamPort: number): object {
  return {
    static_resources: {
      listeners: [
        {
          name: 'edge',
          address: socketAddress(0),
          listener_filters: [TLS_INSPECTOR],
          filter_chains: [
            {
              name: 'wildcard',
              filter_chain_match: { server_names: ['localhost', '*.example.com'] },
              transport_socket: tlsSocket(files.server, { alpn_protocols: ['h2', 'http/1.1'], validation_context: { trusted_ca: { filename: files.ca.cert } } }),
              filters: [
                hcm(route(), {
                  stat_prefix: 'edge',
                  forward_client_cert_details: 'SANITIZE_SET',
                  set_current_client_cert_details: { subject: true, uri: true, dns: true, cert: true, chain: true },
                  ...accessLog(edgeLog),
                }),
              ],
            },
            {
              name: 'other',
              filter_chain_match: { server_names: ['other.example.com'] },
              transport_socket: tlsSocket(files.server2),
              filters: [hcm(route(), { stat_prefix: 'other' })],
            },
          ],
        },
        {
          name: 'mtls',
          address: socketAddress(0),
          filter_chains: [
            {
              transport_socket: tlsSocket(
                files.server,
                { validation_context: { trusted_ca: { filename: files.ca.cert }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: CLIENT_ID } }] } },
                { require_client_certificate: true },
              ),
              filters: [hcm(route(), { stat_prefix: 'mtls', forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { uri: true, subject: true }, ...accessLog(mtlsLog) })],
            },
          ],
        },
        {
          name: 'spiffe',
          address: socketAddress(0),
          filter_chains: [
            {
              transport_socket: tlsSocket(
                files.server,
                {
                  validation_context: {
                    custom_validator_config: {
                      name: 'envoy.tls.cert_validator.spiffe',
                      typed_config: {
                        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
                        trust_domains: [{ name: 'cluster.local', trust_bundle: { filename: files.ca.cert } }],
                      },
                    },
                  },
                },
                { require_client_certificate: true },
              ),
              filters: [hcm(route(), { stat_prefix: 'spiffe', forward_client_cert_details: 'FORWARD_ONLY' })],
            },
          ],
        },
        {
          name: 'plain',
          address: socketAddress(0),
          filter_chains: [{ filters: [hcm(route(), { stat_prefix: 'plain', forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { uri: true } })] }],
        },
      ],
      clusters: [cluster('backend', { ports: [upstreamPort] })],
    },
    admin: { address: socketAddress(0) },
  };
}

interface World {
  readonly legate: Legate;
  readonly up: Upstream;
  readonly ports: Record<'edge' | 'mtls' | 'spiffe' | 'plain', number>;
}

let world: Promise<World> | undefined;

function start(): Promise<World> {
  world ??= (async () => {
    const up = await startHttp1Upstream();
    const legate = await startLegate(bootstrap(up.port));
    const ports = { edge: await legate.listenerPort('edge'), mtls: await legate.listenerPort('mtls'), spiffe: await legate.listenerPort('spiffe'), plain: await legate.listenerPort('plain') };
    return { legate, up, ports };
  })();
  return world;
}

after(async () => {
  if (world) {
    const w = await world;
    await w.legate.stop();
    await w.up.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

function client(port: number, o: { servername?: string; cert?: Issued; h2?: boolean } = {}): Client {
  return new Client(`https://127.0.0.1:${port}`, {
    allowH2: o.h2 ?? false,
    connect: { ca: pki.ca.certPem, servername: o.servername ?? 'localhost', ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}) },
  });
}

/** GET through a fresh connection; the echoed request headers the upstream saw. */
async function get(port: number, path: string, o: Parameters<typeof client>[1] & { headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, string> }> {
  const c = client(port, o);
  try {
    const r = await c.request({ path, method: 'GET', headers: o.headers ?? {} });
    const body = (await r.body.json()) as { headers: Record<string, string> };
    return { status: r.statusCode, headers: body.headers };
  } finally {
    await c.close();
  }
}

/** The certificate the server presents for `servername` (undefined: connection refused). */
async function servedCert(port: number, servername: string): Promise<X509Certificate | undefined> {
  const t = tls.connect({ port, host: '127.0.0.1', servername, ca: pki.ca.certPem, rejectUnauthorized: false });
  const r = await new Promise<'ok' | 'closed'>((resolve) => {
    t.once('secureConnect', () => resolve('ok'));
    t.once('error', () => resolve('closed'));
    t.once('close', () => resolve('closed'));
  });
  const cert = r === 'ok' ? t.getPeerX509Certificate() : undefined;
  if (!t.destroyed) {
    // A graceful end lets the server finish its side of the handshake (TLS 1.3) before the close.
    t.end();
    await once(t, 'close');
  }
  return cert;
}

async function stat(l: Legate, name: string, want?: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const v = (await l.stats())[name] ?? 0;
    if (want === undefined || v === want) return v;
    await sleep(50);
  }
  return (await l.stats())[name] ?? 0;
}

async function logLines(path: string, n: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // not created yet
    }
    const lines = text.split('\n').filter(Boolean);
    if (lines.length >= n) return lines;
    await sleep(50);
  }
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

function hexSha256(c: Issued): string {
  return new X509Certificate(c.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
}

function subjectOf(c: Issued): string {
  return new X509Certificate(c.certPem).subject.split('\n').reverse().join(',');
}

function urlEncoded(pem: string): string {
  // Envoy's encoding of a PEM: newline, space, '+', '/' and '=' escaped.
  return pem.replaceAll('\n', '%0A').replaceAll(' ', '%20').replaceAll('+', '%2B').replaceAll('/', '%2F').replaceAll('=', '%3D');
}

test('SNI picks the chain and its certificate: exact, *.example.com, and no match', TIMEOUT, async () => {
  const { legate, ports } = await start();
  const prefix = `listener.127.0.0.1_${ports.edge}.`;
  assert.match((await servedCert(ports.edge, 'localhost'))!.subjectAltName ?? '', /DNS:localhost/);
  assert.match((await servedCert(ports.edge, 'api.example.com'))!.subjectAltName ?? '', /DNS:\*\.example\.com/);
  assert.equal((await servedCert(ports.edge, 'other.example.com'))!.subjectAltName, 'DNS:other.example.com');
  assert.equal(await servedCert(ports.edge, 'nobody.test'), undefined);
  assert.equal(await stat(legate, `${prefix}no_filter_chain_match`, 1), 1);

  const r = await get(ports.edge, '/other', { servername: 'other.example.com' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-forwarded-proto'], 'https');
  assert.equal(await stat(legate, 'http.other.downstream_rq_2xx', 1), 1);
  assert.equal(await stat(legate, `${prefix}ssl.handshake`, 4), 4);
  assert.equal(await stat(legate, 'tls_inspector.sni_found'), 5);
});

test('HTTP/1.1 and HTTP/2 by ALPN; no client certificate: XFCC removed, access log shows `-` for the peer', TIMEOUT, async () => {
  const { legate, ports } = await start();
  const before = await legate.stats();
  const delta = async (name: string): Promise<number> => (await stat(legate, name)) - (before[name] ?? 0);
  const h1 = await get(ports.edge, '/h1', { headers: { 'x-forwarded-client-cert': 'By=spiffe://forged' } });
  assert.equal(h1.status, 200);
  assert.equal(h1.headers['x-forwarded-client-cert'], undefined, 'a client without a certificate cannot pass XFCC on');
  const h2 = await get(ports.edge, '/h2', { h2: true, servername: 'api.example.com' });
  assert.equal(h2.status, 200);
  assert.equal(await delta('http.edge.downstream_cx_http1_total'), 1);
  assert.equal(await delta('http.edge.downstream_cx_http2_total'), 1);
  assert.equal(await delta('http.edge.downstream_cx_ssl_total'), 2);
  const lines = await logLines(edgeLog, 2);
  assert.ok(lines.includes(`- TLSv1.3 - localhost ${SERVER_ID}`), lines.join('\n'));
  assert.ok(lines.includes(`- TLSv1.3 - api.example.com ${SERVER_ID}`), lines.join('\n'));
});

test('SANITIZE_SET with a client certificate: XFCC replaced by By, Hash, Cert, Chain, Subject, URI', TIMEOUT, async () => {
  const { ports } = await start();
  const r = await get(ports.edge, '/set', { cert: pki.client, headers: { 'x-forwarded-client-cert': 'By=spiffe://forged;URI=spiffe://forged' } });
  assert.equal(r.status, 200);
  const leaf = urlEncoded(new X509Certificate(pki.client.certPem).toString());
  // The chain as presented: the client sent its leaf only (not the root our trust store adds).
  const chain = leaf;
  assert.equal(
    r.headers['x-forwarded-client-cert'],
    `By=${SERVER_ID};Hash=${hexSha256(pki.client)};Cert="${leaf}";Chain="${chain}";Subject="${subjectOf(pki.client)}";URI=${CLIENT_ID}`,
  );
});

test('mTLS with a URI SAN matcher: the right SPIFFE ID is served (XFCC appended, access log), wrong ones are refused and counted', TIMEOUT, async () => {
  const { legate, ports } = await start();
  const prefix = `listener.127.0.0.1_${ports.mtls}.`;
  const ok = await get(ports.mtls, '/mtls', { cert: pki.client, headers: { 'x-forwarded-client-cert': 'By=spiffe://a;URI=spiffe://b' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-forwarded-client-cert'], `By=spiffe://a;URI=spiffe://b,By=${SERVER_ID};Hash=${hexSha256(pki.client)};Subject="${subjectOf(pki.client)}";URI=${CLIENT_ID}`);
  // No tls_inspector on this listener: the SNI comes from the handshake itself.
  assert.deepEqual(await logLines(mtlsLog, 1), [`${CLIENT_ID} TLSv1.3 ${subjectOf(pki.client)} localhost ${SERVER_ID}`]);
  assert.equal(await stat(legate, `${prefix}ssl.handshake`), 1);

  const refused = async (cert: Issued | undefined): Promise<void> => {
    await assert.rejects(get(ports.mtls, '/no', cert ? { cert } : {}));
  };
  await refused(pki.wrongIdClient);
  assert.equal(await stat(legate, `${prefix}ssl.fail_verify_san`, 1), 1);
  await refused(undefined);
  assert.equal(await stat(legate, `${prefix}ssl.fail_verify_no_cert`, 1), 1);
  await refused(pki.expiredClient);
  assert.equal(await stat(legate, `${prefix}ssl.fail_verify_error`, 1), 1);
  await refused(pki.untrustedClient);
  assert.equal(await stat(legate, `${prefix}ssl.fail_verify_error`, 2), 2);
  assert.equal(await stat(legate, `${prefix}ssl.handshake`), 1);
  assert.equal(await stat(legate, 'http.mtls.downstream_rq_total'), 1, 'no refused connection reached the HCM');
});

test('mTLS with the SPIFFE validator: any identity of the trust domain, not another CA; FORWARD_ONLY keeps XFCC', TIMEOUT, async () => {
  const { legate, ports } = await start();
  const prefix = `listener.127.0.0.1_${ports.spiffe}.`;
  const r = await get(ports.spiffe, '/spiffe', { cert: pki.client, headers: { 'x-forwarded-client-cert': 'By=spiffe://kept' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-forwarded-client-cert'], 'By=spiffe://kept');
  assert.equal((await get(ports.spiffe, '/intruder', { cert: pki.wrongIdClient })).status, 200, 'same trust domain');
  await assert.rejects(get(ports.spiffe, '/other-ca', { cert: pki.untrustedClient }));
  assert.equal(await stat(legate, `${prefix}ssl.fail_verify_error`, 1), 1);
  assert.equal(await stat(legate, `${prefix}ssl.handshake`), 2);
});

test('plaintext: APPEND_FORWARD adds nothing and drops a forged XFCC; x-forwarded-proto http', TIMEOUT, async () => {
  const { ports } = await start();
  const r = await fetch(`http://127.0.0.1:${ports.plain}/plain`, { headers: { 'x-forwarded-client-cert': 'By=spiffe://forged' } });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { headers: Record<string, string> };
  assert.equal(body.headers['x-forwarded-client-cert'], undefined);
  assert.equal(body.headers['x-forwarded-proto'], 'http');
});

test('--mode validate: a mismatched key, an unreadable file and a bad PEM fail naming the field', TIMEOUT, async () => {
  const bad = mkdtempSync(join(tmpdir(), 'legate-tls-bad-'));
  try {
    const garbage = join(bad, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const clientKey = writePki(bad, { client: pki.client }).client.key;
    const config = (cert: { cert: string; key: string }): string =>
      writeConfig({
        static_resources: { listeners: [{ name: 'l', address: socketAddress(0), filter_chains: [{ transport_socket: tlsSocket(cert), filters: [hcm(route())] }] }], clusters: [cluster('backend', { ports: [1] })] },
      });
    const base = 'static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0]';
    const cases: Array<[string, { cert: string; key: string }, string]> = [
      ['mismatched pair', { cert: files.server.cert, key: clientKey }, `${base}.private_key`],
      ['unreadable file', { cert: join(bad, 'missing.crt'), key: files.server.key }, `${base}.certificate_chain`],
      ['bad PEM', { cert: garbage, key: files.server.key }, `${base}.certificate_chain`],
    ];
    for (const [what, cert, path] of cases) {
      const r = await runCli(['--mode', 'validate', '-c', config(cert)]);
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), 'ERROR');
      assert.ok(r.stderr.includes(path), `${what}: ${r.stderr}`);
    }
    const good = await runCli(['--mode', 'validate', '-c', config(files.server)]);
    assert.equal(good.code, 0, good.stderr);
  } finally {
    rmSync(bad, { recursive: true, force: true });
  }
});
