// Envoy's command line, as pilot-agent and users pass it. Parsing fails with a clear message
// for unknown flags or bad values; flags that only matter to Envoy's C++ runtime are accepted.

import { cpus } from 'node:os';
import { parseLevel, type LogLevel } from './proxy/log.ts';
import { Limits } from './proxy/limits.ts';

export interface CliOptions {
  configPath: string | undefined;
  configYaml: string | undefined;
  mode: 'serve' | 'validate' | 'init_only';
  logLevel: LogLevel;
  componentLogLevels: Array<[string, LogLevel]>;
  concurrency: number;
  drainTimeS: number;
  parentShutdownTimeS: number;
  serviceCluster: string | undefined;
  serviceNode: string | undefined;
  serviceZone: string | undefined;
  localAddressIpVersion: 'v4' | 'v6';
  allowUnknownStaticFields: boolean;
  rejectUnknownDynamicFields: boolean;
  drainStrategy: 'gradual' | 'immediate';
  fileFlushIntervalMsec: number;
  baseId: number;
  /** --dedicated-main-thread: worker 0 runs on a thread of its own even where it could be the main thread. */
  dedicatedMainThread: boolean;
  /** --admin-address-path: file to write the admin's bound `address:port` to. */
  adminAddressPath: string | undefined;
  help: boolean;
  version: boolean;
  /** The argv as given, for /server_info. */
  argv: readonly string[];
}

type Handler = (o: CliOptions, v: string) => string | undefined;

function int(name: string, set: (o: CliOptions, n: number) => void, min = 0): Handler {
  return (o, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) return `${name}: expected an integer >= ${min}, got "${v}"`;
    set(o, n);
    return undefined;
  };
}

const noop: Handler = () => undefined;

/** Flags that take a value. */
const valued: Record<string, Handler> = {
  '--config-path': (o, v) => void (o.configPath = v),
  '--config-yaml': (o, v) => void (o.configYaml = v),
  '--mode': (o, v) => {
    if (v !== 'serve' && v !== 'validate' && v !== 'init_only') return `--mode: expected serve, validate or init_only, got "${v}"`;
    o.mode = v;
    return undefined;
  },
  '--log-level': (o, v) => {
    const l = parseLevel(v);
    if (!l) return `--log-level: unknown level "${v}" (trace, debug, info, warning, error, critical, off)`;
    o.logLevel = l;
    return undefined;
  },
  '--component-log-level': (o, v) => {
    for (const part of v.split(',')) {
      const [comp, lvl] = part.split(':');
      const l = lvl === undefined ? undefined : parseLevel(lvl);
      if (!comp || !l) return `--component-log-level: expected component:level[,component:level\u2026], got "${v}"`;
      o.componentLogLevels.push([comp, l]);
    }
    return undefined;
  },
  '--concurrency': int('--concurrency', (o, n) => (o.concurrency = n), 1),
  '--drain-time-s': int('--drain-time-s', (o, n) => (o.drainTimeS = n)),
  '--parent-shutdown-time-s': int('--parent-shutdown-time-s', (o, n) => (o.parentShutdownTimeS = n)),
  '--service-cluster': (o, v) => void (o.serviceCluster = v),
  '--service-node': (o, v) => void (o.serviceNode = v),
  '--service-zone': (o, v) => void (o.serviceZone = v),
  '--local-address-ip-version': (o, v) => {
    if (v !== 'v4' && v !== 'v6') return `--local-address-ip-version: expected v4 or v6, got "${v}"`;
    o.localAddressIpVersion = v;
    return undefined;
  },
  '--drain-strategy': (o, v) => {
    if (v !== 'gradual' && v !== 'immediate') return `--drain-strategy: expected gradual or immediate, got "${v}"`;
    o.drainStrategy = v;
    return undefined;
  },
  '--file-flush-interval-msec': int('--file-flush-interval-msec', (o, n) => (o.fileFlushIntervalMsec = n)),
  '--base-id': int('--base-id', (o, n) => (o.baseId = n)),
  '--admin-address-path': (o, v) => void (o.adminAddressPath = v),
  // Accepted for Envoy compatibility; they tune Envoy's C++ runtime and have no meaning here.
  '--restart-epoch': noop,
  '--log-path': noop,
  '--log-format': noop,
  '--cpuset-threads': noop,
  '--socket-path': noop,
  '--socket-mode': noop,
  '--disable-extensions': noop,
  '--stats-tag': noop,
  '--hot-restart-version': noop,
};

/** Flags without a value. */
const flags: Record<string, (o: CliOptions) => void> = {
  '--disable-hot-restart': () => {},
  '--allow-unknown-static-fields': (o) => (o.allowUnknownStaticFields = true),
  '--allow-unknown-fields': (o) => (o.allowUnknownStaticFields = true),
  '--reject-unknown-dynamic-fields': (o) => (o.rejectUnknownDynamicFields = true),
  '--ignore-unknown-dynamic-fields': () => {},
  '--use-dynamic-base-id': () => {},
  '--log-format-escaped': () => {},
  '--enable-fine-grain-logging': () => {},
  '--enable-core-dump': () => {},
  '--cpuset-threads': () => {},
  '--dedicated-main-thread': (o) => (o.dedicatedMainThread = true),
  '--help': (o) => (o.help = true),
  '--version': (o) => (o.version = true),
};

const short: Record<string, string> = { '-c': '--config-path', '-l': '--log-level', '-h': '--help' };

export function defaultOptions(): CliOptions {
  return {
    configPath: undefined,
    configYaml: undefined,
    mode: 'serve',
    logLevel: 'info',
    componentLogLevels: [],
    concurrency: Math.max(1, cpus().length),
    drainTimeS: Limits.drainTimeS,
    parentShutdownTimeS: Limits.parentShutdownTimeS,
    serviceCluster: undefined,
    serviceNode: undefined,
    serviceZone: undefined,
    localAddressIpVersion: 'v4',
    allowUnknownStaticFields: false,
    rejectUnknownDynamicFields: false,
    drainStrategy: 'gradual',
    fileFlushIntervalMsec: 10000,
    baseId: 0,
    adminAddressPath: undefined,
    dedicatedMainThread: false,
    help: false,
    version: false,
    argv: [],
  };
}

/** Parses argv (without node and script). `legate validate FILE` is `--mode validate -c FILE`. */
export function parseArgs(argv: readonly string[]): { ok: true; options: CliOptions } | { ok: false; error: string } {
  const o = defaultOptions();
  o.argv = argv;
  const args = [...argv];
  if (args[0] === 'validate') {
    args.shift();
    o.mode = 'validate';
    if (args[0] && !args[0].startsWith('-')) o.configPath = args.shift();
  }
  for (let i = 0; i < args.length; i++) {
    let a = args[i]!;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    a = short[a] ?? a;
    const f = flags[a];
    if (f && value === undefined && !(a in valued)) {
      f(o);
      continue;
    }
    const h = valued[a];
    if (!h) return { ok: false, error: `unknown option "${args[i]}" (legate --help lists the options)` };
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) return { ok: false, error: `${a}: missing value` };
    }
    const err = h(o, value);
    if (err) return { ok: false, error: err };
  }
  return { ok: true, options: o };
}

export const USAGE = `legate \u2014 Envoy's data plane on Node.js

Usage:
  legate -c FILE [options]           serve an Envoy v3 bootstrap (YAML or JSON)
  legate validate FILE               check a bootstrap and exit (same as --mode validate)
  legate certs COMMAND \u2026             development mesh CA: ca, issue, csr, sign-csr (legate certs --help)

Options (Envoy's):
  -c, --config-path FILE             bootstrap file
      --config-yaml YAML             YAML merged over the bootstrap file
      --mode serve|validate|init_only
  -l, --log-level LEVEL              trace, debug, info, warning, error, critical, off
      --component-log-level C:L,...  per-component levels (e.g. upstream:debug)
      --concurrency N                worker threads (default: number of cores)
      --drain-time-s N               drain period for listeners (default 600)
      --parent-shutdown-time-s N     accepted (hot restart)
      --service-cluster NAME         node.cluster
      --service-node NAME            node.id
      --service-zone NAME            node.locality.zone
      --local-address-ip-version v4|v6
      --allow-unknown-static-fields  ignore unknown fields in the bootstrap
      --drain-strategy gradual|immediate
      --admin-address-path FILE      write the admin's bound address:port to FILE
  accepted and harmless: --disable-hot-restart, --base-id N, --file-flush-interval-msec N, --restart-epoch N
      --version, -h/--help

Options (legate's):
      --dedicated-main-thread        every worker on a thread of its own; by default, worker 0
                                     of a config without xDS, SDS or Proxy-Wasm is the main
                                     thread itself (one V8 heap fewer)
`;
