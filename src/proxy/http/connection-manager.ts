// The HTTP connection manager on one worker: takes downstream sockets, picks the codec (AUTO sniffs the
// HTTP/2 preface), gives HTTP/1.x sockets an llhttp codec (codec-http1-server.ts) and HTTP/2 ones to one
// node:http2 server per manager (core stream API), and runs an ActiveStream per request. Connection
// idle timeout, drain and protocol errors are handled here; a broken connection is closed, never thrown.

import type { Http2Server, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isTlsSocket } from '../tls/is-tls-socket.ts';
import type { HttpFilterFactory } from '../../filters/http/filter.ts';
import type { RuntimeContext } from '../../filters/registry.ts';
import type { Runtime } from '../runtime.ts';
import { createAccessLogger, type AccessLogger } from '../access-log/index.ts';
import { logger } from '../log.ts';
import { h1RequestHeaders } from './codec-http1.ts';
import { Http1ServerCodec, headerValue, type Http1CodecCallbacks, type Http1RequestHead, type Http1RequestSink } from './codec-http1-server.ts';
import type { ResponseEncoder } from './codec.ts';
import { HeaderMap } from './headers.ts';
import { H2ResponseEncoder, h2RequestHeaders, h2UpgradeToH1 } from './codec-http2.ts';
import { H2ServerSession, type H2CodecEvent } from './h2/server-session.ts';
import type { H2Stream } from './h2/stream.ts';
import { H2StreamEncoder } from './h2/response-encoder.ts';
import { ErrorCode, Flag } from './h2/frames.ts';
import { UpgradeResponseEncoder } from './codec-upgrade.ts';
import { ActiveStream } from './connection-manager-stream.ts';
import type { ConnectionInfo, ConnectionManager, ConnectionOptions, RuntimeFilter, StreamOwner } from './connection-manager-types.ts';
import type { HcmConfig, HttpFilterEntry } from './hcm-config.ts';
import { HcmStats } from './hcm-stats.ts';
import { checkUnderscores } from './request-headers.ts';
import { startTimeout, type Timeout } from '../timeouts.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';

const log = logger('http');
/** Stream errors (resets) are reported through 'close': one shared listener, not a closure per stream. */
const ignoreStreamError = (): void => {};
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function runtimeFilters(entries: readonly HttpFilterEntry[], ctx: RuntimeContext): RuntimeFilter[] {
  return entries.map((e) => ({ name: e.name, config: e.config, factory: e.spec.factory(e.config, ctx) as HttpFilterFactory }));
}

/** What a Connection asks of its HTTP/2 session, whichever codec has it. */
interface H2Connection {
  readonly closed: boolean;
  /** GOAWAY; the connection closes once the streams in flight are over. */
  close(): void;
}

/** Downstream HTTP/2 on legate's own codec (h2/server-session.ts) unless LEGATE_H2_CODEC=node (node:http2's server). */
function ownH2Codec(): boolean {
  return process.env.LEGATE_H2_CODEC !== 'node';
}

/** One downstream connection: stream accounting, idle timer, drain. */
class Connection implements StreamOwner {
  readonly mgr: Manager;
  readonly socket: Socket;
  readonly info: ConnectionInfo;
  readonly h2: boolean;
  /** The HTTP/2 connection: legate's own codec's, or node:http2's. */
  session: H2Connection | undefined;
  active = 0;
  requests = 0;
  #idle: Timeout | undefined;
  #closedLocally = false;
  readonly #start = performance.now();

  constructor(mgr: Manager, socket: Socket, info: ConnectionInfo, h2: boolean) {
    this.mgr = mgr;
    this.socket = socket;
    this.info = info;
    this.h2 = h2;
    const s = mgr.stats;
    if (h2) {
      s.cxHttp2Total.inc();
      s.cxHttp2Active.inc();
    } else {
      s.cxHttp1Total.inc();
      s.cxHttp1Active.inc();
    }
    if (mgr.cfg.idleTimeoutMs > 0) this.#idle = startTimeout(mgr.cfg.idleTimeoutMs, () => this.#onIdle());
    socket.once('close', () => this.#onClose());
  }

  get cfg(): HcmConfig {
    return this.mgr.cfg;
  }
  get stats(): HcmStats {
    return this.mgr.stats;
  }
  get runtime(): Runtime {
    return this.mgr.runtime;
  }
  get filters(): readonly RuntimeFilter[] {
    return this.mgr.filters;
  }
  get upgradeFilters(): ReadonlyMap<string, readonly RuntimeFilter[]> {
    return this.mgr.upgradeFilters;
  }
  get accessLoggers(): readonly AccessLogger[] {
    return this.mgr.accessLoggers;
  }

  shouldCloseAfterResponse(): boolean {
    const max = this.mgr.cfg.maxRequestsPerConnection;
    return this.mgr.draining || (max > 0 && this.requests >= max);
  }

  newStream(encoder: ResponseEncoder): ActiveStream {
    this.active++;
    this.requests++;
    return new ActiveStream(this, this.info, encoder);
  }

  streamDone(_s: ActiveStream): void {
    this.active--;
    if (this.active === 0) this.#idle?.refresh();
    const max = this.mgr.cfg.maxRequestsPerConnection;
    if (this.h2 && (this.mgr.draining || (max > 0 && this.requests >= max))) this.drain();
  }

  #onIdle(): void {
    if (this.active > 0) {
      this.#idle?.refresh();
      return;
    }
    this.mgr.stats.cxIdleTimeout.inc();
    this.closeNow(false);
  }

  /** Graceful for HTTP/2 (GOAWAY, then close once streams end); HTTP/1.1 closes at once. */
  closeNow(abort: boolean): void {
    this.#closedLocally = true;
    if (this.session && !abort) this.session.close();
    else if (abort) this.socket.destroy();
    else this.socket.end();
  }

  /**
   * HTTP/2: GOAWAY now (streams in flight finish). HTTP/1.1: the next response says
   * `Connection: close`; an idle connection is closed by closeIdle() when drain_timeout is up.
   */
  drain(): void {
    if (this.h2 && this.session && !this.session.closed) {
      this.mgr.stats.cxDrainClose.inc();
      this.closeNow(false);
    }
  }

  /** Drain timeout: an HTTP/1.1 connection with no request in flight is closed. */
  closeIdle(): void {
    if (this.h2 || this.active > 0 || this.socket.destroyed) return;
    this.mgr.stats.cxDrainClose.inc();
    this.closeNow(false);
  }

  #onClose(): void {
    this.#idle?.stop();
    const s = this.mgr.stats;
    s.cxActive.dec();
    if (this.h2) s.cxHttp2Active.dec();
    else s.cxHttp1Active.dec();
    s.cxDestroy.inc();
    (this.#closedLocally ? s.cxDestroyLocal : s.cxDestroyRemote).inc();
    s.cxRxBytesTotal.inc(this.socket.bytesRead);
    s.cxTxBytesTotal.inc(this.socket.bytesWritten);
    s.cxLengthMs.record(performance.now() - this.#start);
    this.mgr.connections.delete(this);
  }
}

class Manager implements ConnectionManager {
  readonly cfg: HcmConfig;
  readonly stats: HcmStats;
  readonly filters: readonly RuntimeFilter[];
  readonly upgradeFilters: ReadonlyMap<string, readonly RuntimeFilter[]>;
  readonly accessLoggers: readonly AccessLogger[];
  readonly runtime: Runtime;
  readonly connections = new Set<Connection>();
  draining = false;
  readonly #h1Callbacks: (conn: Connection) => Http1CodecCallbacks;
  /** node:http2's server, only when LEGATE_H2_CODEC=node. */
  #h2: Http2Server | undefined;
  readonly #ownH2: boolean;
  readonly #bySocket = new WeakMap<object, Connection>();
  /** AUTO connections still waiting for their first bytes. */
  readonly #sniffing = new Set<Socket>();
  #drainTimer: LongTimer | undefined;
  #pendingH2: Connection | undefined;

  constructor(cfg: HcmConfig, ctx: RuntimeContext) {
    this.cfg = cfg;
    this.stats = new HcmStats(ctx.stats, cfg.statPrefix);
    this.runtime = ctx.runtime;
    this.filters = runtimeFilters(cfg.httpFilters, ctx);
    const up = new Map<string, readonly RuntimeFilter[]>();
    for (const u of cfg.upgradeConfigs) if (u.filters) up.set(u.upgradeType, runtimeFilters(u.filters, ctx));
    this.upgradeFilters = up;
    this.accessLoggers = cfg.accessLogs.map((a) => createAccessLogger(a));
    this.#h1Callbacks = (conn) => ({
      onRequest: (head, enc, ends) => this.#onH1Request(conn, head, enc, ends),
      onUpgrade: (head, socket, rest) => this.#onH1Upgrade(conn, head, socket, rest),
      trailers: (raw) => (this.cfg.http1.enableTrailers ? HeaderMap.fromFlat(raw) : undefined),
      onProtocolError: (code, status) => this.#onH1ProtocolError(code, status),
      onHeadersTimeout: () => this.#onH1ProtocolError('ERR_HTTP_REQUEST_TIMEOUT', 408),
    });

    this.#ownH2 = ownH2Codec();
    if (!this.#ownH2) this.#h2 = this.#nodeH2Server(cfg);
  }

  /** node:http2's server (LEGATE_H2_CODEC=node): its sessions and core 'stream' events. */
  #nodeH2Server(cfg: HcmConfig): Http2Server {
    // Loaded only here: node:http2 costs ~1.2 MB of heap per thread, and legate's own codec serves otherwise.
    const h2 = process.getBuiltinModule('node:http2').createServer({
      settings: {
        maxConcurrentStreams: cfg.http2.maxConcurrentStreams,
        initialWindowSize: cfg.http2.initialStreamWindowSize,
        maxHeaderListSize: Math.max(65535, cfg.maxRequestHeadersKb * 1024 * 2),
        ...(cfg.http2.allowConnect ? { enableConnectProtocol: true } : {}),
      },
      maxHeaderListPairs: cfg.maxHeadersCount + 16,
    });
    h2.on('session', (session: Http2Session) => {
      const conn = this.#pendingH2;
      this.#pendingH2 = undefined;
      if (!conn) return;
      conn.session = session;
      this.#bySocket.set(session, conn);
      session.on('error', () => {});
      if (cfg.http2.initialConnectionWindowSize > 65535) {
        try {
          session.setLocalWindowSize(cfg.http2.initialConnectionWindowSize);
        } catch {
          // the session is already gone
        }
      }
    });
    // The core 'stream' event only: a 'request' listener would set up node:http2's compat layer.
    h2.on('stream', (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders, flags: number, raw: string[]) => this.#onH2Stream(stream, flags, raw));
    return h2;
  }

  handleConnection(socket: Socket, opts: ConnectionOptions): void {
    this.stats.cxTotal.inc();
    this.stats.cxActive.inc();
    const tls = opts.tls ?? isTlsSocket(socket);
    const remote = opts.remote ?? { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const info: ConnectionInfo = {
      connectionId: opts.connectionId,
      remote,
      directRemote: opts.directRemote ?? remote,
      local: opts.local ?? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      tls,
      requestedServerName: opts.requestedServerName ?? (tls ? ((socket as TLSSocket).servername || undefined) : undefined),
      bufferLimitBytes: opts.bufferLimitBytes ?? this.cfg.bufferLimitBytes,
      downstreamTls: opts.downstreamTls,
    };
    socket.on('error', () => {});
    if (tls) {
      this.stats.cxSslTotal.inc();
      this.stats.cxSslActive.inc();
      socket.once('close', () => this.stats.cxSslActive.dec());
    }
    const codec = this.cfg.codecType;
    if (codec === 'HTTP1') return this.#start(socket, info, false);
    if (codec === 'HTTP2') return this.#start(socket, info, true);
    if (tls && (socket as TLSSocket).alpnProtocol) return this.#start(socket, info, (socket as TLSSocket).alpnProtocol === 'h2');
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const prefix = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (prefix && buf.length < PREFACE.length) return; // need more bytes to decide
      cleanup();
      socket.pause();
      socket.unshift(buf);
      this.#start(socket, info, prefix);
    };
    const onGone = (): void => {
      cleanup();
      this.stats.cxActive.dec();
      this.stats.cxDestroy.inc();
    };
    const cleanup = (): void => {
      this.#sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('close', onGone);
    };
    this.#sniffing.add(socket);
    socket.on('data', onData);
    socket.once('close', onGone);
  }

  #start(socket: Socket, info: ConnectionInfo, h2: boolean): void {
    const conn = new Connection(this, socket, info, h2);
    this.connections.add(conn);
    if (h2 && this.#ownH2) {
      const cfg = this.cfg;
      const session: H2ServerSession = new H2ServerSession(
        socket,
        {
          maxConcurrentStreams: cfg.http2.maxConcurrentStreams,
          initialWindowSize: cfg.http2.initialStreamWindowSize,
          connectionWindowSize: Math.max(65535, cfg.http2.initialConnectionWindowSize),
          maxHeaderListSize: Math.max(65535, cfg.maxRequestHeadersKb * 1024 * 2),
          maxHeaderPairs: cfg.maxHeadersCount + 16,
          enableConnectProtocol: cfg.http2.allowConnect,
          keepalive: cfg.http2.keepalive,
        },
        {
          onStream: (s, raw, end) => this.#onOwnH2Stream(conn, session, s, raw, end),
          onCodecEvent: (e) => this.#onH2CodecEvent(e),
        },
      );
      conn.session = session;
    } else if (h2) {
      this.#pendingH2 = conn;
      // node:http2 answers a TLS socket that did not negotiate h2 with `403` (its unknownProtocol
      // path); h2 by prior knowledge (AUTO sniffed the preface, or codec_type HTTP2) is still h2.
      const t = isTlsSocket(socket) && socket.alpnProtocol !== 'h2' ? socket : undefined;
      const alpn = t?.alpnProtocol;
      if (t) t.alpnProtocol = 'h2';
      this.#h2!.emit('connection', socket);
      if (t) t.alpnProtocol = alpn ?? false;
      this.#pendingH2 = undefined;
    } else {
      const cfg = this.cfg;
      new Http1ServerCodec(socket, this.#h1Callbacks(conn), {
        maxHeaderSize: cfg.maxRequestHeadersKb * 1024,
        headersTimeoutMs: cfg.requestHeadersTimeoutMs,
        delayedCloseMs: cfg.delayedCloseMs,
        trailers: cfg.http1.enableTrailers,
        serverName: cfg.serverName,
      }); // it starts reading
    }
  }

  #onH1Request(conn: Connection, head: Http1RequestHead, enc: ResponseEncoder, ends: boolean): Http1RequestSink | undefined {
    const stream = conn.newStream(enc);
    const conv = h1RequestHeaders(head, this.cfg, conn.info.tls);
    if (conv.reject) {
      this.stats.cxProtocolError.inc();
      stream.decodeHeaders(conv.headers, ends, { reject: conv.reject });
      return stream;
    }
    const u = checkUnderscores(conv.headers, this.cfg.headersWithUnderscoresAction);
    if (u === 'reject') {
      this.stats.http1RejectedUnderscores.inc();
      stream.decodeHeaders(conv.headers, ends, { reject: { status: 400, details: 'http1.unexpected_underscore', body: 'Bad Request' } });
      return stream;
    }
    if (typeof u === 'number') this.stats.http1DroppedUnderscores.inc(u);
    stream.decodeHeaders(conv.headers, ends);
    return stream;
  }

  #onH1Upgrade(conn: Connection, head: Http1RequestHead, socket: Socket, rest: Buffer): void {
    const enc = new UpgradeResponseEncoder(socket, rest);
    const stream = conn.newStream(enc);
    socket.once('close', () => {
      if (!stream.done) stream.onDownstreamReset('downstream connection closed');
    });
    const conv = h1RequestHeaders(head, this.cfg, conn.info.tls);
    const upgrade = head.method === 'CONNECT' ? 'connect' : (headerValue(head.rawHeaders, 'upgrade') ?? '');
    if (conv.reject) return stream.decodeHeaders(conv.headers, false, { reject: conv.reject });
    const u = checkUnderscores(conv.headers, this.cfg.headersWithUnderscoresAction);
    if (u === 'reject') {
      this.stats.http1RejectedUnderscores.inc();
      return stream.decodeHeaders(conv.headers, false, { reject: { status: 400, details: 'http1.unexpected_underscore', body: 'Bad Request' } });
    }
    stream.decodeHeaders(conv.headers, false, { upgrade });
  }

  /** A malformed request (the codec answers it and closes the connection): Envoy's stats for it. */
  #onH1ProtocolError(code: string, status: number): void {
    const s = this.stats;
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') s.rqHeaderTimeout.inc();
    s.cxProtocolError.inc();
    if (log.enabled('debug')) log.debug(`downstream protocol error: ${code}`);
    s.rqTotal.inc();
    s.rqHttp1Total.inc();
    s.chargeStatus(status);
    s.rqCompleted.inc();
  }

  #onH2Stream(h2: ServerHttp2Stream, flags: number, raw: string[]): void {
    h2.on('error', ignoreStreamError);
    const conn = this.#bySocket.get(h2.session as Http2Session);
    if (!conn) return void h2.close(ErrorCode.REFUSED_STREAM);
    const conv = h2RequestHeaders(raw, this.cfg);
    const u = conv.reject || !conv.underscores ? 'ok' : checkUnderscores(conv.headers, this.cfg.headersWithUnderscoresAction);
    if (u === 'reject') {
      // Envoy resets the stream rather than answering.
      this.stats.http2RejectedUnderscores.inc();
      return void h2.close(ErrorCode.PROTOCOL_ERROR);
    }
    if (typeof u === 'number') this.stats.http2DroppedUnderscores.inc(u);
    const enc = new H2ResponseEncoder(h2);
    const stream = conn.newStream(enc);
    enc.bind(stream);
    const ends = (flags & Flag.END_STREAM) !== 0;
    if (conv.reject) {
      this.stats.cxProtocolError.inc();
      stream.decodeHeaders(conv.headers, ends, { reject: conv.reject });
      if (!ends) h2.resume();
      return;
    }
    const upgrade = this.cfg.http2.allowConnect ? h2UpgradeToH1(conv.headers) : undefined;
    if (upgrade !== undefined) {
      // Extended CONNECT (WebSocket over HTTP/2): as an HTTP/1.1 upgrade request; the stream's data
      // is the tunnel's, read once the upstream agreed (or dropped when it did not).
      enc.upgradeStream();
      stream.decodeHeaders(conv.headers, false, { upgrade });
      if (stream.done) h2.resume();
      return;
    }
    stream.decodeHeaders(conv.headers, ends);
    // Already answered: a body still coming is dropped. A request that ended with its headers is not
    // resumed: an ended readable side lets node:http2 destroy the stream under the last write (an
    // ERR_STREAM_DESTROYED per response).
    if (!ends) {
      if (stream.done) h2.resume();
      else enc.readBody();
    }
  }

  #onOwnH2Stream(conn: Connection, session: H2ServerSession, s: H2Stream, raw: string[], ends: boolean): void {
    const conv = h2RequestHeaders(raw, this.cfg);
    const u = conv.reject || !conv.underscores ? 'ok' : checkUnderscores(conv.headers, this.cfg.headersWithUnderscoresAction);
    if (u === 'reject') {
      this.stats.http2RejectedUnderscores.inc();
      return session.resetStream(s, ErrorCode.PROTOCOL_ERROR);
    }
    if (typeof u === 'number') this.stats.http2DroppedUnderscores.inc(u);
    const enc = new H2StreamEncoder(session, s);
    const stream = conn.newStream(enc);
    enc.bind(stream);
    if (conv.reject) {
      this.stats.cxProtocolError.inc();
      return stream.decodeHeaders(conv.headers, ends, { reject: conv.reject });
    }
    const upgrade = this.cfg.http2.allowConnect ? h2UpgradeToH1(conv.headers) : undefined;
    if (upgrade !== undefined) {
      // Extended CONNECT (WebSocket over HTTP/2): as an HTTP/1.1 upgrade request; the stream's DATA
      // is held for the tunnel, which reads it once the upstream agreed.
      enc.upgradeStream();
      return stream.decodeHeaders(conv.headers, false, { upgrade });
    }
    stream.decodeHeaders(conv.headers, ends);
  }

  #onH2CodecEvent(e: H2CodecEvent): void {
    if (e === 'protocol_error') this.stats.cxProtocolError.inc();
    else if (e === 'too_many_premature_resets') this.stats.rqTooManyPrematureResets.inc();
    else this.stats.http2Codec[e].inc();
  }

  drain(): void {
    this.draining = true;
    for (const c of this.connections) c.drain();
    if (this.#drainTimer) return;
    this.#drainTimer = setLongTimeout(() => {
      for (const c of this.connections) c.closeIdle();
      for (const s of this.#sniffing) {
        this.stats.cxDrainClose.inc();
        s.end();
      }
    }, this.cfg.drainTimeoutMs);
    this.#drainTimer.unref();
  }

  async close(): Promise<void> {
    this.#drainTimer?.clear();
    for (const c of this.connections) c.closeNow(true);
    for (const s of this.#sniffing) s.destroy();
    this.connections.clear();
    await Promise.all(this.accessLoggers.map((l) => l.close()));
  }
}

/** A connection manager for one HCM config on one worker. */
export function createConnectionManager(config: HcmConfig, ctx: RuntimeContext): ConnectionManager {
  return new Manager(config, ctx);
}
