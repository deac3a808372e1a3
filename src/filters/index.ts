// Registers every built-in extension. Called explicitly at start-up (main thread and workers);
// importing a filter module never registers it.

import type { ExtensionRegistry } from './registry.ts';
// HCM pending
import { registerTcpProxy } from './network/tcp_proxy/index.ts';
// router pending
import { registerTlsInspector } from './listener/tls_inspector/index.ts';
import { registerHttpInspector } from './listener/http_inspector/index.ts';

let done = false;

export function registerBuiltins(registry: ExtensionRegistry): void {
  if (done) return;
  done = true;
  // registerHcm(registry);
  registerTcpProxy(registry);
  // registerRouter(registry);
  registerTlsInspector(registry);
  registerHttpInspector(registry);
}
