import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { collectUnpacked, decodeJson, extensionTypeUrl, toProto3Json, unpackAny } from '../../src/config/decode.ts';
import { lookupMessageType, protoLoadMs, releaseProtos } from '../../src/config/protos.ts';

// A worker gets a config and its Anys decoded by the main thread (collectUnpacked) in one message,
// and must see exactly what decoding them itself would give, without loading any .proto file.

type Obj = Record<string, any>;

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

function value<T>(r: { ok: true; value: T } | { ok: false; errors: readonly unknown[] }): T {
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return r.value;
}

const listener = value(
  decodeJson<Obj>('envoy.config.listener.v3.Listener', {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 1 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'hcm',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'x',
              route_config: { name: 'r', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] },
              http_filters: [
                { name: 'ts', typed_config: { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', type_url: `type.googleapis.com/${ROUTER}`, value: { suppress_envoy_headers: true } } },
                { name: 'envoy.filters.http.router', typed_config: { '@type': `type.googleapis.com/${ROUTER}` } },
              ],
            },
          },
        ],
      },
    ],
  }),
);
const cluster = value(
  decodeJson<Obj>('envoy.config.cluster.v3.Cluster', {
    name: 'c',
    transport_socket: { name: 'tls', typed_config: { '@type': TLS, sni: 'a', common_tls_context: { validation_context: { trusted_ca: { inline_bytes: Buffer.from('pem bytes').toString('base64') } } } } },
  }),
);
value(decodeJson(ROUTER, {})); // recorded: a config may name the router without typed_config

/** What this thread decodes: the JSON form keeps Buffers distinguishable from Uint8Arrays. */
function mainView(): Obj {
  const hcmAny = listener['filter_chains'][0].filters[0].typed_config;
  const hcm = value(unpackAny<Obj>(hcmAny, ''));
  const [ts, router] = hcm.message['http_filters'].map((f: Obj) => f['typed_config']);
  return {
    hcm: JSON.stringify(hcm),
    tsUrl: extensionTypeUrl(ts),
    ts: JSON.stringify(value(unpackAny(ts, ''))),
    router: JSON.stringify(value(unpackAny(router, ''))),
    tls: JSON.stringify(value(unpackAny(cluster['transport_socket'].typed_config, ''))),
    empty: JSON.stringify(value(decodeJson(ROUTER, {}))),
  };
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { adoptUnpacked } = await import(${JSON.stringify(new URL('../../src/config/unpacked-anys.ts', import.meta.url).href)});
  const d = await import(${JSON.stringify(new URL('../../src/config/decode.ts', import.meta.url).href)});
  const { protoLoadMs } = await import(${JSON.stringify(new URL('../../src/config/protos.ts', import.meta.url).href)});
  const { listener, cluster, unpacked } = workerData;
  adoptUnpacked(unpacked);
  const v = (r) => { if (!r.ok) throw new Error(JSON.stringify(r.errors)); return r.value; };
  const hcmAny = listener.filter_chains[0].filters[0].typed_config;
  const hcm = v(d.unpackAny(hcmAny, ''));
  const [ts, router] = hcm.message.http_filters.map((f) => f.typed_config);
  const tlsAny = cluster.transport_socket.typed_config;
  const tls = v(d.unpackAny(tlsAny, ''));
  const out = {
    hcm: JSON.stringify(hcm),
    tsUrl: d.extensionTypeUrl(ts),
    ts: JSON.stringify(v(d.unpackAny(ts, ''))),
    router: JSON.stringify(v(d.unpackAny(router, ''))),
    tls: JSON.stringify(tls),
    empty: JSON.stringify(v(d.decodeJson(${JSON.stringify(ROUTER)}, {}))),
  };
  const caIsBuffer = Buffer.isBuffer(tls.message.common_tls_context.validation_context.trusted_ca.inline_bytes);
  const loadedBefore = protoLoadMs();
  // Taken once: decoded here this time, from cloned bytes, so nested bytes come out as Uint8Arrays.
  const again = JSON.stringify(v(d.unpackAny(hcmAny, '')), (k, x) => (x instanceof Uint8Array ? { type: 'Buffer', data: [...x] } : x));
  parentPort.postMessage({ out, caIsBuffer, loadedBefore, again, loadedAfter: protoLoadMs() });
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

test('a worker unpacks Anys the main thread sent, with no .proto loaded, exactly as it would decode them', async () => {
  const unpacked = collectUnpacked({ listener, cluster });
  assert.equal(unpacked.anys.size, 4); // HCM, the TypedStruct, the router, the TLS context
  assert.deepEqual([...unpacked.empties.keys()], [ROUTER]);
  const w = new Worker(WORKER, { eval: true, workerData: { listener, cluster, unpacked } });
  const r = (await new Promise((resolve, reject) => w.once('message', resolve).once('error', reject))) as Obj;
  await w.terminate();
  assert.equal(r['error'], undefined, r['error']);
  assert.deepEqual(r['out'], mainView());
  assert.equal(r['out'].tsUrl, `type.googleapis.com/${ROUTER}`);
  assert.equal(r['caIsBuffer'], true, 'bytes fields are Buffers, as decoding gives');
  assert.equal(r['loadedBefore'], 0, 'no .proto file loaded in the worker');
  assert.equal(r['again'], r['out'].hcm, 'a second unpack decodes the bytes: same result');
  assert.ok(r['loadedAfter'] > 0);
});

test('releaseProtos: the next lookups load what they need again and decode and print the same', () => {
  const hcmAny = listener['filter_chains'][0].filters[0].typed_config;
  const decoded = JSON.stringify(value(unpackAny(hcmAny, '')));
  const printed = JSON.stringify(toProto3Json('envoy.config.listener.v3.Listener', listener));
  const oldRoot = lookupMessageType(HCM)!.root;
  const loaded = protoLoadMs();
  releaseProtos();
  assert.equal(JSON.stringify(value(unpackAny(hcmAny, ''))), decoded);
  assert.equal(JSON.stringify(toProto3Json('envoy.config.listener.v3.Listener', listener)), printed);
  assert.ok(protoLoadMs() > loaded, 'files were loaded again');
  assert.notEqual(lookupMessageType(HCM)!.root, oldRoot);
});
