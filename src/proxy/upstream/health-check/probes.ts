// One active check against one host: HTTP/1.1 or HTTP/2 GET (expected/retriable statuses, receive
// payloads, x-envoy-degraded), TCP connect with send/receive payloads, gRPC
// grpc.health.v1.Health/Check over HTTP/2; in plaintext, or over the host's TLS transport socket as
// Envoy checks a TLS cluster. A probe never rejects: every outcome is a ProbeResult; close() drops
// its connection (timeouts).

import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { CheckerConfig, GrpcCheckConfig, HttpCheckConfig, TcpCheckConfig } from './config.ts';
import type { ClientTransportSocket } from '../../tls/types.ts';
import { H2CheckConnection, type H2Answer } from './h2-exchange.ts';
import { fieldOf } from '../../http/h2/client-session.ts';

/**
 * `active`: the host answered wrongly; `network`: connect/reset/TLS handshake. Timeouts are the
 * session's. `degraded`: an HTTP check passed with `x-envoy-degraded` in the response.
 */
export type ProbeResult = { readonly ok: true; readonly degraded: boolean } | { readonly ok: false; readonly type: 'active' | 'network'; readonly retriable: boolean; readonly detail: string };

/** TLS for a check's connections (the cluster's transport socket for the host). */
export interface ProbeTls {
  readonly socket: ClientTransportSocket;
  /** HealthCheck.tls_options.alpn_protocols; empty: the transport socket's own. */
  readonly alpn: readonly string[];
  /** `cluster.<name>.`: handshakes count in the cluster's ssl.* stats. */
  readonly statPrefix: string;
  /** Connect and handshake limit (the check's timeout). */
  readonly timeoutMs: number;
}

export interface ProbeTarget {
  readonly address: string;
  readonly port: number;
  /** Unix socket path (pipe hosts). */
  readonly socketPath: string | undefined;
  /** Default Host / :authority. */
  readonly clusterName: string;
  /** Endpoint.health_check_config.hostname: Host / :authority over the check's own `host` / `authority`. */
  readonly hostname?: string | undefined;
  /** undefined: plaintext. */
  readonly tls?: ProbeTls | undefined;
  /** upstream_bind_config: the address (and port, 0 = any) checks connect from. */
  readonly source?: { readonly address: string; readonly port: number } | undefined;
}

/** net.connect / http.request options for the target's source address. */
function bind(t: ProbeTarget): { localAddress?: string; localPort?: number } {
  const s = t.source;
  return s ? { localAddress: s.address, ...(s.port > 0 ? { localPort: s.port } : {}) } : {};
}

export interface Probe {
  check(): Promise<ProbeResult>;
  close(): void;
}

const OK: ProbeResult = { ok: true, degraded: false };
const DEGRADED: ProbeResult = { ok: true, degraded: true };
const active = (detail: string, retriable = false): ProbeResult => ({ ok: false, type: 'active', retriable, detail });
const network = (detail: string): ProbeResult => ({ ok: false, type: 'network', retriable: false, detail });
const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Every payload found in order (Envoy's TcpHealthCheckMatcher). */
export function matchesInOrder(buf: Buffer, parts: readonly Buffer[]): boolean {
  let at = 0;
  for (const p of parts) {
    const i = buf.indexOf(p, at);
    if (i < 0) return false;
    at = i + p.length;
  }
  return true;
}

const inRanges = (code: number, rs: ReadonlyArray<readonly [number, number]>): boolean => rs.some(([s, e]) => code >= s && code < e);

/** Envoy's HealthCheckerFactory::getHostname: the endpoint's, else the check's, else the cluster name. */
function authority(t: ProbeTarget, configured: string): string {
  return t.hostname || configured || t.clusterName;
}

/**
 * A connected socket to the target: TCP (or the pipe), or TLS through the transport socket, handshake
 * done and checked (bounded by the check's timeout). `connecting` gets a plaintext socket at once, so
 * a check that times out can drop it before it connects.
 */
function openSocket(t: ProbeTarget, connecting?: (s: net.Socket) => void): Promise<net.Socket> {
  const tls = t.tls;
  if (tls) {
    const target = { host: t.address, port: t.port, ...(t.socketPath ? { path: t.socketPath } : {}), ...(t.source ? { source: t.source } : {}), alpnOverride: tls.alpn, timeoutMs: tls.timeoutMs };
    return tls.socket.connect(target, tls.statPrefix).then((c) => c.socket);
  }
  return new Promise((resolve, reject) => {
    const s = t.socketPath ? net.connect(t.socketPath) : net.connect({ port: t.port, host: t.address, ...bind(t) });
    connecting?.(s);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** An HTTP/1.1 agent whose connections are TLS through the transport socket (one connection: checks never overlap). */
class TlsProbeAgent extends http.Agent {
  readonly #target: ProbeTarget;
  constructor(target: ProbeTarget, keepAlive: boolean) {
    super({ keepAlive, maxSockets: 1 });
    this.#target = target;
  }
  override createConnection(_opts: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): undefined {
    openSocket(this.#target).then(
      (s) => cb?.(null, s),
      (e: unknown) => cb?.(e instanceof Error ? e : new Error(String(e)), undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/** `degraded`: the response carried x-envoy-degraded (a passing host is then degraded, as in Envoy). */
function classifyHttp(c: HttpCheckConfig, status: number, body: Buffer, degraded: boolean): ProbeResult {
  if (inRanges(status, c.expectedStatuses)) {
    if (c.receive.length > 0 && !matchesInOrder(body, c.receive)) return active('response body did not match');
    return degraded ? DEGRADED : OK;
  }
  return active(`unexpected status ${status}`, inRanges(status, c.retriableStatuses));
}

function headersFor(c: HttpCheckConfig): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': 'Envoy/HC' };
  for (const a of c.headersToAdd) h[a.key] = a.append && h[a.key] ? `${h[a.key]},${a.value}` : a.value;
  for (const k of c.headersToRemove) delete h[k];
  return h;
}

class Http1Probe implements Probe {
  readonly #c: HttpCheckConfig;
  readonly #t: ProbeTarget;
  readonly #agent: http.Agent | false;
  readonly #reuse: boolean;
  #req: http.ClientRequest | undefined;
  constructor(c: HttpCheckConfig, t: ProbeTarget, reuse: boolean) {
    this.#c = c;
    this.#t = t;
    this.#agent = t.tls ? new TlsProbeAgent(t, reuse) : reuse ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    this.#reuse = reuse;
  }
  check(): Promise<ProbeResult> {
    const c = this.#c;
    const t = this.#t;
    return new Promise((resolve) => {
      const headers = { host: authority(t, c.host), ...headersFor(c), ...(this.#reuse ? {} : { connection: 'close' }) };
      const req = http.request({ host: t.address, port: t.port, socketPath: t.socketPath, ...bind(t), method: c.method, path: c.path, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          if (size < c.responseBufferSize) chunks.push(d.subarray(0, c.responseBufferSize - size));
          size += d.length;
        });
        res.on('end', () => resolve(classifyHttp(c, res.statusCode ?? 0, Buffer.concat(chunks), res.headers['x-envoy-degraded'] !== undefined)));
        res.on('error', (e) => resolve(network(errText(e))));
      });
      this.#req = req;
      req.on('error', (e) => resolve(network(errText(e))));
      req.end();
    });
  }
  close(): void {
    this.#req?.destroy();
    if (this.#agent) this.#agent.destroy();
  }
}

class Http2Probe implements Probe {
  readonly #c: HttpCheckConfig;
  readonly #t: ProbeTarget;
  readonly #cx: H2CheckConnection;
  constructor(c: HttpCheckConfig, t: ProbeTarget, reuse: boolean) {
    this.#c = c;
    this.#t = t;
    this.#cx = new H2CheckConnection((connecting) => openSocket(t, connecting), reuse);
  }
  async check(): Promise<ProbeResult> {
    const c = this.#c;
    const head = [':method', c.method, ':scheme', this.#t.tls ? 'https' : 'http', ':authority', authority(this.#t, c.host), ':path', c.path];
    for (const [k, v] of Object.entries(headersFor(c))) head.push(k, v);
    try {
      const a = await this.#cx.exchange(head, undefined, c.responseBufferSize);
      return classifyHttp(c, a.status, a.body, fieldOf(a.head, 'x-envoy-degraded') !== undefined);
    } catch (e) {
      return network(errText(e));
    }
  }
  close(): void {
    this.#cx.close();
  }
}

class TcpProbe implements Probe {
  readonly #c: TcpCheckConfig;
  readonly #t: ProbeTarget;
  #sock: net.Socket | undefined;
  /** Bumped by close(): a connection that completes after it is dropped. */
  #generation = 0;
  constructor(c: TcpCheckConfig, t: ProbeTarget) {
    this.#c = c;
    this.#t = t;
  }
  async check(): Promise<ProbeResult> {
    const c = this.#c;
    const generation = this.#generation;
    let sock: net.Socket;
    try {
      sock = await openSocket(this.#t, (s) => (this.#sock = s));
    } catch (e) {
      return network(errText(e));
    }
    if (generation !== this.#generation) {
      sock.destroy();
      return network('health check closed');
    }
    this.#sock = sock;
    return new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      const finish = (r: ProbeResult): void => {
        sock.destroy();
        resolve(r);
      };
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // A partial answer waits for more data (or the timeout), as in Envoy.
        if (matchesInOrder(buf, c.receive)) finish(OK);
      });
      sock.on('error', (e) => finish(network(errText(e))));
      sock.on('close', () => finish(network('connection closed')));
      if (c.send) sock.write(c.send);
      if (c.receive.length === 0) finish(OK);
    });
  }
  close(): void {
    this.#generation++;
    this.#sock?.destroy();
    this.#sock = undefined;
  }
}

/** A HealthCheckResponse is a few bytes; more is read and dropped. */
const GRPC_MAX_RESPONSE = 64 * 1024;

/** grpc.health.v1.HealthCheckRequest { string service = 1; } in a gRPC frame. */
function grpcRequest(service: string): Buffer {
  const s = Buffer.from(service);
  const msg = s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** HealthCheckResponse.status (field 1, enum); 0 (UNKNOWN) when absent. SERVING = 1. */
export function grpcServingStatus(frame: Buffer): number {
  if (frame.length < 5) return -1;
  const msg = frame.subarray(5, 5 + frame.readUInt32BE(1));
  for (let i = 0; i < msg.length; ) {
    const tag = msg[i++]!;
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = msg[i++];
      if (b === undefined) return -1;
      v |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (tag === 0x08) return v;
    if ((tag & 7) === 2) i += v; // skip unknown length-delimited fields
  }
  return 0;
}

class GrpcProbe implements Probe {
  readonly #c: GrpcCheckConfig;
  readonly #t: ProbeTarget;
  readonly #cx: H2CheckConnection;
  constructor(c: GrpcCheckConfig, t: ProbeTarget, reuse: boolean) {
    this.#c = c;
    this.#t = t;
    this.#cx = new H2CheckConnection((connecting) => openSocket(t, connecting), reuse);
  }
  async check(): Promise<ProbeResult> {
    const c = this.#c;
    const head = [':method', 'POST', ':scheme', this.#t.tls ? 'https' : 'http', ':authority', authority(this.#t, c.authority), ':path', '/grpc.health.v1.Health/Check'];
    head.push('content-type', 'application/grpc', 'te', 'trailers', 'user-agent', 'Envoy/HC');
    for (const m of c.initialMetadata) head.push(m.key.toLowerCase(), m.value);
    let a: H2Answer;
    try {
      a = await this.#cx.exchange(head, grpcRequest(c.serviceName), GRPC_MAX_RESPONSE);
    } catch (e) {
      return network(errText(e));
    }
    if (a.status !== 200) return active(`HTTP status ${a.status}`);
    // grpc-status in the trailers, or in the head of a trailers-only response.
    const grpcStatus = fieldOf(a.trailers, 'grpc-status') ?? fieldOf(a.head, 'grpc-status');
    if (grpcStatus !== '0') return active(`grpc-status ${grpcStatus ?? 'missing'}`);
    const st = grpcServingStatus(a.body);
    return st === 1 ? OK : active(`serving status ${st}`);
  }
  close(): void {
    this.#cx.close();
  }
}

export function createProbe(c: CheckerConfig, t: ProbeTarget, reuse: boolean): Probe {
  switch (c.kind) {
    case 'http':
      return c.http2 ? new Http2Probe(c, t, reuse) : new Http1Probe(c, t, reuse);
    case 'tcp':
      return new TcpProbe(c, t);
    case 'grpc':
      return new GrpcProbe(c, t, reuse);
  }
}
