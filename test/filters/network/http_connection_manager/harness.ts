// Test harness for the HTTP connection manager: test HTTP filters (a terminal echo filter, a pausing
// filter, a denying filter), an HCM built from Envoy JSON, a real listener on 127.0.0.1:0, and clients.

import net from 'node:net';
import http2 from 'node:http2';
import { decodeJson } from '../../../../src/config/decode.ts';
import { formatErrors } from '../../../../src/config/result.ts';
import { registry, type ExtensionSpec } from '../../../../src/filters/registry.ts';
import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../../../../src/filters/http/filter.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import { parseHttpConnectionManager } from '../../../../src/filters/network/http_connection_manager/config.ts';
import { createConnectionManager } from '../../../../src/proxy/http/connection-manager.ts';
import type { ConnectionManager } from '../../../../src/proxy/http/connection-manager-types.ts';
import type { HcmConfig } from '../../../../src/proxy/http/hcm-config.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';

export const probes = { pauses: 0, resumes: 0, destroyed: 0 };

/** Terminal filter answering from the request; behaviour picked by `x-test-action`. */
class EchoFilter implements HttpFilter {
  readonly #cb: HttpFilterCallbacks;
  #action = '';
  #echoBody = false;
  constructor(cb: HttpFilterCallbacks) {
    this.#cb = cb;
  }
  onRequestHeaders(headers: HeaderMap, endStream: boolean): FilterHeadersStatus {
    const cb = this.#cb;
    this.#action = headers.get('x-test-action') ?? '';
    cb.onDownstreamWritable((w) => {
      if (!w) probes.pauses++;
      else probes.resumes++;
      cb.setDecoderReadable(w);
    });
    switch (this.#action) {
      case 'hang':
        return FilterHeadersStatus.StopIteration;
      case 'local-reply':
        cb.sendLocalReply(503, 'upstream said no', { details: 'test_reply' });
        return FilterHeadersStatus.StopIteration;
      case 'tunnel':
        void openUpstreamUpgrade(cb, headers);
        return FilterHeadersStatus.StopIteration;
      case 'big':
        this.#sendBig(Number(headers.get('x-test-size') ?? '0'));
        return FilterHeadersStatus.StopIteration;
      case 'partial':
        cb.encodeHeaders(HeaderMap.fromPairs([[':status', '200']]), false);
        cb.encodeData(Buffer.from('partial'), false);
        return FilterHeadersStatus.StopIteration;
    }
    const resp = HeaderMap.fromPairs([[':status', '200'], ['x-echo-upgrade', String(cb.upgrade)]]);
    if (endStream) {
      resp.add('content-type', 'application/json');
      const body = Buffer.from(JSON.stringify({ headers: [...headers], remote: cb.streamInfo.downstreamRemote.address }));
      resp.add('content-length', String(body.length));
      cb.encodeHeaders(resp, false);
      cb.encodeData(body, true);
    } else {
      this.#echoBody = true;
      cb.encodeHeaders(resp, false);
    }
    return FilterHeadersStatus.StopIteration;
  }
  onRequestBody(data: Buffer, endStream: boolean): FilterDataStatus {
    if (this.#echoBody) this.#cb.encodeData(data, endStream);
    return FilterDataStatus.StopIterationNoBuffer;
  }
  onRequestTrailers(trailers: HeaderMap): FilterTrailersStatus {
    if (this.#echoBody) {
      const t = new HeaderMap();
      trailers.forEach((k, v) => t.add(`echo-${k}`, v));
      this.#cb.encodeTrailers(t);
    }
    return FilterTrailersStatus.StopIteration;
  }
  onDestroy(): void {
    probes.destroyed++;
  }
  #sendBig(size: number): void {
    const cb = this.#cb;
    cb.encodeHeaders(HeaderMap.fromPairs([[':status', '200'], ['content-length', String(size)]]), false);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let left = size;
    let writable = true;
    const pump = (): void => {
      while (writable && left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        cb.encodeData(n === chunk.length ? chunk : chunk.subarray(0, n), left === 0);
      }
    };
    cb.onDownstreamWritable((w) => {
      writable = w;
      if (w) setImmediate(pump);
    });
    pump();
  }
}

/** Connects to `x-test-upstream` (a raw upgrade echo server) and hands the socket to upgradeToTunnel. */
async function openUpstreamUpgrade(cb: HttpFilterCallbacks, headers: HeaderMap): Promise<void> {
  const port = Number(headers.get('x-test-upstream'));
  const sock = net.connect(port, '127.0.0.1');
  sock.write(`GET ${headers.get(':path')} HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: ${headers.get('upgrade')}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    sock.off('data', onData);
    sock.pause();
    const lines = buf.subarray(0, end).toString().split('\r\n');
    const h = HeaderMap.fromPairs([[':status', lines[0]!.split(' ')[1]!]]);
    for (const l of lines.slice(1)) h.add(l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim());
    cb.upgradeToTunnel(h, sock, buf.subarray(end + 4));
  };
  sock.on('data', onData);
}

/** Stops request headers for `x-test-pause-ms`, then continues; denies when `x-test-deny` is set. */
class PauseFilter implements HttpFilter {
  readonly #cb: HttpFilterCallbacks;
  #paused = false;
  constructor(cb: HttpFilterCallbacks) {
    this.#cb = cb;
  }
  onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
    if (headers.has('x-test-deny')) {
      this.#cb.sendLocalReply(403, 'denied by test', { details: 'test_denied' });
      return FilterHeadersStatus.StopIteration;
    }
    const ms = Number(headers.get('x-test-pause-ms') ?? '0');
    if (ms <= 0) return FilterHeadersStatus.Continue;
    this.#paused = true;
    setTimeout(() => {
      this.#paused = false;
      headers.set('x-paused', String(ms));
      this.#cb.continueDecoding();
    }, ms);
    return FilterHeadersStatus.StopIteration;
  }
  onRequestBody(): FilterDataStatus {
    // Buffers the body while headers are stopped.
    return this.#paused ? FilterDataStatus.StopIterationAndBuffer : FilterDataStatus.Continue;
  }
  onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
    headers.set('x-pause-filter', 'seen');
    return FilterHeadersStatus.Continue;
  }
}

function spec(name: string, create: (cb: HttpFilterCallbacks) => HttpFilter, terminal: boolean): ExtensionSpec {
  const factory: HttpFilterFactory = { terminal, create: (_c, cb) => create(cb) };
  return { name, protoType: 'google.protobuf.Empty', category: 'http', status: 'stable', securityPosture: 'unknown', parse: () => ({ ok: true, value: {} }), factory: () => factory, terminal } as ExtensionSpec;
}

let registered = false;
export function registerTestFilters(): void {
  if (registered) return;
  registered = true;
  registry.register(spec('test.echo', (cb) => new EchoFilter(cb), true));
  registry.register({ ...spec('test.pause', (cb) => new PauseFilter(cb), false), protoType: 'google.protobuf.Struct' });
}

export const ECHO = { name: 'test.echo' };
export const PAUSE = { name: 'test.pause', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: {} } };

export const ROUTES = { name: 'local', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] };

export function parseHcm(extra: Record<string, unknown> = {}): HcmConfig {
  registerTestFilters();
  const json = { stat_prefix: 'test', route_config: ROUTES, http_filters: [PAUSE, ECHO], ...extra };
  const d = decodeJson<never>('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', json);
  if (!d.ok) throw new Error(formatErrors(d.errors));
  const r = parseHttpConnectionManager(d.value, { path: 'hcm', clusterNames: undefined });
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

export interface Proxy {
  readonly port: number;
  readonly stats: StatsStore;
  readonly manager: ConnectionManager;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

export async function startProxy(extra: Record<string, unknown> = {}, opts: { bufferLimitBytes?: number; runtime?: Record<string, string> } = {}): Promise<Proxy> {
  const { runtime, ...conn } = opts;
  const cfg = parseHcm(extra);
  const stats = new StatsStore();
  const manager = createConnectionManager(cfg, { stats, clusterManager: undefined as unknown as ClusterManager, workerId: 0, ...testRuntime(runtime) });
  let id = 0;
  const server = net.createServer({ noDelay: true }, (s) => manager.handleConnection(s, { connectionId: ++id, ...conn }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stats,
    manager,
    counter: (n) => stats.snapshot().counters[`http.test.${n}`] ?? stats.snapshot().counters[n] ?? 0,
    gauge: (n) => stats.snapshot().gauges[`http.test.${n}`] ?? 0,
    close: async () => {
      await manager.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** One HTTP/2 (h2c) request on a fresh session. */
export async function h2request(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, trailers?: Record<string, string>): Promise<H2Response> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await h2on(session, headers, body, trailers);
  } finally {
    session.close();
  }
}

export function h2on(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, trailers?: Record<string, string>): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/', ...headers }, { endStream: body === undefined && !trailers, waitForTrailers: !!trailers });
    if (trailers) req.on('wantTrailers', () => req.sendTrailers(trailers));
    const chunks: Buffer[] = [];
    let resHeaders: http2.IncomingHttpHeaders = {};
    let resTrailers: http2.IncomingHttpHeaders | undefined;
    req.on('response', (h) => (resHeaders = h));
    req.on('trailers', (t) => (resTrailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ status: Number(resHeaders[':status']), headers: resHeaders, body: Buffer.concat(chunks), trailers: resTrailers }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** Sends raw bytes, collects everything until the server closes or `untilMs` passes. */
/**
 * Writes `data` on a fresh connection (an array: one write per part, `gapMs` apart, so each part
 * is its own read) and resolves with everything read until the server closes or `untilMs`.
 */
export function rawExchange(port: number, data: string | Buffer | readonly (string | Buffer)[], untilMs = 1000, gapMs = 50): Promise<string> {
  const parts = typeof data === 'string' || Buffer.isBuffer(data) ? [data] : data;
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      parts.forEach((part, i) => (i === 0 ? s.write(part) : setTimeout(() => s.destroyed || s.write(part), i * gapMs)));
    });
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(out);
    }, untilMs);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => {});
  });
}

export function jsonHeaders(body: Buffer | string): Record<string, string> {
  const parsed = JSON.parse(body.toString()) as { headers: [string, string][] };
  return Object.fromEntries(parsed.headers);
}
