// `static_resources.secrets` and the SDS references of TLS contexts in buildStaticConfig: static
// secrets resolved and checked, one SDS reference per name, and sds_config problems (SDS over ADS,
// unknown cluster) reported with field paths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson } from '../../src/config/decode.ts';
import { formatErrors, type Result } from '../../src/config/result.ts';
import { buildStaticConfig, type StaticConfig } from '../../src/config/static-config.ts';
import { registerBuiltins } from '../../src/filters/index.ts';
import { registry } from '../../src/filters/registry.ts';
import type { Bootstrap__Output } from '../../src/generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { testPki } from '../helpers/certs.ts';

registerBuiltins(registry);
const pki = testPki();
const UPSTREAM = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

function build(json: unknown): Result<StaticConfig> {
  const b = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', json);
  if (!b.ok) throw new Error(formatErrors(b.errors));
  return buildStaticConfig(b.value);
}

const sdsGrpc = (cluster = 'sds-grpc'): unknown => ({
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: cluster } }] },
  resource_api_version: 'V3',
  initial_fetch_timeout: '0s',
});

function tlsCluster(name: string, certSds: Record<string, unknown>): unknown {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9 } } } }] }] },
    transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM, common_tls_context: { tls_certificate_sds_secret_configs: [certSds] } } },
  };
}

const sdsCluster = {
  name: 'sds-grpc',
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: { cluster_name: 'sds-grpc', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } } } }] }] },
};

test('static secrets are resolved; SDS references are collected once per name', () => {
  const r = build({
    static_resources: {
      secrets: [
        { name: 'client-cert', tls_certificate: { certificate_chain: { inline_string: pki.client.certPem }, private_key: { inline_string: pki.client.keyPem } } },
        { name: 'mesh-ca', validation_context: { trusted_ca: { inline_string: pki.ca.certPem } } },
      ],
      clusters: [sdsCluster, tlsCluster('a', { name: 'default', sds_config: sdsGrpc() }), tlsCluster('b', { name: 'default', sds_config: sdsGrpc() }), tlsCluster('c', { name: 'client-cert' })],
    },
  });
  assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
  assert.deepEqual([...r.value.secrets.keys()], ['client-cert', 'mesh-ca']);
  assert.equal(r.value.secrets.get('client-cert')?.kind, 'tls_certificate');
  assert.equal(r.value.secrets.get('mesh-ca')?.kind, 'validation_context');
  assert.equal(r.value.sdsRefs.length, 1);
  assert.equal(r.value.sdsRefs[0]!.name, 'default');
  assert.match(r.value.sdsRefs[0]!.path, /^static_resources\.clusters\[1\]\./);
});

test('bad static secrets fail with their field path', () => {
  const r = build({
    static_resources: {
      secrets: [
        { name: 'x', tls_certificate: { certificate_chain: { inline_string: pki.server.certPem }, private_key: { inline_string: pki.client.keyPem } } },
        { name: 'y', validation_context: { trusted_ca: { inline_string: pki.ca.certPem } } },
        { name: 'y', validation_context: { trusted_ca: { inline_string: pki.ca.certPem } } },
      ],
    },
  });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['static_resources.secrets[0].tls_certificate.private_key', 'static_resources.secrets[2].name'],
  );
  assert.match(r.errors[0]!.reason, /private key does not match/);
  assert.match(r.errors[1]!.reason, /Duplicate static secret name y/);
});

test('sds_config problems are config errors naming the field', () => {
  const ads = build({ static_resources: { clusters: [tlsCluster('a', { name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } })] } });
  assert.ok(!ads.ok);
  assert.match(ads.errors[0]!.path, /^static_resources\.clusters\[0\]\.transport_socket\..*tls_certificate_sds_secret_configs\[0\]\.sds_config\.ads$/);
  assert.match(ads.errors[0]!.reason, /SDS over ADS needs dynamic_resources.ads_config/);

  const unknown = build({ static_resources: { clusters: [tlsCluster('a', { name: 'default', sds_config: sdsGrpc('nowhere') })] } });
  assert.ok(!unknown.ok);
  assert.match(unknown.errors[0]!.path, /sds_config\.api_config_source\.grpc_services\[0\]\.envoy_grpc\.cluster_name$/);
  assert.match(unknown.errors[0]!.reason, /unknown gRPC client cluster 'nowhere'/);

  const noStatic = build({ static_resources: { clusters: [tlsCluster('a', { name: 'missing' })] } });
  assert.ok(!noStatic.ok);
  assert.match(noStatic.errors[0]!.reason, /unknown static secret: missing/);
});
