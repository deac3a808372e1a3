// `legate wasm run`: one listener with the plugin before the router, in front of --upstream (an
// http://host:port URL) or a built-in echo server that answers with what it received as JSON. The
// process is the normal server (1 worker) on a generated Envoy bootstrap; when PLUGIN.wasm changes
// and still loads, the listener is replaced in place (new connections get the new plugin, old ones
// drain), never closed. --trace logs every host call the plugin makes.

import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from '../../../cli-options.ts';
import { loadConfig, Server } from '../../server.ts';
import { formatErrors } from '../../../config/result.ts';
import { loadBootstrap } from '../../../config/bootstrap.ts';
import { logger } from '../../log.ts';
import { checkModule } from '../vm-api.ts';
import { sandboxBootstrap, type SandboxListen } from './bootstrap.ts';
import { hostKey } from '../../host-port.ts';

const log = logger('wasm');

interface RunArgs {
  plugin: string;
  configuration: string;
  rootId: string;
  upstream: string | undefined;
  listen: SandboxListen;
  admin: SandboxListen;
  trace: boolean;
}

function hostPort(s: string): SandboxListen | undefined {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return { address: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function parse(argv: readonly string[]): RunArgs | string {
  const a: RunArgs = { plugin: '', configuration: '', rootId: '', upstream: undefined, listen: { address: '127.0.0.1', port: 10000 }, admin: { address: '127.0.0.1', port: 9901 }, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${x} needs a value`);
      return v;
    };
    try {
      if (x === '--config') {
        const v = value();
        a.configuration = v.startsWith('@') ? readFileSync(v.slice(1), 'utf8') : v;
      } else if (x === '--root-id') a.rootId = value();
      else if (x === '--upstream') a.upstream = value();
      else if (x === '--echo') a.upstream = undefined;
      else if (x === '--trace') a.trace = true;
      else if (x === '--listen' || x === '--admin') {
        const hp = hostPort(value());
        if (!hp) return `${x}: expected ADDR:PORT`;
        if (x === '--listen') a.listen = hp;
        else a.admin = hp;
      } else if (x.startsWith('-')) return `unknown flag ${x}`;
      else if (!a.plugin) a.plugin = resolve(x);
      else return `unexpected argument ${x}`;
    } catch (e) {
      return (e as Error).message;
    }
  }
  return a.plugin ? a : 'PLUGIN.wasm is required';
}

/** The echo upstream: answers every request with its method, path, headers and body as JSON. */
async function echoServer(): Promise<number> {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, null, 2)}\n`);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  s.unref();
  return (s.address() as net.AddressInfo).port;
}

function upstreamPort(url: string): number | string {
  const u = new URL(url);
  if (u.protocol !== 'http:') return `--upstream: only http:// URLs (got ${u.protocol})`;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return '--upstream: the sandbox proxies to a local upstream (127.0.0.1)';
  return Number(u.port || 80);
}

export async function wasmRun(argv: readonly string[], usage: string): Promise<number> {
  const a = parse(argv);
  if (typeof a === 'string') {
    process.stderr.write(`legate wasm run: ${a}\n${usage}`);
    return 2;
  }
  try {
    checkModule(new WebAssembly.Module(readFileSync(a.plugin)));
  } catch (e) {
    process.stderr.write(`legate wasm run: ${a.plugin}: ${(e as Error).message}\n`);
    return 1;
  }
  const port = a.upstream ? upstreamPort(a.upstream) : await echoServer();
  if (typeof port === 'string') {
    process.stderr.write(`legate wasm run: ${port}\n`);
    return 2;
  }
  const bootstrap = sandboxBootstrap([{ name: 'sandbox', rootId: a.rootId, file: a.plugin, configuration: a.configuration }], { app: port }, a.listen, a.admin);
  const file = join(mkdtempSync(join(tmpdir(), 'legate-wasm-run-')), 'bootstrap.json');
  writeFileSync(file, JSON.stringify(bootstrap, null, 2));
  if (a.trace) process.env.LEGATE_WASM_TRACE = '1';
  const parsed = parseArgs(['-c', file, '--concurrency', '1']);
  if (!parsed.ok) throw new Error(parsed.error);
  const cfg = loadConfig(parsed.options);
  if (!cfg.ok) {
    process.stderr.write(`${formatErrors(cfg.errors)}\n`);
    return 1;
  }
  const server = new Server(parsed.options, cfg.value);
  process.once('SIGTERM', () => void server.shutdown());
  process.once('SIGINT', () => void server.shutdown());
  await server.start();
  const bound = server.listenerPorts['ingress'] ?? a.listen.port;
  process.stdout.write(`legate wasm run: ${a.plugin} on http://${hostKey(a.listen.address, bound)}/ \u2192 ${a.upstream ?? `echo upstream (127.0.0.1:${port})`}; admin on ${server.adminPort}; Ctrl-C to stop\n`);
  watchPlugin(server, a.plugin, (generation) => sandboxBootstrap([{ name: 'sandbox', rootId: a.rootId, file: a.plugin, configuration: a.configuration, vmId: `sandbox-${generation}` }], { app: port }, a.listen, a.admin));
  return -1;
}

/**
 * Reloads the listener when the plugin file changes (debounced; a module that does not load is
 * reported and ignored). Each generation gets its own vm_id, so the filter chain differs and the
 * workers build it anew rather than keeping the old one.
 */
function watchPlugin(server: Server, plugin: string, bootstrapFor: (generation: number) => Record<string, unknown>): void {
  let timer: NodeJS.Timeout | undefined;
  let generation = 0;
  let last: Buffer = readFileSync(plugin);
  const reload = (): void => {
    let bytes: Buffer;
    try {
      bytes = readFileSync(plugin);
      if (bytes.equals(last)) return;
      checkModule(new WebAssembly.Module(bytes));
    } catch (e) {
      log.error(`not reloading ${plugin}: ${(e as Error).message}`);
      return;
    }
    last = bytes;
    const b = loadBootstrap({ configYaml: JSON.stringify(bootstrapFor(++generation)) });
    const listener = b.ok ? b.value.static_resources?.listeners[0] : undefined;
    if (!listener) return;
    void server.workers.ask({ type: 'xds', update: { listeners: [listener] } }).then((replies) => {
      const errors = replies.flatMap((r) => r.errors ?? []);
      if (errors.length > 0) log.error(`reloading ${plugin} failed: ${errors.join('; ')}`);
      else log.info(`reloaded ${plugin}: new connections get the new plugin`);
    });
  };
  watch(plugin, () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  }).unref?.();
}
