// Test helper: the Proxy-Wasm example plugins (wasm-examples/<name>) and test-only plugins
// (test/fixtures/wasm/<name>), built from source with the AssemblyScript SDK by
// scripts/build-wasm.sh when a .wasm is missing or older than its source.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A plugin built from wasm-examples/<name> or, for test-only plugins, test/fixtures/wasm/<name>. */
export function examplePlugin(name: string): string {
  const dir = existsSync(`${ROOT}wasm-examples/${name}`) ? `${ROOT}wasm-examples/${name}` : `${ROOT}test/fixtures/wasm/${name}`;
  const wasm = `${dir}/build/${name}.wasm`;
  const src = `${dir}/assembly/index.ts`;
  if (!existsSync(wasm) || statSync(wasm).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('bash', [`${ROOT}scripts/build-wasm.sh`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return wasm;
}

export interface WasmPluginSpec {
  readonly name: string;
  readonly rootId: string;
  readonly file: string;
  readonly configuration?: string;
  readonly failOpen?: boolean;
  readonly vmId?: string;
}

/** A bootstrap: one HCM listener `ingress` (port 0) with the given Wasm plugins before the router, routing / to cluster `app`. */
export function wasmBootstrap(plugins: readonly WasmPluginSpec[], clusters: Readonly<Record<string, number>>): Record<string, unknown> {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'ingress',
                    route_config: { virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
                    http_filters: [
                      ...plugins.map((p) => ({
                        name: 'envoy.filters.http.wasm',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
                          config: {
                            name: p.name,
                            root_id: p.rootId,
                            fail_open: p.failOpen ?? false,
                            ...(p.configuration !== undefined ? { configuration: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: p.configuration } } : {}),
                            vm_config: { vm_id: p.vmId ?? p.name, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: p.file } } },
                          },
                        },
                      })),
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: Object.entries(clusters).map(([name, port]) => ({
        name,
        connect_timeout: '1s',
        load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
      })),
    },
  };
}
