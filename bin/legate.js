#!/usr/bin/env node
// legate's launcher: runs src/cli.ts on Node >= 24 (type stripping, reusePort). When started by an
// older Node, re-executes itself with the Node 24 that `npm install` put in node_modules,
// forwarding signals so SIGTERM still drains.
import { spawn } from 'node:child_process';
import { enableCompileCache } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
if (major >= 24) {
  // Caches compiled (and type-stripped) modules: faster start, and no TypeScript stripper in memory
  // once warm. NODE_COMPILE_CACHE picks the directory; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
  enableCompileCache();
  // Before any module imports node:http: keeps Node's bundled undici out of this thread (~1.5 MB of heap).
  const { importHttpWithoutUndici } = await import('../src/proxy/worker/lazy-http-exports.ts');
  await importHttpWithoutUndici();
  await import(cli);
} else {
  const node24 = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(`legate needs Node.js >= 24 (this is ${process.version}); run npm install first\n`);
    process.exit(1);
  }
  const child = spawn(node24, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
