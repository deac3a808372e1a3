// envoy.filters.network.wasm in front of tcp_proxy, through the real process: the tcp-counter
// example plugin sees the new connection and the bytes each way, counts them in plugin-defined
// counters, and logs a line when the client closes; the bytes themselves pass unchanged.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startLegate, type Legate } from '../../../helpers/legate.ts';
import { examplePlugin } from '../../../helpers/wasm.ts';

const echo = net.createServer((s) => s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d]))));
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
const echoPort = (echo.address() as net.AddressInfo).port;
let legate: Legate | undefined;
after(async () => {
  await legate?.stop();
  echo.close();
});

function bootstrap(): Record<string, unknown> {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'tcp',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.wasm',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm',
                    config: {
                      name: 'tcp-counter',
                      root_id: 'tcp_counter',
                      configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'count' },
                      vm_config: { vm_id: 'tcp', runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: examplePlugin('tcp-counter') } } },
                    },
                  },
                },
                { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: 'tcp', cluster: 'echo' } },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'echo', connect_timeout: '1s', load_assignment: { cluster_name: 'echo', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: echoPort } } } }] }] } }],
    },
  };
}

async function exchange(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(payload));
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d;
      if (got.length >= payload.length + 5) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

test('tcp-counter: bytes pass unchanged, the plugin counts connections and bytes each way and logs on close', { timeout: 60_000 }, async () => {
  legate = await startLegate(bootstrap());
  const port = await legate.listenerPort('tcp');
  assert.equal(await exchange(port, 'hello'), 'echo:hello');
  assert.equal(await exchange(port, 'twelve bytes'), 'echo:twelve bytes');
  let s: Record<string, number> = {};
  for (let i = 0; i < 50; i++) {
    s = await legate.stats();
    if (s['wasmcustom.tcp_counter_upstream_bytes'] === 27) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(s['wasmcustom.tcp_counter_connections'], 2);
  assert.equal(s['wasmcustom.tcp_counter_downstream_bytes'], 5 + 12);
  assert.equal(s['wasmcustom.tcp_counter_upstream_bytes'], 10 + 17);
  for (let i = 0; i < 50 && !/bytes from upstream[\s\S]*bytes from upstream/.test(legate.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(legate.stderr(), /wasm log tcp-counter tcp_counter tcp: connection closed: 5 bytes from downstream, 10 bytes from upstream/);
  assert.match(legate.stderr(), /connection closed: 12 bytes from downstream, 17 bytes from upstream/);
});

test('plugin-defined metrics in /stats/prometheus: under their own names, without the envoy_ prefix (Envoy custom stat namespace)', { timeout: 60_000 }, async () => {
  const port = await legate!.listenerPort('tcp');
  await exchange(port, 'x');
  const text = await (await fetch(`${legate!.admin}/stats/prometheus`)).text();
  assert.match(text, /^# TYPE tcp_counter_connections counter$/m);
  assert.match(text, /^tcp_counter_connections [3-9]\d*$/m);
  assert.match(text, /^tcp_counter_downstream_bytes \d+$/m);
  assert.doesNotMatch(text, /envoy_wasmcustom/);
  assert.match(text, /^envoy_wasm_envoy_wasm_runtime_v8_created /m);
});
