// envoy.bootstrap.wasm through the real process (--concurrency 2): a singleton service runs one VM
// for the process, a non-singleton one a VM per worker; both tick (plugin counter grows); an
// unsupported bootstrap extension is a warning, not an error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLegate } from '../../helpers/legate.ts';
import { examplePlugin } from '../../helpers/wasm.ts';

function service(singleton: boolean, vmId: string): Record<string, unknown> {
  return {
    name: 'envoy.bootstrap.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.wasm.v3.WasmService',
      singleton,
      config: {
        name: `ticker-${vmId}`,
        root_id: 'ticker',
        configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'tick' },
        vm_config: { vm_id: vmId, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: examplePlugin('ticker') } } },
      },
    },
  };
}

for (const singleton of [true, false]) {
  test(`bootstrap Wasm service, singleton ${singleton}: ${singleton ? 'one VM' : 'one VM per worker'}, its timer runs`, { timeout: 60_000 }, async () => {
    const l = await startLegate(
      {
        admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
        bootstrap_extensions: [service(singleton, 'svc'), { name: 'envoy.bootstrap.internal_listener', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Empty' } }],
      },
      { concurrency: 2 },
    );
    try {
      let s: Record<string, number> = {};
      for (let i = 0; i < 100 && !((s['wasmcustom.ticker_ticks'] ?? 0) >= 5); i++) {
        await new Promise((r) => setTimeout(r, 50));
        s = await l.stats();
      }
      assert.ok((s['wasmcustom.ticker_ticks'] ?? 0) >= 5, `ticks ${s['wasmcustom.ticker_ticks']}`);
      assert.equal(s['wasm.envoy.wasm.runtime.v8.created'], singleton ? 1 : 2);
      assert.match(l.stderr(), /bootstrap_extensions\[1\]: bootstrap extension 'envoy.bootstrap.internal_listener' \(google.protobuf.Empty\) is not supported; ignored/);
    } finally {
      await l.stop();
    }
  });
}
