// Upstream TLS config: parseCluster's transport_socket / transport_socket_matches (through the TLS
// extension, errors naming their field paths), endpoint and locality metadata, upstream HTTP protocol
// options; and the pure helpers behind them (metadata matching, auto_sni, Envoy's failure text).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import type { ParseContext, SdsReference } from '../../../src/filters/registry.ts';
import { parseCluster } from '../../../src/proxy/upstream/config.ts';
import type { ClusterConfig } from '../../../src/proxy/upstream/types.ts';
import { labelsMatch } from '../../../src/proxy/upstream/transport-socket-match.ts';
import { autoTransportOptions, parseAuthority, transportFailureReason, transportKey } from '../../../src/proxy/upstream/upstream-tls.ts';
import { TlsHandshakeError } from '../../../src/proxy/tls/types.ts';
import { testPki } from '../../helpers/certs.ts';
import { tlsClusterYaml, upstreamTls } from './tls-upstreams.ts';

function decode(y: string): Cluster__Output {
  const r = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(y));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function ok(y: string, ctx?: ParseContext): ClusterConfig {
  const r = parseCluster(decode(y), 'clusters[0]', ctx);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function errors(y: string, ctx?: ParseContext): string[] {
  const r = parseCluster(decode(y), 'clusters[0]', ctx);
  assert.equal(r.ok, false, 'expected a config error');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.reason}`);
}

const RAW = { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer' } };

test('transport_socket with an UpstreamTlsContext: one TLS context, the default socket', () => {
  const pki = testPki();
  const c = ok(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: upstreamTls({ ca: pki.ca.certPem, client: pki.client, sni: 'backend.example.com', alpn: ['h2'] }) }));
  assert.equal(c.tlsContexts.length, 1);
  assert.equal(c.transportSocket, c.tlsContexts[0]);
  assert.equal(c.transportSocket?.sni, 'backend.example.com');
  assert.deepEqual(c.transportSocket?.alpn, ['h2']);
  assert.deepEqual(c.transportSocketMatches, []);
  assert.ok(Object.isFrozen(c.transportSocket));
});

test('raw_buffer (by type or by name) and no transport socket are plaintext', () => {
  assert.deepEqual(ok(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: RAW })).tlsContexts, []);
  assert.equal(ok(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: { name: 'envoy.transport_sockets.raw_buffer' } })).transportSocket, undefined);
  assert.deepEqual(ok(tlsClusterYaml('c', [{ port: 1 }])).tlsContexts, []);
});

test('transport_socket_matches (Istio form) and endpoint / locality metadata', () => {
  const pki = testPki();
  const matches = [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: upstreamTls({ ca: pki.ca.certPem, client: pki.client }) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: RAW },
  ];
  const y = tlsClusterYaml('c', [{ port: 1, match: { tlsMode: 'istio', n: 1 } }, { port: 2 }], { matches });
  const c = ok(y);
  assert.equal(c.tlsContexts.length, 1);
  assert.equal(c.transportSocket, undefined);
  assert.deepEqual(
    c.transportSocketMatches?.map((m) => [m.name, m.match, m.tls === undefined]),
    [
      ['tlsMode-istio', { tlsMode: 'istio' }, false],
      ['tlsMode-disabled', {}, true],
    ],
  );
  const eps = c.localities[0]!.endpoints;
  assert.deepEqual(eps[0]!.metadata, { 'envoy.transport_socket_match': { tlsMode: 'istio', n: 1 } });
  assert.equal(eps[1]!.metadata, undefined);
  const withLocality = ok(`
name: l
load_assignment:
  cluster_name: l
  endpoints:
  - metadata: { filter_metadata: { envoy.transport_socket_match: { tlsMode: istio } } }
    lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } }
`);
  assert.deepEqual(withLocality.localities[0]!.metadata, { 'envoy.transport_socket_match': { tlsMode: 'istio' } });
});

test('upstream_http_protocol_options: from HttpProtocolOptions, or the deprecated cluster field', () => {
  const pki = testPki();
  const c = ok(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: upstreamTls({ ca: pki.ca.certPem }), autoSni: true, autoSan: true, overrideSniHeader: 'X-Sni' }));
  assert.deepEqual(c.upstreamHttpProtocolOptions, { autoSni: true, autoSanValidation: true, overrideAutoSniHeader: 'x-sni' });
  const legacy = ok(`
name: c
upstream_http_protocol_options: { auto_sni: true }
load_assignment: { cluster_name: c, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }] }
`);
  assert.deepEqual(legacy.upstreamHttpProtocolOptions, { autoSni: true, autoSanValidation: false, overrideAutoSniHeader: '' });
  assert.equal(ok(tlsClusterYaml('c', [{ port: 1 }])).upstreamHttpProtocolOptions, undefined);
});

test('SDS references of a cluster TLS context reach the ParseContext hooks', () => {
  const sds: SdsReference[] = [];
  const ctx: ParseContext = { path: 'clusters[0]', clusterNames: undefined, tls: { staticSecrets: new Map(), sds: (r) => void sds.push(r) } };
  const ts = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }],
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {}, resource_api_version: 'V3' } },
      },
    },
  };
  const c = ok(tlsClusterYaml('c', [{ port: 1 }], { matches: [{ name: 'm', match: {}, transport_socket: ts }] }), ctx);
  assert.equal(c.tlsContexts.length, 1);
  assert.deepEqual(
    sds.map((r) => [r.name, r.path]),
    [
      ['default', 'clusters[0].transport_socket_matches[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0]'],
      ['ROOTCA', 'clusters[0].transport_socket_matches[0].transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config'],
    ],
  );
});

test('config errors name their field paths', () => {
  const pki = testPki();
  const tls = upstreamTls({ ca: pki.ca.certPem });
  // An unknown transport socket.
  assert.deepEqual(errors(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: { name: 'envoy.transport_sockets.alts' } })), [
    'clusters[0].transport_socket: unknown transport socket "envoy.transport_sockets.alts": legate supports envoy.transport_sockets.raw_buffer and envoy.transport_sockets.tls',
  ]);
  // A DownstreamTlsContext where an UpstreamTlsContext belongs, in the second match.
  const down = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext' } };
  const e2 = errors(tlsClusterYaml('c', [{ port: 1 }], { matches: [{ name: 'a', match: {}, transport_socket: tls }, { name: 'b', match: {}, transport_socket: down }] }));
  assert.equal(e2.length, 1);
  assert.match(e2[0]!, /^clusters\[0\]\.transport_socket_matches\[1\]\.transport_socket\.typed_config: /);
  // A bad field inside the context.
  const badAlpn = upstreamTls({ ca: pki.ca.certPem, alpn: [''] });
  const e3 = errors(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: badAlpn }));
  assert.match(e3[0]!, /^clusters\[0\]\.transport_socket\.typed_config\.common_tls_context\.alpn_protocols\[0\]: /);
  // An unknown static secret.
  const stat = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'missing' }] } } };
  const e4 = errors(tlsClusterYaml('c', [{ port: 1 }], { transportSocket: stat }), { path: 'clusters[0]', clusterNames: undefined, tls: { staticSecrets: new Map(), sds: () => {} } });
  assert.deepEqual(e4, ['clusters[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: unknown static secret: missing']);
  // A match without a transport socket.
  const e5 = errors(`
name: c
transport_socket_matches: [{ name: none, match: {} }]
`);
  assert.deepEqual(e5, ['clusters[0].transport_socket_matches[0].transport_socket: a transport_socket is required']);
  // Active health checks of a TLS cluster connect over its transport socket (health-check-tls.test.ts).
  const hc = `${tlsClusterYaml('c', [{ port: 1 }], { transportSocket: tls })}
health_checks: [{ timeout: 1s, interval: 5s, unhealthy_threshold: 2, healthy_threshold: 1, tcp_health_check: {}, tls_options: { alpn_protocols: [h2] } }]
`;
  const parsed = parseCluster(decode(hc), 'clusters[0]');
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors));
  assert.deepEqual(parsed.value.healthCheck?.tlsAlpn, ['h2']);
});

test('labelsMatch: every key of the match, deep-equal, in envoy.transport_socket_match metadata', () => {
  const md = { 'envoy.transport_socket_match': { tlsMode: 'istio', n: 1, b: true, l: [1, 'x'], s: { a: [true] } } };
  assert.equal(labelsMatch({ tlsMode: 'istio' }, md), true);
  assert.equal(labelsMatch({ tlsMode: 'istio', n: 1, b: true, l: [1, 'x'], s: { a: [true] } }, md), true);
  assert.equal(labelsMatch({ tlsMode: 'disabled' }, md), false);
  assert.equal(labelsMatch({ l: [1] }, md), false);
  assert.equal(labelsMatch({ n: '1' }, md), false);
  assert.equal(labelsMatch({ other: 'x' }, md), false);
  assert.equal(labelsMatch({}, md), true);
  assert.equal(labelsMatch({}, undefined), true);
  assert.equal(labelsMatch({ tlsMode: 'istio' }, undefined), false);
  assert.equal(labelsMatch({ tlsMode: 'istio' }, { 'istio': { tlsMode: 'istio' } }), false);
});

test('auto_sni / auto_san_validation from the Host, the override header, IP hosts', () => {
  const h = (m: Record<string, string>) => (n: string) => m[n];
  const both = { autoSni: true, autoSanValidation: true, overrideAutoSniHeader: '' };
  assert.deepEqual(autoTransportOptions(both, h({ ':authority': 'api.example.com:8443' })), { sni: 'api.example.com', verifySan: 'api.example.com' });
  assert.deepEqual(autoTransportOptions(both, h({ ':authority': '10.0.0.1:80' })), { sni: undefined, verifySan: '10.0.0.1' });
  assert.deepEqual(autoTransportOptions(both, h({ ':authority': '[::1]:80' })), { sni: undefined, verifySan: '::1' });
  assert.deepEqual(autoTransportOptions({ ...both, autoSanValidation: false }, h({ host: 'a.b' })), { sni: 'a.b', verifySan: undefined });
  const over = { autoSni: true, autoSanValidation: false, overrideAutoSniHeader: 'x-sni' };
  assert.deepEqual(autoTransportOptions(over, h({ ':authority': 'a.example.com', 'x-sni': 'b.example.com' })), { sni: 'b.example.com', verifySan: undefined });
  assert.deepEqual(autoTransportOptions(over, h({ ':authority': 'a.example.com', 'x-sni': '' })), { sni: 'a.example.com', verifySan: undefined });
  assert.equal(autoTransportOptions(undefined, h({ ':authority': 'a' })), undefined);
  assert.equal(autoTransportOptions({ autoSni: false, autoSanValidation: false, overrideAutoSniHeader: '' }, h({ ':authority': 'a' })), undefined);
  assert.deepEqual(parseAuthority('fe80::1'), { host: 'fe80::1', isIp: true });
  assert.equal(transportKey(undefined), '');
  assert.notEqual(transportKey({ sni: 'a' }), transportKey({ sni: 'b' }));
  assert.notEqual(transportKey({ sni: 'a' }), transportKey({ sni: 'a', verifySan: 'a' }));
});

test("transport failure reasons read as Envoy's TLS_error text", () => {
  const san = new Error('connect failed', { cause: new TlsHandshakeError('fail_verify_san', 'verify cert failed: SAN matcher') });
  assert.equal(transportFailureReason(san), 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify cert failed: SAN matcher:TLS_error_end');
  const alert = new TlsHandshakeError('connection_error', 'error:0A00045C:SSL routines::tlsv13 alert certificate required');
  assert.equal(transportFailureReason(alert), 'TLS_error:|error:0A00045C:SSL routines::tlsv13 alert certificate required:TLS_error_end');
  assert.equal(transportFailureReason(new Error('ECONNREFUSED')), undefined);
});
