// The admin HTTP server (main thread): Envoy's endpoints, methods, status codes and formats over
// node:http. A handler that throws answers 500; a mutating path answered with GET gets Envoy's 405.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { logger } from '../log.ts';
import { compileRe2 } from '../http/matchers.ts';
import { hostKey } from '../host-port.ts';
import type { StatsStore } from '../stats.ts';
import type { AdminSource, ServerInfo, ServerState } from './source.ts';
import { runtimeJson, runtimeModify } from './runtime.ts';
import { clustersJson, clustersText, listenersJson, listenersText } from './clusters.ts';
import { activeLoggers, changeLogging } from './logging.ts';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from './prometheus.ts';
import { parseStatsType, selectStats, statsJson, statsText } from './stats-format.ts';

const log = logger('admin');

export interface AdminOptions {
  readonly address: string;
  /** 0 picks a free port; read it back from AdminServer.port. */
  readonly port: number;
  readonly source: AdminSource;
  /** admin.access_log path (file access log in Envoy's default format); none when absent. */
  readonly accessLogPath?: string;
  /**
   * The main thread's store (merged into AdminSource.stats()): gets Envoy's admin listener stats
   * (`http.admin.downstream_rq_2xx`, `listener.admin.downstream_cx_total`, ...). None counted when absent.
   */
  readonly stats?: StatsStore;
}

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
  /** Runs once the response is written (quitquitquit). */
  readonly after?: () => void;
}

interface Handler {
  readonly path: string;
  readonly help: string;
  readonly mutates: boolean;
  readonly params?: ReadonlyArray<readonly [string, string]>;
  run(q: URLSearchParams, method: string, req: RequestBody): Reply | Promise<Reply>;
}

/** The request body (admin requests are small: read whole, up to MAX_ADMIN_BODY). */
interface RequestBody {
  readonly contentType: string;
  readonly body: Buffer;
}

const MAX_ADMIN_BODY = 64 * 1024; // bytes

const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

function text(body: string, status = 200): Reply {
  return { status, body };
}
function json(value: unknown, status = 200, pretty = true): Reply {
  return { status, body: JSON.stringify(value, null, pretty ? 1 : undefined) + (pretty ? '\n' : ''), contentType: JSON_TYPE };
}

/** Envoy's `?filter=` is an RE2 partial match; an invalid one is a 400. */
function filterParam(q: URLSearchParams): { ok: true; re: RegExp | undefined } | { ok: false } {
  const f = q.get('filter');
  if (f === null || f === '') return { ok: true, re: undefined };
  const re = compileRe2(f, 'search');
  return re instanceof RegExp ? { ok: true, re } : { ok: false };
}

function effectiveState(source: AdminSource, info: ServerInfo): ServerState {
  // Envoy reports DRAINING while health checks are failed (Utility::serverState).
  return source.isHealthcheckFailed() ? 'DRAINING' : info.state;
}

function handlers(source: AdminSource): Handler[] {
  const help = (): string => helpText(list);
  const list: Handler[] = [
    { path: '/', help: 'Admin home page', mutates: false, run: () => text(help()) },
    { path: '/help', help: 'print out list of admin commands', mutates: false, run: () => text(help()) },
    {
      path: '/ready',
      help: 'print server state, return 200 if LIVE, otherwise return 503',
      mutates: false,
      run: () => {
        const state = effectiveState(source, source.serverInfo());
        return text(`${state}\n`, state === 'LIVE' ? 200 : 503);
      },
    },
    {
      path: '/server_info',
      help: 'print server version/status information',
      mutates: false,
      run: () => {
        const info = source.serverInfo();
        return json({
          version: info.version,
          state: effectiveState(source, info),
          uptime_current_epoch: `${Math.floor(info.uptimeCurrentEpochS)}s`,
          uptime_all_epochs: `${Math.floor(info.uptimeAllEpochsS)}s`,
          hot_restart_version: info.hotRestartVersion,
          command_line_options: info.commandLineOptions,
          node: info.node,
        });
      },
    },
    { path: '/hot_restart_version', help: 'print the hot restart compatibility version', mutates: false, run: () => text(source.serverInfo().hotRestartVersion) },
    {
      path: '/stats',
      help: 'print server stats',
      mutates: false,
      params: [
        ['usedonly', 'Only include stats that have been written by system since restart'],
        ['filter', 'Regular expression (Google re2) for filtering stats'],
        ['format', 'Format to use (html, active-html, text, json, prometheus)'],
        ['type', 'Stat types to include (All, Counters, Histograms, Gauges, TextReadouts)'],
      ],
      run: (q) => stats(source, q, q.get('format') ?? 'text'),
    },
    {
      path: '/stats/prometheus',
      help: 'print server stats in prometheus format',
      mutates: false,
      params: [
        ['usedonly', 'Only include stats that have been written by system since restart'],
        ['filter', 'Regular expression (Google re2) for filtering stats'],
      ],
      run: (q) => stats(source, q, 'prometheus'),
    },
    {
      path: '/clusters',
      help: 'upstream cluster status',
      mutates: false,
      params: [['format', 'File format to use (text, json)']],
      run: async (q) => {
        const clusters = await source.clusters();
        return q.get('format') === 'json' ? json(clustersJson(clusters)) : text(clustersText(clusters));
      },
    },
    {
      path: '/listeners',
      help: 'print listener info',
      mutates: false,
      params: [['format', 'File format to use (text, json)']],
      run: (q) => (q.get('format') === 'json' ? json(listenersJson(source.listeners())) : text(listenersText(source.listeners()))),
    },
    {
      path: '/config_dump',
      help: 'dump current Envoy configs (experimental)',
      mutates: false,
      params: [
        ['resource', 'The resource to dump'],
        ['mask', 'The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a ProtobufWkt::FieldMask'],
        ['name_regex', 'Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters.'],
        ['include_eds', 'Dump currently loaded configuration including EDS. See the response definition for more information'],
      ],
      run: (q) => {
        let nameRegex: RegExp | undefined;
        const nr = q.get('name_regex');
        if (nr) {
          // RE2, matching whole names (Envoy compiles it as a RegexMatcher).
          const re = compileRe2(nr, 'full');
          if (!(re instanceof RegExp)) return text(`INVALID_ARGUMENT: Error while parsing name_regex from ${nr}: ${re.error}`, 400);
          nameRegex = re;
        }
        const resource = q.get('resource') || undefined;
        const mask = q.get('mask') || undefined;
        const dump = source.configDump({ includeEds: q.has('include_eds'), ...(resource && { resource }), ...(mask && { mask }), ...(nameRegex && { nameRegex }) });
        if (dump === undefined) return text(`${resource ?? ''} not found in config dump\n`, 404);
        return json(dump);
      },
    },
    { path: '/runtime', help: 'print runtime values', mutates: false, run: () => json(runtimeJson(source.runtime())) },
    {
      path: '/memory',
      help: 'print current allocation/heap usage',
      mutates: false,
      run: () => {
        const m = process.memoryUsage();
        return json({ allocated: String(m.heapUsed), heap_size: String(m.heapTotal), pageheap_unmapped: '0', pageheap_free: '0', total_thread_cache: '0', total_physical_bytes: String(m.rss) });
      },
    },
    {
      path: '/logging',
      help: 'query/change logging levels',
      mutates: true,
      params: [
        ['paths', 'Change multiple logging levels by setting to <file_path1>:<desired_level1>,<file_path2>:<desired_level2>.'],
        ['level', 'desired logging level'],
      ],
      run: (q) => changeLogging(q),
    },
    { path: '/healthcheck/fail', help: 'cause the server to fail health checks', mutates: true, run: () => (source.healthcheck(true), text('OK\n')) },
    { path: '/healthcheck/ok', help: 'cause the server to pass health checks', mutates: true, run: () => (source.healthcheck(false), text('OK\n')) },
    {
      path: '/drain_listeners',
      help: 'drain listeners',
      mutates: true,
      params: [
        ['graceful', 'When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI'],
        ['inboundonly', 'Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound.'],
      ],
      run: (q) => {
        source.drainListeners({ inboundOnly: q.has('inboundonly'), graceful: q.has('graceful') });
        return text('OK\n');
      },
    },
    { path: '/quitquitquit', help: 'exit the server', mutates: true, run: () => ({ status: 200, body: 'OK\n', after: () => source.quit() }) },
  ];
  const modify = source.runtimeModify?.bind(source);
  if (modify) {
    list.push({
      path: '/runtime_modify',
      help: 'Adds or modifies runtime values as passed in query parameters. To delete a previously added key, use an empty string as the value. Note that deletion only applies to overrides added via this endpoint; values loaded from disk can be modified via override but not deleted. E.g. ?key1=value1&key2=value2...',
      mutates: true,
      run: (q, _method, req) => runtimeModify(modify, q, req.body, req.contentType),
    });
  }
  const certs = source.certs?.bind(source);
  if (certs) list.push({ path: '/certs', help: 'print certs on machine', mutates: false, run: () => json(certs()) });
  const reset = source.resetCounters?.bind(source);
  if (reset) list.push({ path: '/reset_counters', help: 'reset all counters to zero', mutates: true, run: () => (reset(), text('OK\n')) });
  return list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function helpText(list: readonly Handler[]): string {
  let out = 'admin commands are:\n';
  for (const h of list) {
    out += `  ${h.path}${h.mutates ? ' (POST)' : ''}: ${h.help}\n`;
    for (const [id, help] of h.params ?? []) out += `      ${id}: ${help}\n`;
  }
  return out;
}

async function stats(source: AdminSource, q: URLSearchParams, format: string): Promise<Reply> {
  const filter = filterParam(q);
  if (!filter.ok) return text('Invalid re2 regex', 400);
  const type = parseStatsType(q.get('type'));
  if (!type) return text('invalid type= param', 400);
  if (format !== 'text' && format !== 'json' && format !== 'prometheus') return text('usage: /stats?format=(html|active-html|json|prometheus|text)\n', 400);
  const sel = selectStats(await source.stats(), { filter: filter.re, usedOnly: q.has('usedonly'), type });
  if (format === 'json') return json(statsJson(sel), 200, q.has('pretty'));
  if (format === 'prometheus') return { status: 200, body: await prometheusText(sel), contentType: PROMETHEUS_CONTENT_TYPE };
  return text(statsText(sel));
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Envoy's default access log line (`[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ...`). */
function accessLine(req: IncomingMessage, res: ServerResponse, start: Date, bytesSent: number): string {
  const d = start;
  const ts = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
  const h = (name: string): string => {
    const v = req.headers[name];
    return typeof v === 'string' ? v : '-';
  };
  const received = Number(req.headers['content-length'] ?? 0) || 0;
  const duration = Date.now() - start.getTime();
  return `[${ts}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${res.statusCode} - ${received} ${bytesSent} ${duration} - "${h('x-forwarded-for')}" "${h('user-agent')}" "${h('x-request-id')}" "${h('host')}" "-"\n`;
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const byPath = new Map(handlers(opts.source).map((h) => [h.path, h]));
  const helpList = [...byPath.values()];
  let accessLog: WriteStream | undefined;
  if (opts.accessLogPath) {
    accessLog = createWriteStream(opts.accessLogPath, { flags: 'a' });
    accessLog.on('error', (e) => log.error(`admin access log ${opts.accessLogPath}: ${e.message}`));
  }

  const respond = async (req: IncomingMessage, body: RequestBody): Promise<Reply> => {
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const path = qi < 0 ? url : url.slice(0, qi);
    const handler = byPath.get(path);
    if (!handler) return text('invalid path. ' + helpText(helpList), 404);
    const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
    const method = req.method ?? 'GET';
    if (handler.mutates && method !== 'POST') {
      // The brief keeps a read-only `GET /logging` (no query) that lists levels.
      if (handler.path === '/logging' && [...q.keys()].length === 0) return text(activeLoggers());
      log.error(`admin path "${handler.path}" mutates state, method=${method} rather than POST`);
      return text(`Method ${method} not allowed, POST required.`, 405);
    }
    return handler.run(q, method, body);
  };

  const readBody = (req: IncomingMessage): Promise<RequestBody> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const contentType = typeof req.headers['content-type'] === 'string' ? req.headers['content-type'] : '';
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ADMIN_BODY) chunks.push(c);
      });
      req.once('end', () => resolve({ contentType, body: size <= MAX_ADMIN_BODY ? Buffer.concat(chunks) : Buffer.alloc(0) }));
      req.once('error', () => resolve({ contentType, body: Buffer.alloc(0) }));
    });

  const st = opts.stats;
  const server: Server = createServer((req, res) => {
    const start = new Date();
    if (st) {
      st.counter('http.admin.downstream_rq_total').inc();
      st.counter(`http.admin.downstream_rq_http${req.httpVersionMajor === 2 ? 2 : 1}_total`).inc();
      st.gauge('http.admin.downstream_rq_active').inc();
      res.once('close', () => {
        st.gauge('http.admin.downstream_rq_active').dec();
        st.counter('http.admin.downstream_rq_completed').inc();
        st.counter(`http.admin.downstream_rq_${Math.floor(res.statusCode / 100)}xx`).inc();
      });
    }
    readBody(req)
      .then((body) => respond(req, body))
      .catch((e: unknown): Reply => {
        log.error(`admin ${req.url}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
        return text(`${e instanceof Error ? e.message : String(e)}\n`, 500);
      })
      .then((reply) => {
        const body = Buffer.from(reply.body);
        res.writeHead(reply.status, {
          'content-type': reply.contentType ?? TEXT,
          'content-length': body.length,
          'cache-control': 'no-cache, max-age=0',
          'x-content-type-options': 'nosniff',
        });
        res.end(body, () => {
          if (accessLog) accessLog.write(accessLine(req, res, start, body.length));
          if (reply.after) setImmediate(reply.after);
        });
      });
  });

  if (st) {
    server.on('connection', (socket) => {
      for (const p of ['http.admin.', 'listener.admin.']) {
        st.counter(`${p}downstream_cx_total`).inc();
        st.gauge(`${p}downstream_cx_active`).inc();
      }
      socket.once('close', () => {
        for (const p of ['http.admin.', 'listener.admin.']) st.gauge(`${p}downstream_cx_active`).dec();
        st.counter('http.admin.downstream_cx_destroy').inc();
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  log.info(`admin address: ${hostKey(addr.address, addr.port)}`);

  return {
    address: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          if (accessLog) accessLog.end(() => resolve());
          else resolve();
        });
        server.closeAllConnections();
      }),
  };
}
