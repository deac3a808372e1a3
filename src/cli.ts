// legate's entry point: parses Envoy's flags, then validates (`--mode validate`) or serves.
// Exit codes: 0 ok, 1 bad config or failed start, 2 bad command line.

import { parseArgs, USAGE, type CliOptions } from './cli-options.ts';
import { loadBootstrap } from './config/bootstrap.ts';
import { toProto3Json } from './config/decode.ts';
import { prefetchRemoteCode, setRemoteCodeValidateOnly } from './proxy/wasm/remote-code.ts';
import { loadConfig, Server, VERSION } from './proxy/server.ts';
import { formatErrors } from './config/result.ts';
import { logger, setLogLevel } from './proxy/log.ts';
import { resumeOptimizingCompilers } from './proxy/worker/v8-flags.ts';

const log = logger('main');

/** Fetches the bootstrap's remote Wasm modules (code.remote) into the cache before it is validated. */
async function prefetchWasm(o: CliOptions): Promise<void> {
  const b = loadBootstrap({ configPath: o.configPath, configYaml: o.configYaml, allowUnknownFields: o.allowUnknownStaticFields });
  if (b.ok) await prefetchRemoteCode(b.value, toProto3Json('envoy.config.bootstrap.v3.Bootstrap', b.value));
}

async function main(argv: readonly string[]): Promise<number> {
  // The launcher's start-up hold on the optimizing compilers is for serving: the tools get them now.
  if (argv[0] === 'certs' || argv[0] === 'wasm') resumeOptimizingCompilers();
  if (argv[0] === 'certs') return (await import('./cli-certs.ts')).runCerts(argv.slice(1));
  if (argv[0] === 'wasm') return (await import('./cli-wasm.ts')).runWasm(argv.slice(1));
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`legate: ${parsed.error}\n`);
    return 2;
  }
  const o = parsed.options;
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (o.version) {
    process.stdout.write(`legate version: ${VERSION} (Envoy v3 API) on Node.js ${process.version}\n`);
    return 0;
  }
  setLogLevel(o.logLevel);
  for (const [c, l] of o.componentLogLevels) setLogLevel(l, c);
  if (!o.configPath && !o.configYaml) {
    process.stderr.write('legate: a bootstrap is required: -c FILE or --config-yaml YAML\n');
    return 2;
  }
  setRemoteCodeValidateOnly(o.mode === 'validate');
  if (o.mode !== 'validate') await prefetchWasm(o);
  const cfg = loadConfig(o);
  if (!cfg.ok) {
    process.stderr.write(`${formatErrors(cfg.errors)}\n`);
    if (o.mode === 'validate') process.stdout.write('ERROR\n');
    return 1;
  }
  if (o.mode === 'validate') {
    for (const w of cfg.value.warnings) log.warn(w);
    process.stdout.write('OK\n');
    return 0;
  }
  const server = new Server(o, cfg.value);
  process.once('SIGTERM', () => void server.shutdown());
  process.once('SIGINT', () => void server.shutdown());
  try {
    await server.start();
  } catch (e) {
    log.error(`failed to start: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  if (o.mode === 'init_only') {
    server.quit();
  }
  return -1; // keep serving
}

// Loaded to fill the compile cache (src/compile-cache-prime.ts): nothing runs.
if (!process.env.LEGATE_PRIME_COMPILE_CACHE) void main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`legate: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
