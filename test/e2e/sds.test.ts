// SDS end to end with the real legate process: a TLS listener whose certificate is the SDS secret
// `default` from the pipe cluster `sds-grpc` (Istio's shape) served by the test control plane.
// Before the secret arrives TLS connections are reset and /ready is 503; after, the handshake
// presents it; a rotation leaves established connections working while new ones get the new
// certificate; a bad secret is NACKed and the old certificate is still served.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startLegate } from '../helpers/legate.ts';
import { hcm, socketAddress } from '../helpers/config.ts';
import { testPki, type Issued } from '../helpers/certs.ts';
import { ControlPlane, certificateSecret, SECRET_TYPE_URL } from '../helpers/xds/control-plane.ts';
import type { DiscoveryRequest__Output } from '../../src/xds-client/codec.ts';
import { tempDir, until } from '../xds-client/helpers.ts';

const pki = testPki();
const dir = tempDir('legate-e2e-sds-');
after(() => rmSync(dir, { recursive: true, force: true }));

const DOWNSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function bootstrap(socketPath: string): object {
  return {
    node: { id: 'sidecar~127.0.0.1~e2e.default~default.svc.cluster.local', cluster: 'e2e.default' },
    static_resources: {
      listeners: [
        {
          name: 'tls',
          address: socketAddress(0),
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': DOWNSTREAM,
                  common_tls_context: {
                    tls_certificate_sds_secret_configs: [
                      {
                        name: 'default',
                        sds_config: {
                          api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }], set_node_on_first_message_only: true },
                          resource_api_version: 'V3',
                          initial_fetch_timeout: '0s',
                        },
                      },
                    ],
                  },
                },
              },
              filters: [hcm({ name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'hello' } } }] }] })],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'sds-grpc',
          type: 'STATIC',
          connect_timeout: '1s',
          typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS, explicit_http_config: { http2_protocol_options: {} } } },
          load_assignment: { cluster_name: 'sds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
        },
      ],
    },
    admin: { address: socketAddress(0) },
  };
}

const serial = (i: Issued): string => new X509Certificate(i.certPem).serialNumber;

/** Handshakes; resolves with the socket and the presented serial, or rejects (reset, alert). */
function handshake(port: number): Promise<{ socket: tls.TLSSocket; serial: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.certPem });
    s.once('secureConnect', () => resolve({ socket: s, serial: s.getPeerX509Certificate()!.serialNumber }));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake')));
    s.setTimeout(5000, () => s.destroy(new Error('handshake timeout')));
  });
}

/** One HTTP/1.1 request on an open TLS socket (keep-alive); resolves with the raw response. */
function get(s: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      s.off('data', onData);
      resolve(buf);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

async function servedSerial(port: number, want: string): Promise<string> {
  // The worker gets the secret a moment after the main thread accepted it: retry until it serves it.
  return until(async () => {
    try {
      const h = await handshake(port);
      h.socket.destroy();
      return h.serial === want ? h.serial : undefined;
    } catch {
      return undefined;
    }
  }, `a handshake presenting ${want}`);
}

test('SDS certificate over a pipe cluster: refused before, served after, rotated, bad update rejected', { timeout: 90_000 }, async () => {
  const socketPath = join(dir, 'sds.sock');
  const cp = await ControlPlane.start({ socketPath });
  const legate = await startLegate(bootstrap(socketPath), { concurrency: 2 });
  const sotw = (): DiscoveryRequest__Output[] => cp.requestsFor(SECRET_TYPE_URL).map((r) => r.request as DiscoveryRequest__Output);
  try {
    const port = await legate.listenerPort('tls');
    // Subscribed with the node on the first request, nothing received yet.
    const first = await cp.waitFor(() => sotw()[0], 'the SDS request');
    assert.deepEqual(first.resource_names, ['default']);
    assert.equal(first.node?.id, 'sidecar~127.0.0.1~e2e.default~default.svc.cluster.local');

    // No certificate yet: handshakes fail, the server is not ready.
    await assert.rejects(handshake(port));
    assert.equal((await fetch(`${legate.admin}/ready`)).status, 503);

    cp.setSecret('default', certificateSecret('default', pki.server), 'v1');
    await cp.waitFor(() => sotw().find((r) => r.version_info === 'v1' && r.response_nonce !== ''), 'the ACK of v1');
    await servedSerial(port, serial(pki.server));
    const stats = await legate.stats();
    assert.equal(stats['sds.default.update_success'], 1);
    assert.equal(stats['sds.default.update_rejected'], 0);
    await until(async () => (await fetch(`${legate.admin}/ready`)).status === 200, '/ready 200');

    // /certs shows the SDS certificate.
    const certs = (await (await fetch(`${legate.admin}/certs`)).json()) as { certificates: Array<{ cert_chain: Array<{ serial_number: string }> }> };
    assert.equal(certs.certificates[0]?.cert_chain[0]?.serial_number, serial(pki.server).toLowerCase());

    // /config_dump's SecretsConfigDump (istioctl proxy-config secret): the SDS secret, key redacted.
    const dump = (await (await fetch(`${legate.admin}/config_dump`)).json()) as { configs: Array<Record<string, unknown>> };
    const secrets = dump.configs.find((c) => c['@type'] === 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump') as
      | { dynamic_active_secrets: Array<{ name: string; version_info: string; secret: { tls_certificate: { certificate_chain: { inline_bytes: string }; private_key: { inline_string: string } } } }> }
      | undefined;
    const active = secrets?.dynamic_active_secrets[0];
    assert.equal(active?.name, 'default');
    assert.equal(active?.version_info, 'v1');
    assert.equal(Buffer.from(active?.secret.tls_certificate.certificate_chain.inline_bytes ?? '', 'base64').toString(), pki.server.certPem);
    assert.equal(active?.secret.tls_certificate.private_key.inline_string, '[redacted]');

    // An established connection, used before the rotation…
    const old = await handshake(port);
    assert.equal(old.serial, serial(pki.server));
    assert.match(await get(old.socket), /^HTTP\/1\.1 200[\s\S]*hello$/);

    cp.setSecret('default', certificateSecret('default', pki.ecdsaServer), 'v2');
    await servedSerial(port, serial(pki.ecdsaServer));
    assert.equal((await legate.stats())['sds.default.update_success'], 2);
    // …keeps working after it (it was set up with the old certificate).
    assert.match(await get(old.socket), /^HTTP\/1\.1 200[\s\S]*hello$/);
    assert.equal(old.socket.destroyed, false);
    old.socket.destroy();

    // A certificate with the wrong key: NACKed, the rotated certificate is still served.
    cp.setSecret('default', certificateSecret('default', { certPem: pki.server.certPem, keyPem: pki.client.keyPem }), 'v3');
    const nack = await cp.waitFor(() => sotw().find((r) => r.error_detail !== null), 'the NACK');
    assert.equal(nack.version_info, 'v2');
    assert.match(nack.error_detail?.message ?? '', /private key does not match/);
    const after3 = await legate.stats();
    assert.equal(after3['sds.default.update_rejected'], 1);
    assert.equal(after3['sds.default.update_success'], 2);
    const fresh = await handshake(port);
    assert.equal(fresh.serial, serial(pki.ecdsaServer));
    fresh.socket.destroy();
  } finally {
    await legate.stop();
    await cp.close();
  }
});
