// The test control plane itself (test/helpers/xds): a raw grpc-js client speaks SotW and delta
// ADS and a per-type service to it over TCP and a Unix socket, and checks what Envoy relies on:
// wildcard responses carry every resource of the type, an atomic change is announced in CDS →
// EDS → LDS → RDS order, delta removals arrive as removed_resources, initial_resource_versions
// suppress what the client already has, ACK/NACK helpers match nonces, and a restart serves on
// the same address.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  DELTA_REQUEST,
  DELTA_RESPONSE,
  DISCOVERY_REQUEST,
  DISCOVERY_RESPONSE,
  METHODS,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse__Output,
  type DiscoveryMethod,
  type DiscoveryRequest,
  type DiscoveryResponse__Output,
} from '../../src/xds-client/codec.ts';
import { ControlPlane, CLUSTER_TYPE, CLUSTER_TYPE_URL, ENDPOINT_TYPE, ENDPOINT_TYPE_URL, LISTENER_TYPE, LISTENER_TYPE_URL } from '../helpers/xds/control-plane.ts';
import { tempDir, until } from './helpers.ts';

const dir = tempDir('legate-cp-');
after(() => rmSync(dir, { recursive: true, force: true }));

interface Stream<Req, Res> {
  readonly got: Res[];
  send(req: Req): void;
  next(n: number): Promise<Res>;
  close(): void;
  readonly ended: Promise<void>;
}

function open<Req, Res>(target: string, m: DiscoveryMethod, delta: boolean): Stream<Req, Res> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const codec = delta ? { ser: DELTA_REQUEST.serialize, de: DELTA_RESPONSE.deserialize } : { ser: DISCOVERY_REQUEST.serialize, de: DISCOVERY_RESPONSE.deserialize };
  const call = client.makeBidiStreamRequest(m.path, codec.ser as (r: Req) => Buffer, codec.de as (b: Buffer) => Res);
  const got: Res[] = [];
  call.on('data', (r: Res) => got.push(r));
  const ended = new Promise<void>((r) => {
    call.on('error', () => r());
    call.on('end', () => r());
  });
  return {
    got,
    send: (req) => call.write(req),
    next: (n) => until(() => got[n], `response #${n}`),
    close: () => {
      call.cancel();
      client.close();
    },
    ended,
  };
}

const cluster = (name: string): object => ({ name, type: 'EDS', connect_timeout: '1s', eds_cluster_config: { eds_config: { ads: {} } } });
const cla = (name: string, port: number): object => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] });
const listener = (name: string): object => ({ name, address: { socket_address: { address: '127.0.0.1', port_value: 1 } } });

test('SotW ADS over TCP: wildcard, atomic change in ADS order, ACK/NACK helpers, restart on the same port', async () => {
  const cp = await ControlPlane.start();
  try {
    cp.update((s) => {
      s.setJson(CLUSTER_TYPE, 'a', cluster('a'));
      s.setJson(CLUSTER_TYPE, 'b', cluster('b'));
      s.setJson(ENDPOINT_TYPE, 'a', cla('a', 1000));
    }, 'v1');
    const st = open<DiscoveryRequest, DiscoveryResponse__Output>(cp.target, METHODS.streamAggregated, false);
    st.send({ node: { id: 'n1' }, type_url: CLUSTER_TYPE_URL });
    const r0 = await st.next(0);
    assert.equal(r0.version_info, 'v1');
    assert.equal(r0.resources.length, 2, 'a wildcard response carries every cluster');
    st.send({ type_url: CLUSTER_TYPE_URL, version_info: 'v1', response_nonce: r0.nonce });
    const ack = await cp.ack(CLUSTER_TYPE, 'v1');
    assert.equal(ack.request.node?.id, undefined);
    assert.equal(cp.requests[0]!.request.node?.id, 'n1');
    st.send({ type_url: ENDPOINT_TYPE_URL, resource_names: ['a'] });
    const r1 = await st.next(1);
    assert.equal(r1.type_url, ENDPOINT_TYPE_URL);
    assert.equal(r1.resources.length, 1);
    st.send({ type_url: ENDPOINT_TYPE_URL, version_info: r1.version_info, response_nonce: r1.nonce, resource_names: ['a'] });
    st.send({ type_url: LISTENER_TYPE_URL });
    // Atomic: cluster b removed, a's endpoints changed, a listener added — announced CDS, EDS, LDS.
    cp.update((s) => {
      s.setJson(LISTENER_TYPE, 'l', listener('l'));
      s.setJson(ENDPOINT_TYPE, 'a', cla('a', 1001));
      s.remove(CLUSTER_TYPE, 'b');
    }, 'v2');
    await st.next(4);
    assert.deepEqual(st.got.slice(2).map((r) => [r.type_url, r.version_info, r.resources.length]), [
      [CLUSTER_TYPE_URL, 'v2', 1],
      [ENDPOINT_TYPE_URL, 'v2', 1],
      [LISTENER_TYPE_URL, 'v2', 1],
    ]);
    const since = cp.requests.length;
    st.send({ type_url: CLUSTER_TYPE_URL, version_info: 'v1', response_nonce: st.got[2]!.nonce, error_detail: { code: 3, message: 'bad a' } });
    const nack = await cp.nack(CLUSTER_TYPE, since);
    assert.equal(nack.request.error_detail?.message, 'bad a');
    st.close();
    await until(() => cp.openStreams === 0, 'the stream to close');

    const port = cp.port;
    await cp.restart();
    assert.equal(cp.port, port);
    const st2 = open<DiscoveryRequest, DiscoveryResponse__Output>(cp.target, METHODS.streamAggregated, false);
    st2.send({ node: { id: 'n1' }, type_url: CLUSTER_TYPE_URL, version_info: 'v2' });
    assert.equal((await st2.next(0)).version_info, 'v2');
    assert.ok((await cp.nextStreamRequest(CLUSTER_TYPE, 1)).stream > 1);
    st2.close();
  } finally {
    await cp.close();
  }
});

test('delta ADS over a Unix socket: removed_resources, initial_resource_versions, stop ends the stream', async () => {
  const socketPath = join(dir, 'cp.sock');
  const cp = await ControlPlane.start({ socketPath });
  try {
    cp.update((s) => {
      s.setJson(CLUSTER_TYPE, 'a', cluster('a'));
      s.setJson(CLUSTER_TYPE, 'b', cluster('b'));
    });
    const st = open<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>(cp.target, METHODS.deltaAggregated, true);
    st.send({ node: { id: 'n2' }, type_url: CLUSTER_TYPE_URL });
    const r0 = await st.next(0);
    assert.deepEqual(r0.resources.map((r) => r.name).sort(), ['a', 'b']);
    const versions = Object.fromEntries(r0.resources.map((r) => [r.name, r.version]));
    st.send({ type_url: CLUSTER_TYPE_URL, response_nonce: r0.nonce });
    await cp.ack(CLUSTER_TYPE, r0.system_version_info);
    cp.remove(CLUSTER_TYPE, 'b');
    const r1 = await st.next(1);
    assert.deepEqual(r1.removed_resources, ['b']);
    assert.equal(r1.resources.length, 0);
    assert.deepEqual(cp.responses.at(-1)?.removed, ['b']);

    cp.stop();
    await st.ended;
    cp.set(CLUSTER_TYPE, 'c', cluster('c'));
    await cp.listen();
    // A reconnect that already has `a` gets only what changed: c added, nothing about a.
    const st2 = open<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>(cp.target, METHODS.deltaAggregated, true);
    st2.send({ node: { id: 'n2' }, type_url: CLUSTER_TYPE_URL, initial_resource_versions: { a: versions['a']! } });
    const r2 = await st2.next(0);
    assert.deepEqual(r2.resources.map((r) => r.name), ['c']);
    const req = await cp.nextStreamRequest(CLUSTER_TYPE, 1);
    assert.ok(req.delta);
    assert.deepEqual(req.request.initial_resource_versions, { a: versions['a'] });
    st2.close();
  } finally {
    await cp.close();
  }
});

test('per-type services: StreamEndpoints serves named resources, DeltaListeners wildcard', async () => {
  const cp = await ControlPlane.start();
  try {
    cp.update((s) => {
      s.setJson(ENDPOINT_TYPE, 'a', cla('a', 1000));
      s.setJson(ENDPOINT_TYPE, 'b', cla('b', 1001));
      s.setJson(LISTENER_TYPE, 'l', listener('l'));
    });
    const eds = open<DiscoveryRequest, DiscoveryResponse__Output>(cp.target, METHODS.streamEndpoints, false);
    eds.send({ node: { id: 'n3' }, type_url: ENDPOINT_TYPE_URL, resource_names: ['b'] });
    assert.equal((await eds.next(0)).resources.length, 1);
    const lds = open<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>(cp.target, METHODS.deltaListeners, true);
    lds.send({ node: { id: 'n3' }, type_url: LISTENER_TYPE_URL, resource_names_subscribe: ['*'] });
    assert.deepEqual((await lds.next(0)).resources.map((r) => r.name), ['l']);
    assert.deepEqual(cp.requests.map((r) => r.method).sort(), ['DeltaListeners', 'StreamEndpoints']);
    eds.close();
    lds.close();
  } finally {
    await cp.close();
  }
});
