// `/logging`: lists and changes log levels through src/proxy/log.ts, with Envoy's query forms
// (`?level=`, `?<logger>=<level>`, `?paths=a:debug,b:info`). A bad request is answered 404 with usage, as Envoy does.

import { LEVELS, logLevels, parseLevel, setLogLevel, type LogLevel } from '../log.ts';

// Envoy's logger ids that a legate component may use; components set at runtime are listed too.
const KNOWN_LOGGERS = [
  'admin', 'aws', 'client', 'config', 'connection', 'conn_handler', 'dns', 'ext_authz', 'filter', 'forward_proxy',
  'grpc', 'hc', 'health_checker', 'http', 'http2', 'init', 'io', 'jwt', 'lua', 'main', 'misc', 'outlier', 'pool',
  'rbac', 'router', 'runtime', 'secret', 'stats', 'tracing', 'upstream', 'udp', 'wasm',
] as const;

/** `active loggers:` followed by `  <name>: <level>` lines, sorted by name. */
export function activeLoggers(): string {
  const { default: def, components } = logLevels();
  const names = new Set<string>([...KNOWN_LOGGERS, ...Object.keys(components)]);
  const lines = [...names].sort().map((n) => `  ${n}: ${components[n] ?? def}\n`);
  return 'active loggers:\n' + lines.join('');
}

const USAGE =
  'usage: /logging?<name>=<level> (change single level)\n' +
  'usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n' +
  'usage: /logging?level=<level> (change all levels)\n' +
  `levels: ${LEVELS.join(' ')}\n`;

function validLogger(name: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(name);
}

/** Applies a `/logging` query; returns Envoy's status and body. */
export function changeLogging(params: URLSearchParams): { status: number; body: string } {
  const entries = [...params.entries()];
  const changes: Array<[string | undefined, LogLevel]> = [];
  let ok = entries.length > 0;
  for (const [key, raw] of entries) {
    if (key === 'paths') {
      for (const part of raw.split(',').filter(Boolean)) {
        const i = part.lastIndexOf(':');
        const level = i > 0 ? parseLevel(part.slice(i + 1)) : undefined;
        const name = part.slice(0, i);
        if (!level || !validLogger(name)) ok = false;
        else changes.push([name, level]);
      }
      continue;
    }
    const level = parseLevel(raw);
    if (!level || (key !== 'level' && !validLogger(key))) ok = false;
    else changes.push([key === 'level' ? undefined : key, level]);
  }
  if (!ok) return { status: 404, body: USAGE + activeLoggers() };
  // An all-levels change first, so a component change in the same query survives it.
  changes.sort((a, b) => (a[0] === undefined ? -1 : 0) - (b[0] === undefined ? -1 : 0));
  for (const [component, level] of changes) setLogLevel(level, component);
  return { status: 200, body: activeLoggers() };
}
