// Test harness: a real connection manager (HCM config decoded from YAML, router as its terminal
// filter, real cluster manager) serving a net server on 127.0.0.1, plus HTTP/1.1 and h2c clients.

import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import { registry, type RuntimeContext } from '../../../../src/filters/registry.ts';
import { registerBuiltins } from '../../../../src/filters/index.ts';
import { register as registerRouter } from '../../../../src/filters/http/router/index.ts';
import { parseHttpConnectionManager, createConnectionManager } from '../../../../src/filters/network/http_connection_manager/index.ts';
import type { HttpConnectionManager__Output } from '../../../../src/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import { clusterManager, clusterYaml } from './harness.ts';
import { startHttp1Upstream, type Upstream } from '../../../helpers/upstreams.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';

export interface Proxy {
  readonly port: number;
  readonly stats: StatsStore;
  readonly cm: ClusterManager;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

/** A connection manager built from HCM YAML, serving on 127.0.0.1 (port 0). */
export interface ServedHcm {
  readonly port: number;
  /** Closes the connection manager (its connections, and its access logs, flushed) and the server (not the cluster manager). */
  close(): Promise<void>;
}

export async function serveHcm(hcmYaml: string, ctx: RuntimeContext): Promise<ServedHcm> {
  registerBuiltins(registry);
  registerRouter(registry); // registering again is harmless; builtins may not include the router yet
  const d = decodeJson<HttpConnectionManager__Output>('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', parse(hcmYaml));
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  const c = parseHttpConnectionManager(d.value, { path: 'hcm', clusterNames: undefined });
  if (!c.ok) throw new Error(JSON.stringify(c.errors));
  const mgr = createConnectionManager(c.value, ctx);
  const sockets = new Set<net.Socket>();
  let ids = 0;
  const server = net.createServer({ noDelay: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    mgr.handleConnection(sock, {
      connectionId: ++ids,
      remote: { address: sock.remoteAddress ?? '127.0.0.1', port: sock.remotePort ?? 0 },
      local: { address: sock.localAddress ?? '127.0.0.1', port: sock.localPort ?? 0 },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      // Without mgr.close() the access logs' buffered lines may not have reached the file yet.
      await mgr.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function startProxy(hcmYaml: string, clusterYamls: string[]): Promise<Proxy> {
  const stats = new StatsStore();
  const cm = await clusterManager(clusterYamls, stats);
  const served = await serveHcm(hcmYaml, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  return {
    port: served.port,
    stats,
    cm,
    counter: (n) => stats.snapshot().counters[n] ?? 0,
    gauge: (n) => stats.snapshot().gauges[n] ?? 0,
    close: async () => {
      await served.close();
      await cm.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
  /** The response ended with an error (reset / connection closed mid-body). */
  error: Error | undefined;
}

export interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  trailers?: Record<string, string>;
  /** Called with each response chunk. */
  onData?: (b: Buffer) => void;
}

export type Downstream = 'h1' | 'h2';

/** A client for one downstream protocol; h1 keeps one keep-alive connection, h2 one session. */
export class Client {
  readonly #kind: Downstream;
  readonly #port: number;
  readonly #agent: http.Agent;
  #session: http2.ClientHttp2Session | undefined;

  constructor(kind: Downstream, port: number) {
    this.#kind = kind;
    this.#port = port;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  request(r: Req): Promise<Reply> {
    return this.#kind === 'h1' ? this.#h1(r) : this.#h2(r);
  }

  #h1(r: Req): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: this.#port, method: r.method ?? 'GET', path: r.path, headers: r.headers, agent: this.#agent });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let error: Error | undefined;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          r.onData?.(c);
        });
        res.on('error', (e) => (error = e));
        res.on('aborted', () => (error = new Error('aborted')));
        res.on('close', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers, error: error ?? (res.complete ? undefined : new Error('incomplete')) }),
        );
      });
      if (r.body instanceof Readable) r.body.pipe(req);
      else req.end(r.body);
    });
  }

  #h2(r: Req): Promise<Reply> {
    if (!this.#session || this.#session.destroyed) {
      this.#session = http2.connect(`http://127.0.0.1:${this.#port}`);
      this.#session.on('error', () => {});
    }
    const s = this.#session;
    return new Promise((resolve, reject) => {
      const stream = s.request({ ':method': r.method ?? 'GET', ':path': r.path, ...r.headers }, { waitForTrailers: r.trailers !== undefined, endStream: r.body === undefined && !r.trailers });
      let status = 0;
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      let error: Error | undefined;
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        headers = h;
        status = Number(h[':status']);
      });
      stream.on('data', (c: Buffer) => {
        chunks.push(c);
        r.onData?.(c);
      });
      stream.on('trailers', (t) => (trailers = t));
      stream.on('wantTrailers', () => stream.sendTrailers(r.trailers ?? {}));
      stream.on('error', (e) => (error = e));
      stream.on('close', () => {
        if (status === 0 && error) return reject(error);
        if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !error) error = new Error(`reset ${stream.rstCode}`);
        resolve({ status, headers, body: Buffer.concat(chunks), trailers, error });
      });
      if (r.body instanceof Readable) r.body.pipe(stream);
      else if (r.body !== undefined || r.trailers) stream.end(r.body);
    });
  }

  /** Starts a request and returns a function that aborts it (closes the h1 socket / RSTs the h2 stream). */
  startAndAbortable(r: Req): { abort(): void; response: Promise<unknown> } {
    if (this.#kind === 'h1') {
      const req = http.request({ host: '127.0.0.1', port: this.#port, method: r.method ?? 'GET', path: r.path, headers: r.headers, agent: false });
      const response = new Promise((resolve) => {
        req.on('error', resolve);
        req.on('response', resolve);
      });
      req.end();
      return { abort: () => req.destroy(), response };
    }
    if (!this.#session || this.#session.destroyed) {
      this.#session = http2.connect(`http://127.0.0.1:${this.#port}`);
      this.#session.on('error', () => {});
    }
    const stream = this.#session.request({ ':method': r.method ?? 'GET', ':path': r.path, ...r.headers });
    const response = new Promise((resolve) => {
      stream.on('error', resolve);
      stream.on('close', resolve);
    });
    return { abort: () => stream.close(http2.constants.NGHTTP2_CANCEL), response };
  }

  close(): void {
    this.#agent.destroy();
    this.#session?.close();
  }
}

export const ROUTER_FILTER = `
http_filters:
- name: envoy.filters.http.router
  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }`;

export interface RoutesHcmOptions {
  /** stat_prefix (default ingress_http). */
  readonly statPrefix?: string;
  /** More HCM fields, YAML at the top level (`use_remote_address: true`…). */
  readonly extra?: string;
  /** More virtual-host fields, YAML indented by 4. */
  readonly vhExtra?: string;
  /** The http_filters block (default: the router alone). */
  readonly filters?: string;
}

/** An HCM with one catch-all virtual host whose routes are `routes` (YAML list items indented by 4). */
export function routesHcm(routes: string, o: RoutesHcmOptions = {}): string {
  return `
stat_prefix: ${o.statPrefix ?? 'ingress_http'}
codec_type: AUTO
${o.extra ?? ''}
route_config:
  name: local
  virtual_hosts:
  - name: vh
    domains: ["*"]
${o.vhExtra ?? ''}
    routes:
${routes}
${o.filters ?? ROUTER_FILTER}`;
}

/** A YAML block indented by `n` spaces (its surrounding blank lines dropped). */
export function indentYaml(s: string, n: number): string {
  return s
    .trim()
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}

export interface FilterHcm {
  /** The HTTP filter's name (`envoy.filters.http.…`) and its typed_config type URL. */
  readonly name: string;
  readonly typeUrl: string;
  /** The typed_config body (YAML, any indentation). */
  readonly filter: string;
  /** The one virtual host's routes (YAML list). */
  readonly routes: string;
  /** More HCM fields (access_log, …). */
  readonly extra?: string;
  /** More virtual host fields (typed_per_filter_config, …). */
  readonly vhostExtra?: string;
}

/** An HCM (stat_prefix ingress_http, codec AUTO, one virtual host for every domain) with one HTTP filter before the router. */
export function filterHcmYaml(o: FilterHcm): string {
  const filters = `
http_filters:
- name: ${o.name}
  typed_config:
    "@type": ${o.typeUrl}
${indentYaml(o.filter, 4)}
${ROUTER_FILTER.trim().split('\n').slice(1).join('\n')}`;
  return routesHcm(indentYaml(o.routes, 4), { extra: o.extra ?? '', vhExtra: o.vhostExtra ? indentYaml(o.vhostExtra, 4) : '', filters });
}

export interface FilterProxy {
  readonly proxy: Proxy;
  readonly upstream: Upstream;
  close(): Promise<void>;
}

/** A node:http upstream, and a proxy serving `hcmYaml` whose cluster `up` points at it. */
export async function startFilterProxy(hcmYaml: string): Promise<FilterProxy> {
  const upstream = await startHttp1Upstream();
  const proxy = await startProxy(hcmYaml, [clusterYaml('up', upstream.port)]);
  return {
    proxy,
    upstream,
    close: async () => {
      await proxy.close();
      await upstream.close();
    },
  };
}
