// SDS over gRPC against the in-process control plane, over a Unix socket and over TCP: the first
// secret, ACK (version + nonce), node identity, NACK of a bad secret (error_detail, previous
// version echoed, stats), rotation, resources nobody asked for, reconnection after the server
// restarts, initial_fetch_timeout, shared subscriptions and the delta protocol.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync, rmSync } from 'node:fs';
import { ControlPlane, certificateSecret, validationSecret, packJson, SECRET_TYPE_URL } from '../helpers/xds/control-plane.ts';
import { testPki } from '../helpers/certs.ts';
import type { CertificateSecret } from '../../src/proxy/tls/types.ts';
import type { DiscoveryRequest__Output, DeltaDiscoveryRequest__Output } from '../../src/xds-client/codec.ts';
import { checkSdsConfigSource } from '../../src/xds-client/sds-client.ts';
import { resolveGrpcTarget } from '../../src/xds-client/grpc-transport.ts';
import { configSource, grpcSource, node, sdsHarness, serialOf, tempDir, until, xdsCluster } from './helpers.ts';

const pki = testPki();
const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

function sotw(cp: ControlPlane, stream?: number): DiscoveryRequest__Output[] {
  return cp.requests.filter((r) => !r.delta && (stream === undefined || r.stream === stream)).map((r) => r.request as DiscoveryRequest__Output);
}

for (const transport of ['unix', 'tcp'] as const) {
  test(`SDS over ${transport}: first secret, ACK, node, NACK of a bad secret, rotation`, async () => {
    const socketPath = join(dir, `sds-${transport}.sock`);
    const cp = await ControlPlane.start(transport === 'unix' ? { socketPath } : {});
    const cluster = xdsCluster('sds-grpc', transport === 'unix' ? { pipe: socketPath } : { port: cp.port });
    const h = sdsHarness([cluster]);
    try {
      cp.setSecret('default', certificateSecret('default', pki.server), 'v1');
      const sub = h.client.subscribe('default', grpcSource('sds-grpc'), 'sds_config');
      assert.ok(sub.ok);
      assert.equal(await sub.value.initialized, 'success');
      assert.equal(h.received.length, 1);
      const first = h.received[0]!;
      assert.equal(first.name, 'default');
      assert.equal(first.version, 'v1');
      assert.equal(first.secret.kind, 'tls_certificate');
      assert.equal(await serialOf((first.secret as CertificateSecret).certificateChain), await serialOf(pki.server.certPem));

      // First request: node identity, the secret's name, empty version and nonce.
      const reqs = await cp.waitFor(() => sotw(cp).length >= 2 && sotw(cp), 'the ACK');
      const [initial, ack] = reqs as [DiscoveryRequest__Output, DiscoveryRequest__Output];
      assert.equal(initial.type_url, SECRET_TYPE_URL);
      assert.deepEqual(initial.resource_names, ['default']);
      assert.equal(initial.version_info, '');
      assert.equal(initial.response_nonce, '');
      assert.equal(initial.node?.id, 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local');
      assert.equal(initial.node?.cluster, 'pod.ns');
      // ACK: the accepted version and the response's nonce, no error.
      assert.equal(ack.version_info, 'v1');
      assert.equal(ack.response_nonce, cp.responses[0]!.nonce);
      assert.equal(ack.error_detail, null);
      assert.equal(h.counter('sds.default.update_success'), 1);
      assert.equal(h.counter('sds.default.update_attempt'), 2);
      assert.equal(h.counter('sds.default.update_rejected'), 0);
      assert.equal(h.stats.snapshot().gauges['control_plane.connected_state'], 1);

      // A certificate with someone else's key: NACKed, previous version echoed, nothing applied.
      cp.setSecret('default', certificateSecret('default', { certPem: pki.server.certPem, keyPem: pki.client.keyPem }), 'v2');
      const nack = await cp.waitFor(() => sotw(cp).find((r) => r.error_detail !== null), 'the NACK');
      assert.equal(nack.version_info, 'v1');
      assert.equal(nack.response_nonce, cp.responses[1]!.nonce);
      assert.equal(nack.error_detail?.code, 3);
      assert.match(nack.error_detail?.message ?? '', /secret 'default': tls_certificate\.private_key: private key does not match the certificate/);
      assert.equal(h.counter('sds.default.update_rejected'), 1);
      assert.equal(h.received.length, 1);
      assert.equal(sub.value.version, 'v1');

      // Rotation: a good secret again is accepted and ACKed.
      cp.setSecret('default', certificateSecret('default', pki.ecdsaServer), 'v3');
      await until(() => h.received.length === 2, 'the rotated secret');
      assert.equal(h.received[1]!.version, 'v3');
      assert.equal(await serialOf((h.received[1]!.secret as CertificateSecret).certificateChain), await serialOf(pki.ecdsaServer.certPem));
      const ack3 = await cp.waitFor(() => sotw(cp).find((r) => r.version_info === 'v3'), 'the ACK of v3');
      assert.equal(ack3.response_nonce, cp.responses[2]!.nonce);
      assert.equal(h.counter('sds.default.update_success'), 2);
      assert.equal(h.counter('sds.default.update_attempt'), 4);
    } finally {
      h.client.close();
      await cp.close();
    }
  });
}

test('a validation context secret (ROOTCA) and a secret nobody asked for', async () => {
  const socketPath = join(dir, 'sds-rootca.sock');
  const cp = await ControlPlane.start({ socketPath });
  const h = sdsHarness([xdsCluster('sds-grpc', { pipe: socketPath })]);
  try {
    cp.setSecret('ROOTCA', validationSecret('ROOTCA', pki.ca), 'r1');
    const sub = h.client.subscribe('ROOTCA', grpcSource('sds-grpc'), 'sds_config');
    assert.ok(sub.ok);
    assert.equal(await sub.value.initialized, 'success');
    const v = h.received[0]!.secret;
    assert.equal(v.kind, 'validation_context');
    assert.equal(v.kind === 'validation_context' && v.trustedCa?.trim(), pki.ca.certPem.trim());

    // A response carrying only a resource for another name: ignored, but ACKed.
    const other = packJson('envoy.extensions.transport_sockets.tls.v3.Secret', certificateSecret('other', pki.server));
    cp.pushRaw(SECRET_TYPE_URL, [other], 'r2');
    const ack = await cp.waitFor(() => sotw(cp).find((r) => r.version_info === 'r2'), 'the ACK of r2');
    assert.equal(ack.error_detail, null);
    assert.equal(h.received.length, 1);
    assert.equal(h.counter('sds.ROOTCA.update_success'), 1);

    // Bytes that are no Secret: the whole response is NACKed.
    cp.pushRaw(SECRET_TYPE_URL, [{ type_url: SECRET_TYPE_URL, value: Buffer.from([0xff, 0xff, 0xff]) }], 'r3');
    const nack = await cp.waitFor(() => sotw(cp).find((r) => r.error_detail !== null), 'the NACK of r3');
    assert.equal(nack.version_info, 'r2');
    assert.match(nack.error_detail?.message ?? '', /resources\[0\]/);
    assert.equal(h.counter('sds.ROOTCA.update_rejected'), 1);
  } finally {
    h.client.close();
    await cp.close();
  }
});

test('reconnects after the control plane restarts, re-sending the accepted version', async () => {
  const socketPath = join(dir, 'sds-restart.sock');
  const cp = await ControlPlane.start({ socketPath });
  const h = sdsHarness([xdsCluster('sds-grpc', { pipe: socketPath })]);
  try {
    cp.setSecret('default', certificateSecret('default', pki.server), 'v1');
    const sub = h.client.subscribe('default', grpcSource('sds-grpc'), 'sds_config');
    assert.ok(sub.ok);
    await sub.value.initialized;
    await cp.waitFor(() => sotw(cp).some((r) => r.version_info === 'v1'), 'the ACK');
    const firstStream = cp.requests[0]!.stream;

    cp.stop();
    await until(() => h.counter('sds.default.update_failure') >= 1, 'the stream failure');
    assert.equal(h.stats.snapshot().gauges['control_plane.connected_state'], 0);
    cp.setSecret('default', certificateSecret('default', pki.ecdsaServer), 'v2');
    await cp.listen();

    const again = await cp.waitFor(() => cp.requests.find((r) => r.stream !== firstStream && !r.delta)?.request as DiscoveryRequest__Output | undefined, 'a request on a new stream');
    // A new stream starts over with the node, the names and the version it already has.
    assert.equal(again.version_info, 'v1');
    assert.equal(again.response_nonce, '');
    assert.deepEqual(again.resource_names, ['default']);
    assert.equal(again.node?.id, node().id);
    await until(() => h.received.length === 2, 'the secret served after the restart');
    assert.equal(h.received[1]!.version, 'v2');
    assert.equal(h.counter('sds.default.update_success'), 2);
  } finally {
    h.client.close();
    await cp.close();
  }
});

test('set_node_on_first_message_only sends the node once per stream', async () => {
  const cp = await ControlPlane.start();
  const h = sdsHarness([xdsCluster('sds-grpc', { port: cp.port })]);
  try {
    cp.setSecret('default', certificateSecret('default', pki.server), 'v1');
    const sub = h.client.subscribe('default', grpcSource('sds-grpc', { set_node_on_first_message_only: true }), 'sds_config');
    assert.ok(sub.ok);
    await sub.value.initialized;
    const [first, ack] = await cp.waitFor(() => sotw(cp).length >= 2 && sotw(cp), 'the ACK');
    assert.equal(first?.node?.id, node().id);
    assert.equal(ack?.node, null);
  } finally {
    h.client.close();
    await cp.close();
  }
});

test('initial_fetch_timeout ends the initial fetch without a secret; one subscription per name', async () => {
  const cp = await ControlPlane.start();
  const h = sdsHarness([xdsCluster('sds-grpc', { port: cp.port })]);
  try {
    const src = configSource({ api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] }, resource_api_version: 'V3', initial_fetch_timeout: '0.2s' });
    const a = h.client.subscribe('late', src, 'a.sds_config');
    const b = h.client.subscribe('late', src, 'b.sds_config');
    assert.ok(a.ok && b.ok);
    assert.equal(a.value, b.value);
    assert.equal(await a.value.initialized, 'init_fetch_timeout');
    assert.equal(h.counter('sds.late.init_fetch_timeout'), 1);
    // The secret arriving later is still taken.
    cp.setSecret('late', certificateSecret('late', pki.server), 'v1');
    await until(() => h.received.length === 1, 'the late secret');
    assert.equal(new Set(cp.requests.map((r) => r.stream)).size, 1);
  } finally {
    h.client.close();
    await cp.close();
  }
});

test('DELTA_GRPC: DeltaSecrets subscribe, ACK, NACK and rotation', async () => {
  const socketPath = join(dir, 'sds-delta.sock');
  const cp = await ControlPlane.start({ socketPath });
  const h = sdsHarness([xdsCluster('sds-grpc', { pipe: socketPath })]);
  const delta = (): DeltaDiscoveryRequest__Output[] => cp.requests.filter((r) => r.delta).map((r) => r.request as DeltaDiscoveryRequest__Output);
  try {
    cp.setSecret('default', certificateSecret('default', pki.server));
    const sub = h.client.subscribe('default', grpcSource('sds-grpc', {}, 'DELTA_GRPC'), 'sds_config');
    assert.ok(sub.ok);
    assert.equal(await sub.value.initialized, 'success');
    const [first, ack] = await cp.waitFor(() => delta().length >= 2 && delta(), 'the delta ACK');
    assert.equal(cp.requests[0]!.method, 'DeltaSecrets');
    assert.deepEqual(first?.resource_names_subscribe, ['default']);
    assert.equal(first?.node?.id, node().id);
    assert.equal(ack?.response_nonce, cp.responses[0]!.nonce);
    assert.equal(ack?.error_detail, null);

    cp.setSecret('default', certificateSecret('default', { certPem: pki.server.certPem, keyPem: pki.client.keyPem }));
    const nack = await cp.waitFor(() => delta().find((r) => r.error_detail !== null), 'the delta NACK');
    assert.equal(nack.response_nonce, cp.responses[1]!.nonce);
    assert.match(nack.error_detail?.message ?? '', /private key does not match/);
    assert.equal(h.counter('sds.default.update_rejected'), 1);

    cp.setSecret('default', certificateSecret('default', pki.ecdsaServer));
    await until(() => h.received.length === 2, 'the rotated secret');
    assert.equal(h.counter('sds.default.update_success'), 2);
  } finally {
    h.client.close();
    await cp.close();
  }
});

test('sds_config errors name the field', () => {
  const clusters = [xdsCluster('sds-grpc', { port: 1 })];
  const ads = checkSdsConfigSource(configSource({ ads: {}, resource_api_version: 'V3' }), clusters, 'x.sds_config');
  assert.ok(!ads.ok);
  assert.equal(ads.errors[0]!.path, 'x.sds_config.ads');
  assert.match(ads.errors[0]!.reason, /SDS over ADS needs dynamic_resources.ads_config/);
  assert.ok(checkSdsConfigSource(configSource({ ads: {}, resource_api_version: 'V3' }), clusters, 'x.sds_config', true).ok);
  const unknown = checkSdsConfigSource(grpcSource('nope'), clusters, 'x.sds_config');
  assert.ok(!unknown.ok);
  assert.equal(unknown.errors[0]!.path, 'x.sds_config.api_config_source.grpc_services[0].envoy_grpc.cluster_name');
  const rest = checkSdsConfigSource(configSource({ api_config_source: { api_type: 'REST', cluster_names: ['sds-grpc'] }, resource_api_version: 'V3' }), clusters, 'x');
  assert.ok(!rest.ok);
  assert.equal(rest.errors[0]!.path, 'x.api_config_source.api_type');
  const google = checkSdsConfigSource(configSource({ api_config_source: { api_type: 'GRPC', grpc_services: [{ google_grpc: { target_uri: 'unix:/tmp/x', stat_prefix: 'sds' } }] }, resource_api_version: 'V3' }), clusters, 'x');
  assert.ok(google.ok);
});

test("Istio's shape: pipe ./var/run/secrets/workload-spiffe-uds/socket, relative to the working directory", async () => {
  const cwd = process.cwd();
  const work = tempDir('legate-istio-');
  process.chdir(work);
  mkdirSync('./var/run/secrets/workload-spiffe-uds', { recursive: true });
  const socketPath = './var/run/secrets/workload-spiffe-uds/socket';
  const cp = await ControlPlane.start({ socketPath });
  const cluster = xdsCluster('sds-grpc', { pipe: socketPath });
  const h = sdsHarness([cluster]);
  try {
    const t = resolveGrpcTarget(grpcSource('sds-grpc'), [cluster], 'sds_config');
    assert.ok(t.ok);
    assert.equal(t.value.target.target, 'unix:./var/run/secrets/workload-spiffe-uds/socket');
    assert.equal(t.value.target.authority, 'sds-grpc');
    cp.setSecret('default', certificateSecret('default', pki.serverSpiffe));
    cp.setSecret('ROOTCA', validationSecret('ROOTCA', pki.ca));
    const a = h.client.subscribe('default', grpcSource('sds-grpc'), 'a');
    const b = h.client.subscribe('ROOTCA', grpcSource('sds-grpc'), 'b');
    assert.ok(a.ok && b.ok);
    const outcomes = await h.client.initialized();
    assert.deepEqual([...outcomes], [['default', 'success'], ['ROOTCA', 'success']]);
    // As Envoy: one stream per secret.
    assert.equal(new Set(cp.requests.map((r) => r.stream)).size, 2);
    assert.deepEqual(h.received.map((r) => r.secret.kind).sort(), ['tls_certificate', 'validation_context']);
  } finally {
    h.client.close();
    await cp.close();
    process.chdir(cwd);
    rmSync(work, { recursive: true, force: true });
  }
});
