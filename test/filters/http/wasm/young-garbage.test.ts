// The Proxy-Wasm HTTP filter's per-stream objects die young: driven in-process with the real
// header-filter plugin (wasm-examples, AssemblyScript SDK), a stream that has ended leaves nothing
// in V8's old generation. Before, every stream's whole object graph was promoted (~5 KB per
// request under load, a full GC every ~300 ms): the plugin's header map accessors were object
// literals with a getter around a per-stream closure, and the VM kept contexts in a long-lived Map.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FilterHeadersStatus } from '../../../../src/filters/http/filter.ts';
import { WasmHttpFilterFactory } from '../../../../src/filters/http/wasm/filter.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import type { WasmPluginConfig } from '../../../../src/proxy/wasm/plugin-config.ts';
import { examplePlugin } from '../../../helpers/wasm.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';
import { oldSpaceGrowthPerBatch, requestSizedPayload } from '../../../helpers/young-garbage.ts';
import { FakeStream, requestHeaders } from '../router/harness.ts';

/** A stream that weighs what a real one does (its filters, headers, stream info and the rest). */
class WeightedStream extends FakeStream {
  readonly weight = requestSizedPayload();
}

test('a Proxy-Wasm HTTP stream leaves nothing in the old generation once it ends', () => {
  const code = readFileSync(examplePlugin('header-filter'));
  const config: WasmPluginConfig = {
    name: 'young-garbage',
    rootId: 'header_filter',
    vmId: 'young-garbage',
    runtime: 'envoy.wasm.runtime.v8',
    module: new WebAssembly.Module(code),
    codeSha256: createHash('sha256').update(code).digest('hex'),
    configuration: Buffer.from('yg'),
    vmConfiguration: Buffer.alloc(0),
    environment: [],
    failOpen: false,
  };
  const stats = new StatsStore();
  const factory = new WasmHttpFilterFactory(config, { stats, clusterManager: undefined as unknown as ClusterManager, workerId: 0, ...testRuntime() });
  let served = 0;
  const growth = oldSpaceGrowthPerBatch(() => {
    const s = new WeightedStream(undefined, (cb) => factory.create(config, cb));
    const req = requestHeaders('GET', '/');
    assert.equal(s.filter.onRequestHeaders!(req, true), FilterHeadersStatus.Continue);
    assert.equal(req.get('x-wasm-request'), 'yg');
    return () => {
      const resp = HeaderMap.fromPairs([[':status', '200'], ['content-length', '12']]);
      assert.equal(s.filter.onResponseHeaders!(resp, false), FilterHeadersStatus.Continue);
      assert.equal(resp.get('x-wasm-response'), 'yg');
      s.filter.onDestroy?.();
      served++;
    };
  });
  assert.equal(served, 12 * 200);
  assert.equal(stats.snapshot().counters['wasmcustom.wasm_header_filter_requests'], served);
  // 200 streams per batch: over 500 KB per batch if each stream's graph were promoted.
  assert.ok(growth < 30_000, `${growth} B per 200 streams reached the old space`);
});

test('why HeaderMapView is a class: an object literal whose getter closes over a request is promoted', () => {
  class View {
    readonly #writable: () => boolean;
    constructor(w: () => boolean) {
      this.#writable = w;
    }
    get writable(): boolean {
      return this.#writable();
    }
  }
  // The class first: see oldSpaceGrowthPerBatch on the order.
  const cls = oldSpaceGrowthPerBatch(() => {
    const p = requestSizedPayload();
    const view = new View(() => p.length > 0);
    return () => assert.equal(view.writable, true);
  });
  const literal = oldSpaceGrowthPerBatch(() => {
    const p = requestSizedPayload();
    const writable = (): boolean => p.length > 0;
    const view = { get writable() { return writable(); } };
    return () => assert.equal(view.writable, true);
  });
  assert.ok(cls < 30_000, `class: ${cls} B per batch reached the old space`);
  assert.ok(literal > 100_000, `the literal should show the promotion (got ${literal} B per batch)`);
});
