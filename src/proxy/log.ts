// Logging to stderr in Envoy's default format: `[2026-11-22 05:00:00.123][thread][level][component] message`.
// Levels per component (`--component-log-level upstream:debug`); a disabled level costs one comparison.

export const LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LEVELS)[number];

const rank: Record<string, number> = Object.fromEntries(LEVELS.map((l, i) => [l, i]));
/** Envoy accepts `warn` for `warning`. */
export function parseLevel(s: string): LogLevel | undefined {
  const l = s === 'warn' ? 'warning' : s;
  return (LEVELS as readonly string[]).includes(l) ? (l as LogLevel) : undefined;
}

let defaultLevel: number = rank.info!;
const componentLevels = new Map<string, number>();
let threadName = 'main';

export function setThreadName(name: string): void {
  threadName = name;
}

export function setLogLevel(level: LogLevel, component?: string): void {
  if (component) componentLevels.set(component, rank[level]!);
  else {
    defaultLevel = rank[level]!;
    componentLevels.clear();
  }
}

export function logLevels(): { default: LogLevel; components: Record<string, LogLevel> } {
  const components: Record<string, LogLevel> = {};
  for (const [c, r] of componentLevels) components[c] = LEVELS[r]!;
  return { default: LEVELS[defaultLevel]!, components };
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function timestamp(): string {
  const d = new Date();
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

export class Logger {
  readonly component: string;
  constructor(component: string) {
    this.component = component;
  }
  enabled(level: LogLevel): boolean {
    return rank[level]! >= (componentLevels.get(this.component) ?? defaultLevel);
  }
  log(level: LogLevel, msg: string): void {
    if (!this.enabled(level)) return;
    process.stderr.write(`[${timestamp()}][${threadName}][${level}][${this.component}] ${msg}\n`);
  }
  trace(msg: string): void {
    this.log('trace', msg);
  }
  debug(msg: string): void {
    this.log('debug', msg);
  }
  info(msg: string): void {
    this.log('info', msg);
  }
  warn(msg: string): void {
    this.log('warning', msg);
  }
  error(msg: string): void {
    this.log('error', msg);
  }
}

export function logger(component: string): Logger {
  return new Logger(component);
}
