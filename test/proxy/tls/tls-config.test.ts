// TLS config parsing: DownstreamTlsContext / UpstreamTlsContext / Secret into configs, with
// Envoy's field-path errors for bad PEM, mismatched keys, unreadable files, unknown secrets,
// unsupported validators and features; TLS parameters; the transport_socket wrapper.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Result } from '../../../src/config/result.ts';
import type { Secret__Output } from '../../../src/generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { TransportSocket__Output } from '../../../src/generated/envoy/config/core/v3/TransportSocket.ts';
import type { SdsReference } from '../../../src/filters/registry.ts';
import { mergeValidation } from '../../../src/proxy/tls/context-config.ts';
import { parseSecret } from '../../../src/proxy/tls/secret-config.ts';
import { isRawBuffer, parseDownstreamTransportSocket, parseUpstreamTransportSocket } from '../../../src/proxy/tls/transport-sockets.ts';
import type { CertificateSecret, ValidationSecret } from '../../../src/proxy/tls/types.ts';
import { testPki, writePki } from '../../helpers/certs.ts';
import { inline, must, parseDownstream, parseUpstream } from './tls-harness.ts';

const pki = testPki();
const P = 'listeners[0].filter_chains[0].transport_socket';
const C = `${P}.typed_config.common_tls_context`;

function errorOf<T>(r: Result<T>): { path: string; reason: string } {
  assert.equal(r.ok, false, 'expected a config error');
  if (r.ok) throw new Error('unreachable');
  return r.errors[0]!;
}

const serverCert = { certificate_chain: inline(pki.server.certPem), private_key: inline(pki.server.keyPem) };

test('inline certificate and validation context: resolved, frozen, with Envoy defaults', () => {
  const cfg = must(
    parseDownstream({
      common_tls_context: { tls_certificates: [serverCert], validation_context: { trusted_ca: inline(pki.ca.certPem) }, alpn_protocols: ['h2', 'http/1.1'] },
      require_client_certificate: true,
    }),
  );
  assert.equal(cfg.side, 'downstream');
  assert.equal(cfg.requireClientCertificate, true);
  assert.deepEqual(cfg.alpn, ['h2', 'http/1.1']);
  assert.equal(cfg.params.minVersion, 'TLSv1.2');
  assert.equal(cfg.params.maxVersion, 'TLSv1.3');
  assert.equal(cfg.params.ecdhCurve, 'X25519:P-256');
  assert.ok(Object.isFrozen(cfg) && Object.isFrozen(cfg.certificates));
  const c = cfg.certificates[0]!;
  assert.equal(c.kind, 'inline');
  assert.equal(c.kind === 'inline' && c.secret.source, '<inline>');
  assert.equal(cfg.validation?.kind, 'inline');
  const up = must(parseUpstream({ sni: 'backend.example.com' }));
  assert.equal(up.params.maxVersion, 'TLSv1.2', "Envoy's client default maximum");
  assert.equal(up.maxSessionKeys, 1);
  assert.equal(up.sni, 'backend.example.com');
});

test('bad PEM, a key of another certificate, an unreadable file: errors name the field', () => {
  let e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ certificate_chain: inline('not pem'), private_key: inline(pki.server.keyPem) }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].certificate_chain`);
  assert.equal(e.reason, 'failed to load certificate chain: not a PEM certificate');

  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ certificate_chain: inline(pki.server.certPem), private_key: inline(pki.client.keyPem) }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].private_key`);
  assert.equal(e.reason, 'private key does not match the certificate');

  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ certificate_chain: inline(pki.server.certPem), private_key: inline('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n') }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].private_key`);
  assert.match(e.reason, /^failed to load private key: /);

  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ certificate_chain: inline(pki.server.certPem), private_key: { filename: '/nonexistent/legate/key.pem' } }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].private_key.filename`);
  assert.match(e.reason, /^unable to read file '\/nonexistent\/legate\/key.pem'/);

  e = errorOf(parseDownstream({ common_tls_context: { validation_context: { trusted_ca: inline('garbage') }, tls_certificates: [serverCert] } }));
  assert.equal(e.path, `${C}.validation_context.trusted_ca`);
  assert.match(e.reason, /failed to load trusted CA certificates: not a PEM certificate/);
});

test('certificates from files (source = path) and an encrypted key with its password', () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-tls-'));
  const files = writePki(dir, { server: pki.server });
  const encrypted = createPrivateKey(pki.server.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'sekret' }) as string;
  writeFileSync(join(dir, 'enc.key'), encrypted);
  const cfg = must(
    parseDownstream({
      common_tls_context: {
        tls_certificates: [{ certificate_chain: { filename: files.server.cert }, private_key: { filename: join(dir, 'enc.key') }, password: inline('sekret') }],
      },
    }),
  );
  const c = cfg.certificates[0]!;
  assert.ok(c.kind === 'inline');
  assert.equal(c.secret.source, files.server.cert);
  const e = errorOf(
    parseDownstream({ common_tls_context: { tls_certificates: [{ certificate_chain: { filename: files.server.cert }, private_key: { filename: join(dir, 'enc.key') }, password: inline('wrong') }] } }),
  );
  assert.equal(e.path, `${C}.tls_certificates[0].private_key`);
  assert.match(e.reason, /^failed to load private key/);
});

test('sds_secret_configs: static names must exist, SDS names are reported to the hooks and kept by name', () => {
  const staticSecrets = new Map<string, CertificateSecret | ValidationSecret>([['server-cert', { kind: 'tls_certificate', certificateChain: pki.server.certPem, privateKey: pki.server.keyPem, source: '<inline>' }]]);
  const e = errorOf(parseDownstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'nope' }] } }, { staticSecrets }));
  assert.equal(e.path, `${C}.tls_certificate_sds_secret_configs[0].name`);
  assert.equal(e.reason, 'unknown static secret: nope');

  const wrongKind = errorOf(parseDownstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'server-cert' }], validation_context_sds_secret_config: { name: 'server-cert' } } }, { staticSecrets }));
  assert.match(wrongKind.reason, /is a tls_certificate, not a validation_context/);

  const sdsRefs: SdsReference[] = [];
  const cfg = must(
    parseDownstream(
      {
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }],
          combined_validation_context: {
            default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: 'spiffe://cluster.local/' } }] },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } },
          },
        },
      },
      { staticSecrets, sdsRefs },
    ),
  );
  assert.deepEqual(
    sdsRefs.map((r) => [r.name, r.path]),
    [
      ['default', `${C}.tls_certificate_sds_secret_configs[0]`],
      ['ROOTCA', `${C}.combined_validation_context.validation_context_sds_secret_config`],
    ],
  );
  assert.deepEqual(cfg.certificates, [{ kind: 'secret', name: 'default', dynamic: true }]);
  assert.equal(cfg.validation?.kind, 'combined');
  const st = must(parseDownstream({ common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'server-cert' }] } }, { staticSecrets }));
  assert.deepEqual(st.certificates, [{ kind: 'secret', name: 'server-cert', dynamic: false }]);
});

test('combined validation context: the SDS context merged over the default one (MergeFrom)', () => {
  const defaults = decodeSecret({ name: 'd', validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://a/x' } }], allow_expired_certificate: true } });
  const dynamic = decodeSecret({ name: 'ROOTCA', validation_context: { trusted_ca: inline(pki.ca.certPem), match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'b' } }] } });
  assert.ok(defaults.kind === 'validation_context' && dynamic.kind === 'validation_context');
  const m = mergeValidation(defaults, dynamic);
  assert.equal(m.trustedCa, pki.ca.certPem);
  assert.equal(m.allowExpiredCertificate, true);
  assert.deepEqual(
    m.sanMatchers.map((s) => [s.type, s.match.value]),
    [
      ['URI', 'spiffe://a/x'],
      ['DNS', 'b'],
    ],
  );
  assert.equal(m.source, 'sds:ROOTCA');
});

function decodeSecret(json: Record<string, unknown>): CertificateSecret | ValidationSecret {
  const d = decodeJson<Secret__Output>('envoy.extensions.transport_sockets.tls.v3.Secret', json, { path: 'secrets[0]' });
  assert.ok(d.ok);
  const r = parseSecret(d.value, 'secrets[0]');
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

test('Secret resources: tls_certificate and validation_context parse; other kinds are clear errors', () => {
  const c = decodeSecret({ name: 'default', tls_certificate: serverCert });
  assert.equal(c.kind, 'tls_certificate');
  assert.equal(c.source, 'sds:default');
  const v = decodeSecret({ name: 'ROOTCA', validation_context: { trusted_ca: inline(pki.ca.certPem), match_subject_alt_names: [{ suffix: '.example.com' }] } });
  assert.ok(v.kind === 'validation_context');
  assert.deepEqual(
    v.sanMatchers.map((m) => m.type),
    ['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'],
    'the deprecated matcher applies to every SAN kind',
  );
  const d = decodeJson<Secret__Output>('envoy.extensions.transport_sockets.tls.v3.Secret', { name: 'g', generic_secret: { secret: inline('x') } }, { path: 'secrets[1]' });
  assert.ok(d.ok);
  const e = errorOf(parseSecret(d.value, 'secrets[1]'));
  assert.equal(e.path, 'secrets[1].generic_secret');
  const bad = decodeJson<Secret__Output>('envoy.extensions.transport_sockets.tls.v3.Secret', { name: 'k', tls_certificate: { certificate_chain: inline(pki.server.certPem), private_key: inline(pki.client.keyPem) } }, { path: 's' });
  assert.ok(bad.ok);
  assert.equal(errorOf(parseSecret(bad.value, 's')).path, 's.tls_certificate.private_key');
});

test('custom validators: SPIFFE with two trust domains parses; any other validator is an error', () => {
  const cfg = must(
    parseDownstream({
      common_tls_context: {
        tls_certificates: [serverCert],
        validation_context: {
          custom_validator_config: {
            name: 'envoy.tls.cert_validator.spiffe',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
              trust_domains: [
                { name: 'cluster.local', trust_bundle: inline(pki.ca.certPem) },
                { name: 'other.td', trust_bundle: inline(pki.otherCa.certPem) },
              ],
            },
          },
        },
      },
    }),
  );
  const v = cfg.validation;
  assert.ok(v?.kind === 'inline');
  assert.deepEqual([...(v.secret.spiffeTrustDomains?.keys() ?? [])], ['cluster.local', 'other.td']);

  const e = errorOf(
    parseDownstream({
      common_tls_context: {
        tls_certificates: [serverCert],
        validation_context: { custom_validator_config: { name: 'envoy.tls.cert_validator.custom', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } } },
      },
    }),
  );
  assert.equal(e.path, `${C}.validation_context.custom_validator_config`);
  assert.match(e.reason, /unknown certificate validator "envoy.tls.cert_validator.custom"/);
});

test('unsupported features are errors naming the field: OCSP stapling policy, OCSP staple, private key provider', () => {
  let e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert] }, ocsp_staple_policy: 'STRICT_STAPLING' }));
  assert.equal(e.path, `${P}.typed_config.ocsp_staple_policy`);
  assert.match(e.reason, /not supported/);
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ ...serverCert, ocsp_staple: inline('x') }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].ocsp_staple`);
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [{ ...serverCert, private_key_provider: { provider_name: 'cryptomb' } }] } }));
  assert.equal(e.path, `${C}.tls_certificates[0].private_key_provider`);
  e = errorOf(parseDownstream({ common_tls_context: {} }));
  assert.equal(e.reason, 'No TLS certificates found for server context');
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert] }, session_ticket_keys: { keys: [inline('short')] } }));
  assert.equal(e.path, `${P}.typed_config.session_ticket_keys.keys[0]`);
  assert.match(e.reason, /expected length 80/);
  e = errorOf(parseUpstream({ common_tls_context: { tls_certificates: [serverCert, serverCert] } }));
  assert.match(e.reason, /Multiple TLS certificates are not supported for client contexts/);
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert], validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { safe_regex: { regex: '(?<=x)y' } } }] } } }));
  assert.equal(e.path, `${C}.validation_context.match_typed_subject_alt_names[0].matcher.safe_regex.regex`);
});

test('tls_params: versions, BoringSSL cipher groups flattened, curves, signature algorithms; unknown names rejected', () => {
  const cfg = must(
    parseDownstream({
      common_tls_context: {
        tls_certificates: [serverCert],
        tls_params: {
          tls_minimum_protocol_version: 'TLSv1_2',
          tls_maximum_protocol_version: 'TLSv1_3',
          cipher_suites: ['[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]', 'ECDHE-RSA-AES256-GCM-SHA384', 'TLS_AES_128_GCM_SHA256'],
          ecdh_curves: ['P-256', 'X25519'],
          signature_algorithms: ['ecdsa_secp256r1_sha256', 'rsa_pss_rsae_sha256'],
        },
      },
    }),
  );
  assert.equal(cfg.params.ciphers, 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384');
  assert.equal(cfg.params.ecdhCurve, 'P-256:X25519');
  assert.equal(cfg.params.sigalgs, 'ecdsa_secp256r1_sha256:rsa_pss_rsae_sha256');
  let e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert], tls_params: { cipher_suites: ['ECDHE-RSA-AES128-GCM-SHA256', 'NOT-A-CIPHER'] } } }));
  assert.equal(e.path, `${C}.tls_params.cipher_suites[1]`);
  assert.equal(e.reason, 'Failed to initialize cipher suites NOT-A-CIPHER');
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert], tls_params: { ecdh_curves: ['P-999'] } } }));
  assert.equal(e.path, `${C}.tls_params.ecdh_curves[0]`);
  e = errorOf(parseDownstream({ common_tls_context: { tls_certificates: [serverCert], tls_params: { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_2' } } }));
  assert.equal(e.path, `${C}.tls_params.tls_minimum_protocol_version`);
});

test('transport_socket: raw_buffer and absent are plaintext; unknown sockets and the wrong side are errors', () => {
  const ts = (json: Record<string, unknown>): TransportSocket__Output => {
    const d = decodeJson<TransportSocket__Output>('envoy.config.core.v3.TransportSocket', json, { path: 't' });
    assert.ok(d.ok, JSON.stringify(d));
    return d.value;
  };
  const ctx = { path: 'clusters[2].transport_socket', clusterNames: undefined };
  const raw = ts({ name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } });
  assert.equal(isRawBuffer(raw), true);
  assert.equal(isRawBuffer(undefined), true);
  assert.deepEqual(parseUpstreamTransportSocket(raw, ctx), { ok: true, value: undefined });
  assert.deepEqual(parseDownstreamTransportSocket(null, ctx), { ok: true, value: undefined });
  const alts = ts({ name: 'envoy.transport_sockets.alts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts', handshaker_service: 'x' } });
  const e = errorOf(parseUpstreamTransportSocket(alts, ctx));
  assert.equal(e.path, 'clusters[2].transport_socket');
  assert.match(e.reason, /unknown transport socket "envoy.transport_sockets.alts"/);
  const wrongSide = ts({ name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext' } });
  assert.match(errorOf(parseUpstreamTransportSocket(wrongSide, ctx)).reason, /expected envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext/);
  // Name only (no typed_config): an empty UpstreamTlsContext, TLS without verification.
  const byName = parseUpstreamTransportSocket(ts({ name: 'envoy.transport_sockets.tls' }), ctx);
  assert.ok(byName.ok && byName.value?.side === 'upstream');
});
