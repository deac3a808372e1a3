// `legate wasm ...`: the sandbox for plugin authors.
//   legate wasm run PLUGIN.wasm [--config STR|@FILE] [--root-id ID] [--upstream URL | --echo]
//                   [--listen ADDR:PORT] [--admin ADDR:PORT] [--trace]
//       serves the plugin in front of an upstream (or a built-in echo server) on one listener, its
//       logs printed live; a change to PLUGIN.wasm is loaded without dropping the listener.
//   legate wasm test PLUGIN.wasm CASES.yaml   runs request/response cases through the plugin with
//                                             no network; PASS/FAIL per case; exit 0 when all pass.
// Exit codes (test): 0 all passed, 1 a case failed or the plugin does not load, 2 bad command line or cases file.

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { checkModule, WasmLoadError } from './proxy/wasm/vm-api.ts';
import { parseCasesFile, runCase } from './proxy/wasm/sandbox/case-runner.ts';

const USAGE = `usage: legate wasm run PLUGIN.wasm [--config STR|@FILE] [--root-id ID] [--upstream URL | --echo] [--listen ADDR:PORT] [--admin ADDR:PORT] [--trace]
       legate wasm test PLUGIN.wasm CASES.yaml
`;

export async function runWasm(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'test') return wasmTest(rest);
  if (cmd === 'run') return (await import('./proxy/wasm/sandbox/run.ts')).wasmRun(rest, USAGE);
  process.stderr.write(cmd === undefined || cmd === '--help' ? USAGE : `legate wasm: unknown command '${cmd}'\n${USAGE}`);
  return cmd === '--help' ? 0 : 2;
}

async function wasmTest(args: readonly string[]): Promise<number> {
  if (args.length !== 2) {
    process.stderr.write(USAGE);
    return 2;
  }
  const [wasmPath, casesPath] = args as [string, string];
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(readFileSync(wasmPath));
    checkModule(module);
  } catch (e) {
    process.stderr.write(`legate wasm test: ${wasmPath}: ${e instanceof WasmLoadError ? e.message : e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  let doc: unknown;
  try {
    doc = parse(readFileSync(casesPath, 'utf8'));
  } catch (e) {
    process.stderr.write(`legate wasm test: ${casesPath}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  const file = parseCasesFile(doc);
  if (!file.ok) {
    for (const err of file.errors) process.stderr.write(`${casesPath}: ${err}\n`);
    return 2;
  }
  let failed = 0;
  for (const c of file.value.cases) {
    const r = await runCase(module, file.value, c);
    if (r.failures.length === 0) process.stdout.write(`PASS ${r.name}\n`);
    else {
      failed++;
      process.stdout.write(`FAIL ${r.name}\n${r.failures.map((f) => `  - ${f}\n`).join('')}`);
    }
  }
  const total = file.value.cases.length;
  process.stdout.write(`${total - failed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}
