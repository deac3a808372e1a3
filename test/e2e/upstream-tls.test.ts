// The real process originating TLS: an mTLS HTTPS upstream reached through legate with certificates
// read from files, with two workers (the ssl stats and total_match_count as Envoy counts them, via
// the admin API); and upstream TLS config errors reported with their field paths by --mode validate.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { runCli, startLegate, writeConfig } from '../helpers/legate.ts';
import { httpBootstrap } from '../helpers/config.ts';
import { CLIENT_ID, SERVER_ID, testPki, writePki } from '../helpers/certs.ts';
import { tlsHttpUpstream } from '../proxy/upstream/tls-upstreams.ts';

const TIMEOUT = { timeout: 60_000 };
const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

function tlsSocket(files: { ca: string; cert: string; key: string }, extra: Record<string, unknown> = {}): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': UPSTREAM_TLS_TYPE,
      sni: 'localhost',
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: files.cert }, private_key: { filename: files.key } }],
        validation_context: { trusted_ca: { filename: files.ca }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: SERVER_ID } }] },
        ...extra,
      },
    },
  };
}

test('legate → mTLS HTTPS upstream: client certificate from files, ssl stats, two workers', TIMEOUT, async () => {
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'legate-upstream-tls-'));
  const f = writePki(dir, { ca: pki.ca, client: pki.client });
  const up = await tlsHttpUpstream({ cert: pki.server, clientCa: pki.ca.certPem });
  const l = await startLegate(
    httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'secure' } }],
      clusters: { secure: { ports: [up.port], extra: { transport_socket: tlsSocket({ ca: f.ca.cert, cert: f.client.cert, key: f.client.key }) } } },
    }),
    { concurrency: 2 },
  );
  try {
    const port = await l.listenerPort('http');
    for (let i = 0; i < 4; i++) {
      const r = await request(`http://127.0.0.1:${port}/r${i}`);
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), `up:/r${i}`);
    }
    assert.equal(up.seen.length, 4);
    for (const s of up.seen) {
      assert.deepEqual(s.peerUris, [CLIENT_ID]);
      assert.equal(s.sni, 'localhost');
    }
    const stats = await l.stats();
    assert.equal(stats['cluster.secure.upstream_rq_200'], 4);
    assert.ok((stats['cluster.secure.ssl.handshake'] ?? 0) >= 1);
    assert.equal(stats['cluster.secure.ssl.handshake'], stats['cluster.secure.upstream_cx_total']);
    assert.equal(stats['cluster.secure.ssl.fail_verify_san'], 0);
    // One host resolved once, as Envoy counts it (not once per worker).
    assert.equal(stats['cluster.secure.default.total_match_count'], 1);
  } finally {
    await l.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--mode validate: upstream TLS config errors name their field paths', TIMEOUT, async () => {
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'legate-upstream-tls-'));
  const f = writePki(dir, { ca: pki.ca, client: pki.client });
  try {
    const good = httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'secure' } }],
      clusters: { secure: { ports: [1], extra: { transport_socket: tlsSocket({ ca: f.ca.cert, cert: f.client.cert, key: f.client.key }) } } },
    });
    const ok = await runCli(['--mode', 'validate', '-c', writeConfig(good)]);
    assert.equal(ok.code, 0, ok.stderr);

    const missingFile = httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'secure' } }],
      clusters: { secure: { ports: [1], extra: { transport_socket: tlsSocket({ ca: join(dir, 'nope.crt'), cert: f.client.cert, key: f.client.key }) } } },
    });
    const r1 = await runCli(['--mode', 'validate', '-c', writeConfig(missingFile)]);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /static_resources\.clusters\[0\]\.transport_socket\.typed_config\.common_tls_context\.validation_context\.trusted_ca/);

    const badMatch = httpBootstrap({
      routes: [{ match: { prefix: '/' }, route: { cluster: 'mesh' } }],
      clusters: {
        mesh: {
          ports: [1],
          extra: {
            transport_socket_matches: [
              { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: tlsSocket({ ca: f.ca.cert, cert: f.client.cert, key: f.client.key }) },
              { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.alts' } },
            ],
          },
        },
      },
    });
    const r2 = await runCli(['--mode', 'validate', '-c', writeConfig(badMatch)]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /static_resources\.clusters\[0\]\.transport_socket_matches\[1\]\.transport_socket: unknown transport socket "envoy\.transport_sockets\.alts"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
