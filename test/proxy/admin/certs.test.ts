// `/certs`: Envoy's envoy.admin.v3.Certificates JSON over every listener chain's and cluster's
// TLS context — file-backed, static-secret and SDS certificates, an SDS secret not yet received,
// and the same view served by the admin HTTP server.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPki, writePki, SERVER_ID } from '../../helpers/certs.ts';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { buildStaticConfig, type StaticConfig } from '../../../src/config/static-config.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry } from '../../../src/filters/registry.ts';
import type { Bootstrap__Output } from '../../../src/generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { certificatesJson } from '../../../src/proxy/admin/certs.ts';
import { startAdmin } from '../../../src/proxy/admin/server.ts';
import { MemorySecretStore } from '../../../src/proxy/tls/secret-store.ts';
import { parseSecret } from '../../../src/proxy/tls/secret-config.ts';
import type { DownstreamTlsConfig, UpstreamTlsConfig } from '../../../src/proxy/tls/transport-sockets.ts';
import type { Secret__Output } from '../../../src/generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import { FakeSource } from './fake-source.ts';
import { hcm } from '../../helpers/config.ts';

registerBuiltins(registry);
const pki = testPki();
const dir = mkdtempSync(join(tmpdir(), 'legate-certs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const files = writePki(dir, { server: pki.server, ca: pki.ca });

const DOWNSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
const UPSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const sdsConfig = { path_config_source: { path: join(dir, 'sds.yaml') }, resource_api_version: 'V3' };

function build(): StaticConfig {
  const json = {
    static_resources: {
      secrets: [{ name: 'client-cert', tls_certificate: { certificate_chain: { inline_string: pki.client.certPem }, private_key: { inline_string: pki.client.keyPem } } }],
      listeners: [
        {
          name: 'files',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': DOWNSTREAM,
                  common_tls_context: {
                    tls_certificates: [{ certificate_chain: { filename: files.server.cert }, private_key: { filename: files.server.key } }],
                    validation_context: { trusted_ca: { filename: files.ca.cert } },
                  },
                },
              },
              filters: [hcm({ virtual_hosts: [] })],
            },
          ],
        },
        {
          name: 'sds',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': DOWNSTREAM,
                  common_tls_context: {
                    tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sdsConfig }],
                    validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sdsConfig },
                  },
                },
              },
              filters: [hcm({ virtual_hosts: [] })],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'mtls-upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'mtls-upstream', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': UPSTREAM,
              common_tls_context: {
                tls_certificate_sds_secret_configs: [{ name: 'client-cert' }],
                validation_context: { trusted_ca: { inline_string: pki.ca.certPem } },
              },
            },
          },
        },
      ],
    },
  };
  const b = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', json);
  if (!b.ok) throw new Error(formatErrors(b.errors));
  const c = buildStaticConfig(b.value);
  if (!c.ok) throw new Error(formatErrors(c.errors));
  return c.value;
}

function contexts(c: StaticConfig): Array<DownstreamTlsConfig | UpstreamTlsConfig> {
  return [...c.listeners.flatMap((l) => [...l.chains.values()].flatMap((ch) => (ch.tls ? [ch.tls] : []))), ...c.clusters.flatMap((cl) => cl.tlsContexts)];
}

function details(pem: string): { serial: string; from: string; to: string } {
  const x = new X509Certificate(pem);
  const iso = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { serial: x.serialNumber.toLowerCase(), from: iso(x.validFromDate), to: iso(x.validToDate) };
}

test('certificates of file, static-secret and SDS contexts, in Envoy form', () => {
  const cfg = build();
  assert.deepEqual(cfg.sdsRefs.map((r) => r.name).sort(), ['ROOTCA', 'default']);
  const store = new MemorySecretStore(cfg.secrets);
  const ctxs = contexts(cfg);
  assert.equal(ctxs.length, 3);

  // SDS secrets not received yet: the context is listed, empty.
  const before = certificatesJson(ctxs, store);
  assert.deepEqual(before.certificates[1], { ca_cert: [], cert_chain: [] });

  const sds = (json: unknown): void => {
    const m = decodeJson<Secret__Output>('envoy.extensions.transport_sockets.tls.v3.Secret', json);
    assert.ok(m.ok);
    const s = parseSecret(m.value, '');
    assert.ok(s.ok, s.ok ? '' : formatErrors(s.errors));
    store.set(m.value.name, s.value);
  };
  sds({ name: 'default', tls_certificate: { certificate_chain: { inline_string: pki.ecdsaServer.certPem }, private_key: { inline_string: pki.ecdsaServer.keyPem } } });
  sds({ name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: pki.ca.certPem } } });

  const out = certificatesJson(ctxs, store);
  const [fileCtx, sdsCtx, upstream] = out.certificates as [typeof out.certificates[0], typeof out.certificates[0], typeof out.certificates[0]];
  const server = details(pki.server.certPem);
  const ca = details(pki.ca.certPem);
  assert.deepEqual(fileCtx.cert_chain, [
    {
      path: files.server.cert,
      serial_number: server.serial,
      subject_alt_names: [{ dns: 'localhost' }, { dns: '*.example.com' }, { uri: SERVER_ID }],
      days_until_expiration: fileCtx.cert_chain[0]!.days_until_expiration,
      valid_from: server.from,
      expiration_time: server.to,
    },
  ]);
  assert.match(fileCtx.cert_chain[0]!.days_until_expiration, /^\d+$/);
  assert.ok(Number(fileCtx.cert_chain[0]!.days_until_expiration) > 0);
  assert.equal(fileCtx.ca_cert[0]!.path, files.ca.cert);
  assert.equal(fileCtx.ca_cert[0]!.serial_number, ca.serial);
  assert.equal(fileCtx.ca_cert[0]!.expiration_time, ca.to);

  assert.equal(sdsCtx.cert_chain[0]!.serial_number, details(pki.ecdsaServer.certPem).serial);
  assert.equal(sdsCtx.cert_chain[0]!.path, 'sds:default');
  assert.equal(sdsCtx.ca_cert[0]!.serial_number, ca.serial);

  assert.equal(upstream.cert_chain[0]!.serial_number, details(pki.client.certPem).serial);
  assert.deepEqual(upstream.cert_chain[0]!.subject_alt_names, [{ uri: 'spiffe://cluster.local/ns/default/sa/client' }]);
  assert.equal(upstream.ca_cert[0]!.serial_number, ca.serial);
});

test('GET /certs on the admin server', async () => {
  const cfg = build();
  const store = new MemorySecretStore(cfg.secrets);
  const src = new (class extends FakeSource {
    certs(): unknown {
      return certificatesJson(contexts(cfg), store);
    }
  })();
  const admin = await startAdmin({ address: '127.0.0.1', port: 0, source: src });
  try {
    const r = await fetch(`http://127.0.0.1:${admin.port}/certs`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const body = (await r.json()) as { certificates: Array<{ ca_cert: unknown[]; cert_chain: Array<{ serial_number: string }> }> };
    assert.equal(body.certificates.length, 3);
    assert.equal(body.certificates[0]!.cert_chain[0]!.serial_number, details(pki.server.certPem).serial);
    const help = await (await fetch(`http://127.0.0.1:${admin.port}/help`)).text();
    assert.match(help, /\/certs: print certs on machine/);
  } finally {
    await admin.close();
  }
});
