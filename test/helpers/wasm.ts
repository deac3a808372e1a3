// Test helper: the Proxy-Wasm example plugins (wasm-examples/<name>), built from source with the
// AssemblyScript SDK by scripts/build-wasm.sh when a .wasm is missing or older than its source.

import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function examplePlugin(name: string): string {
  const wasm = `${ROOT}wasm-examples/${name}/build/${name}.wasm`;
  const src = `${ROOT}wasm-examples/${name}/assembly/index.ts`;
  if (!existsSync(wasm) || statSync(wasm).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('bash', [`${ROOT}scripts/build-wasm.sh`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return wasm;
}
