// The bootstrap the sandbox (and the tests) serve a plugin with: one HCM listener `ingress` whose
// route `/` goes to cluster `app`, the given Proxy-Wasm plugins before the router, and the named
// clusters on 127.0.0.1 ports. Plain Envoy v3 config: what `legate wasm run` writes also runs on Envoy.

export interface SandboxPlugin {
  readonly name: string;
  readonly rootId: string;
  readonly file: string;
  /** Passed as a StringValue (the plugin reads it as raw bytes). */
  readonly configuration?: string;
  readonly failOpen?: boolean;
  readonly vmId?: string;
}

export interface SandboxListen {
  readonly address: string;
  readonly port: number;
}

export function sandboxBootstrap(plugins: readonly SandboxPlugin[], clusters: Readonly<Record<string, number>>, listen: SandboxListen = { address: '127.0.0.1', port: 0 }, admin: SandboxListen = { address: '127.0.0.1', port: 0 }): Record<string, unknown> {
  return {
    admin: { address: { socket_address: { address: admin.address, port_value: admin.port } } },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: { socket_address: { address: listen.address, port_value: listen.port } },
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
