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
    execFileSync('bash', [`${ROOT}scripts/build-wasm.sh`, dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return wasm;
}

export type { SandboxPlugin as WasmPluginSpec } from '../../src/proxy/wasm/sandbox/bootstrap.ts';
/** A bootstrap: one HCM listener `ingress` (port 0) with the given Wasm plugins before the router, routing / to cluster `app`. */
export { sandboxBootstrap as wasmBootstrap } from '../../src/proxy/wasm/sandbox/bootstrap.ts';
