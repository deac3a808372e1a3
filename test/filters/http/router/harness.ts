// Test harness: a fake filter manager (HttpFilterCallbacks) around one RouterFilter, a hand-built
// RouteEntry, and a real cluster manager from Envoy cluster YAML. Lets the router be driven without
// the connection manager: the test plays the downstream.

import type { Duplex } from 'node:stream';
import { parse } from 'yaml';
import { decodeJson } from '../../../../src/config/decode.ts';
import type { Cluster__Output } from '../../../../src/generated/envoy/config/cluster/v3/Cluster.ts';
import { parseCluster } from '../../../../src/proxy/upstream/config.ts';
import { createClusterManager } from '../../../../src/proxy/upstream/cluster-manager.ts';
import type { ClusterManager } from '../../../../src/proxy/upstream/types.ts';
import { StatsStore } from '../../../../src/proxy/stats.ts';
import { HeaderMap } from '../../../../src/proxy/http/headers.ts';
import { newStreamInfo, type StreamInfo } from '../../../../src/proxy/http/stream-info.ts';
import type { ClusterRouteAction, RouteEntry, HeaderMutator } from '../../../../src/proxy/http/route-types.ts';
import type { HttpFilter, HttpFilterCallbacks, LocalReplyOptions } from '../../../../src/filters/http/filter.ts';
import { createRouterFactory } from '../../../../src/filters/http/router/index.ts';
import { DEFAULT_ROUTER_CONFIG, type RouterConfig } from '../../../../src/filters/http/router/config.ts';
import { testRuntime } from '../../../helpers/runtime-context.ts';

export function clusterYaml(name: string, port: number, http2 = false, extra = ''): string {
  return `
name: ${name}
connect_timeout: 1s
load_assignment:
  cluster_name: ${name}
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } }
${http2 ? `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }` : ''}
${extra}`;
}

export async function clusterManager(yamls: string[], stats: StatsStore): Promise<ClusterManager> {
  const configs = yamls.map((y, i) => {
    const d = decodeJson<Cluster__Output>('envoy.config.cluster.v3.Cluster', parse(y));
    if (!d.ok) throw new Error(JSON.stringify(d.errors));
    const c = parseCluster(d.value, `clusters[${i}]`);
    if (!c.ok) throw new Error(JSON.stringify(c.errors));
    return c.value;
  });
  const cm = createClusterManager(configs, { stats, workerId: 0 });
  await cm.ready();
  return cm;
}

const noMutation: HeaderMutator = { apply() {} };

export interface RouteOpts {
  cluster?: string;
  timeoutMs?: number;
  rewrite?: (h: HeaderMap) => void;
  requestHeaders?: HeaderMutator;
  responseHeaders?: HeaderMutator;
  raw?: unknown;
}

export function clusterRoute(o: RouteOpts): RouteEntry {
  const action: ClusterRouteAction = {
    kind: 'route',
    pickCluster: () => o.cluster,
    clusterNotFoundStatus: 503,
    rewrite: o.rewrite ?? (() => {}),
    autoHostRewrite: false,
    timeoutMs: o.timeoutMs ?? 15_000,
    idleTimeoutMs: undefined,
    hash: () => undefined,
    retryPolicy: undefined,
    raw: o.raw,
  };
  return route(action, o);
}

export function route(action: RouteEntry['action'], o: RouteOpts = {}): RouteEntry {
  return {
    name: 'r0',
    virtualHost: { name: 'vh', perFilterConfig: new Map(), retryPolicy: undefined },
    action,
    perFilterConfig: new Map(),
    requestHeaders: o.requestHeaders ?? noMutation,
    responseHeaders: o.responseHeaders ?? noMutation,
  };
}

export interface Recorded {
  status: number | undefined;
  headers: HeaderMap | undefined;
  body: Buffer[];
  trailers: HeaderMap | undefined;
  local: { status: number; body: string; opts: LocalReplyOptions | undefined } | undefined;
  reset: string | undefined;
  readable: boolean[];
  tunnel: { headers: HeaderMap; socket: Duplex; head: Buffer } | undefined;
}

/** One downstream stream as the router sees it. `ended` resolves when the response is complete, reset or a local reply. */
export class FakeStream implements HttpFilterCallbacks {
  readonly streamInfo: StreamInfo;
  readonly statPrefix = 'ingress_http';
  readonly bufferLimitBytes = 1024 * 1024;
  readonly upgrade: string | undefined;
  readonly rec: Recorded = { status: undefined, headers: undefined, body: [], trailers: undefined, local: undefined, reset: undefined, readable: [], tunnel: undefined };
  readonly filter: HttpFilter;
  readonly ended: Promise<void>;
  /** Resolves on response headers (or the end). */
  readonly started: Promise<void>;
  #route: RouteEntry | undefined;
  #end!: () => void;
  #start!: () => void;
  #writable: Array<(w: boolean) => void> = [];
  /** Called on every response data chunk. */
  onData: ((b: Buffer) => void) | undefined;

  constructor(route: RouteEntry | undefined, make: (cb: HttpFilterCallbacks) => HttpFilter, opts: { protocol?: string; upgrade?: string } = {}) {
    this.#route = route;
    this.upgrade = opts.upgrade;
    this.streamInfo = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 1 }, downstreamLocal: { address: '127.0.0.1', port: 2 }, connectionId: 1, protocol: opts.protocol ?? 'HTTP/1.1' });
    this.ended = new Promise((r) => (this.#end = r));
    this.started = new Promise((r) => (this.#start = r));
    this.filter = make(this);
  }

  get bodyText(): string {
    return Buffer.concat(this.rec.body).toString();
  }

  route(): RouteEntry | undefined {
    return this.#route;
  }
  clearRouteCache(): void {}
  continueDecoding(): void {}
  continueEncoding(): void {}
  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    this.rec.local = { status, body, opts };
    this.rec.status = status;
    if (opts?.flag) this.streamInfo.responseFlags.add(opts.flag);
    this.#start();
    this.#end();
  }
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.rec.headers = headers;
    this.rec.status = Number(headers.get(':status'));
    this.#start();
    if (endStream) this.#end();
  }
  encodeData(data: Buffer, endStream: boolean): void {
    if (data.length) {
      this.rec.body.push(data);
      this.onData?.(data);
    }
    if (endStream) this.#end();
  }
  encodeTrailers(trailers: HeaderMap): void {
    this.rec.trailers = trailers;
    this.#end();
  }
  setDecoderReadable(readable: boolean): void {
    this.rec.readable.push(readable);
  }
  onDownstreamWritable(handler: (writable: boolean) => void): void {
    this.#writable.push(handler);
  }
  /** The test plays the downstream socket's watermark. */
  setWritable(w: boolean): void {
    for (const h of this.#writable) h(w);
  }
  resetStream(reason: string): void {
    this.rec.reset = reason;
    this.#start();
    this.#end();
  }
  upgradeToTunnel(headers: HeaderMap, socket: Duplex, head: Buffer): void {
    this.rec.tunnel = { headers, socket, head };
    this.#start();
    this.#end();
  }
  bufferedRequestBody(): Buffer | undefined {
    return undefined;
  }
}

export interface RouterHarness {
  readonly stats: StatsStore;
  readonly cm: ClusterManager;
  stream(route: RouteEntry | undefined, opts?: { protocol?: string; upgrade?: string }): FakeStream;
  counter(name: string): number;
  gauge(name: string): number;
  close(): Promise<void>;
}

export async function routerHarness(clusterYamls: string[], config: RouterConfig = DEFAULT_ROUTER_CONFIG): Promise<RouterHarness> {
  const stats = new StatsStore();
  const cm = await clusterManager(clusterYamls, stats);
  const factory = createRouterFactory(config, { stats, clusterManager: cm, workerId: 0, ...testRuntime() });
  return {
    stats,
    cm,
    stream: (r, opts) => new FakeStream(r, (cb) => factory.create(config, cb), opts),
    counter: (n) => stats.snapshot().counters[n] ?? 0,
    gauge: (n) => stats.snapshot().gauges[n] ?? 0,
    close: () => cm.close(),
  };
}

export function requestHeaders(method: string, path: string, extra: Record<string, string> = {}): HeaderMap {
  const h = HeaderMap.fromPairs([
    [':method', method],
    [':path', path],
    [':authority', 'example.com'],
    [':scheme', 'http'],
  ]);
  for (const [k, v] of Object.entries(extra)) h.add(k, v);
  return h;
}
