// The response side of one stream of legate's HTTP/2 server codec (server-session.ts), and the
// sink of its request events: what the connection manager's ActiveStream sees of the stream.
// The session batches every frame to the end of the event loop's turn, so unlike node:http2's
// (codec-http2.ts) nothing is held here: a response whose end or trailers follow in the same turn
// still goes out in one write.

import { HeaderMap } from '../headers.ts';
import type { Duplex } from 'node:stream';
import type { ResponseEncoder } from '../codec.ts';
import type { H2RequestSink } from '../codec-http2.ts';
import { h2UpgradeResponse, rawResponseHeaders } from '../codec-http2.ts';
import { ErrorCode } from './frames.ts';
import type { H2ServerSession } from './server-session.ts';
import type { H2Stream, H2StreamSink } from './stream.ts';
import { checkResponse } from './validate.ts';
import { H2Tunnel } from './tunnel.ts';

const EMPTY = Buffer.alloc(0);

export class H2StreamEncoder implements ResponseEncoder, H2StreamSink {
  readonly protocol = 'HTTP/2' as const;
  readonly #session: H2ServerSession;
  readonly #stream: H2Stream;
  #sink: H2RequestSink | undefined;
  /** This side reset the stream: the session's reset notice is not passed back. */
  #resetHere = false;
  /** An extended CONNECT stream; once its upgrade was answered, the tunnel its bytes go to. */
  #upgrade = false;
  #tunnel: H2Tunnel | undefined;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(session: H2ServerSession, stream: H2Stream) {
    this.#session = session;
    this.#stream = stream;
    stream.sink = this;
  }

  bind(sink: H2RequestSink): void {
    this.#sink = sink;
  }

  release(): void {
    this.#sink = undefined;
    this.#stream.sink = undefined;
  }

  get headersSent(): boolean {
    return this.#stream.headersSent;
  }

  // ---- H2StreamSink: request events from the session ----

  data(chunk: Buffer, end: boolean): void {
    if (this.#tunnel) return this.#tunnel.received(chunk, end);
    const s = this.#sink;
    if (s && !s.done) s.decodeData(chunk, end);
  }

  trailers(raw: string[]): void {
    if (this.#tunnel) return this.#tunnel.received(EMPTY, true);
    const s = this.#sink;
    if (!s || s.done) return;
    if (raw.length > 0) s.decodeTrailers(HeaderMap.fromFlat(raw));
    else s.decodeData(EMPTY, true);
  }

  streamReset(reason: string): void {
    if (this.#resetHere) return;
    this.#tunnel?.destroy(new Error(reason));
    const s = this.#sink;
    if (s && !s.done) s.onDownstreamReset('downstream stream reset');
  }

  writable(): void {
    if (this.#tunnel) this.#tunnel.sent();
    else this.onWritable?.(true);
  }

  /** An extended CONNECT upgrade (h2UpgradeToH1): request DATA is held until the tunnel takes it. */
  upgradeStream(): void {
    this.#upgrade = true;
    this.#session.setPaused(this.#stream, true);
  }

  /** The stream as the tunnel's downstream side, once its upgrade was answered (Envoy's 101 -> 200). */
  takeTunnel(): { socket: Duplex; head: Buffer } | undefined {
    const st = this.#stream;
    if (!this.#upgrade || !st.headersSent || st.closed) return undefined;
    this.#tunnel ??= new H2Tunnel(this.#session, st);
    return { socket: this.#tunnel, head: EMPTY };
  }

  // ---- ResponseEncoder ----

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const st = this.#stream;
    if (st.closed || st.headersSent) return;
    // An upgrade's 101 goes out as 200; the stream stays open for the tunnel.
    if (this.#upgrade && !endStream) h2UpgradeResponse(headers);
    const raw = rawResponseHeaders(headers);
    // What node:http2's respond() refuses is refused here too: the stream is reset.
    if (checkResponse(raw, !headers.validated) !== undefined) return this.reset('invalid response headers');
    this.#session.respond(st, raw, endStream);
  }

  encodeData(data: Buffer, endStream: boolean): boolean {
    return this.#session.sendData(this.#stream, data, endStream);
  }

  encodeTrailers(trailers: HeaderMap): void {
    if (trailers.size === 0) return void this.#session.sendData(this.#stream, EMPTY, true);
    const raw: string[] = [];
    trailers.forEach((k, v) => {
      if (k.charCodeAt(0) !== 58 /* ':' */) raw.push(k, v);
    });
    if (checkResponse(raw, !trailers.validated) !== undefined) return this.reset('invalid response trailers');
    this.#session.sendTrailers(this.#stream, raw);
  }

  reset(_reason: string): void {
    this.#resetHere = true;
    this.#session.resetStream(this.#stream, ErrorCode.INTERNAL_ERROR);
  }

  readDisable(disabled: boolean): void {
    this.#session.setPaused(this.#stream, disabled);
  }

  closeConnectionAfter(): void {
    // HTTP/2 drains with GOAWAY (the connection's business), not per response.
  }
}
