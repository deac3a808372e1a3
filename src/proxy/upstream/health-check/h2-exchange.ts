// HTTP/2 for active health checks (HTTP checks with codec_client_type HTTP2, gRPC checks) on
// legate's own HTTP/2 client (h2/client-session.ts), the codec the cluster's traffic uses: one
// connection per checked host, kept between checks when reuse_connection is on, and one request
// per check read to its end (response head, body up to a limit, trailers).

import type { Socket } from 'node:net';
import { H2ClientSession, type H2ResponseSink } from '../../http/h2/client-session.ts';
import { Limits } from '../../limits.ts';

/** A check's answer: `:status`, the response's fields and trailers ([name, value, ...]), the body up to the limit given. */
export interface H2Answer {
  readonly status: number;
  readonly head: readonly string[];
  readonly trailers: readonly string[] | undefined;
  readonly body: Buffer;
}

/** The check's connection to one host: opened when a check needs it, dropped by close() (timeouts) or after each check without reuse. */
export class H2CheckConnection {
  readonly #open: (connecting: (s: Socket) => void) => Promise<Socket>;
  readonly #reuse: boolean;
  #session: H2ClientSession | undefined;
  /** A plaintext socket still connecting (close() drops it). */
  #connecting: Socket | undefined;
  /** Bumped by close(): a connection that completes after it was dropped is closed at once. */
  #generation = 0;

  /** `open`: a connected socket to the host (TLS handshake done); it passes a plaintext socket to `connecting` at once. */
  constructor(open: (connecting: (s: Socket) => void) => Promise<Socket>, reuse: boolean) {
    this.#open = open;
    this.#reuse = reuse;
  }

  /** Sends `head` (pseudo-headers first) and `body`; resolves with the answer, or rejects with the reason (connect, reset, GOAWAY). */
  async exchange(head: readonly string[], body: Buffer | undefined, maxBody: number): Promise<H2Answer> {
    const session = await this.#get();
    try {
      return await request(session, head, body, maxBody);
    } finally {
      if (!this.#reuse) this.close();
    }
  }

  close(): void {
    this.#generation++;
    this.#connecting?.destroy();
    this.#connecting = undefined;
    this.#session?.destroy();
    this.#session = undefined;
  }

  async #get(): Promise<H2ClientSession> {
    const s = this.#session;
    if (s && s.capacity > 0) return s;
    s?.close();
    const generation = this.#generation;
    const socket = await this.#open((c) => (this.#connecting = c));
    this.#connecting = undefined;
    if (generation !== this.#generation) {
      socket.destroy();
      throw new Error('health check closed');
    }
    socket.setNoDelay(true);
    // A check's connection never holds the process open (Envoy's checks end with the server).
    socket.unref();
    socket.on('error', () => {}); // the session sees the close; the check reports it
    const session = new H2ClientSession(
      socket,
      { initialWindowSize: Limits.http2InitialStreamWindowSize, connectionWindowSize: Limits.http2InitialConnectionWindowSize, maxHeaderListSize: Math.max(65535, Limits.maxRequestHeadersKb * 1024 * 2) },
      { onCodecEvent: () => {}, onGoaway: () => {} },
    );
    this.#session = session;
    return session;
  }
}

/** One stream on `session`: the request, then its answer read to the end. */
function request(session: H2ClientSession, head: readonly string[], body: Buffer | undefined, maxBody: number): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let fields: string[] = [];
    const chunks: Buffer[] = [];
    let size = 0;
    const answer = (trailers: string[] | undefined): void => resolve({ status, head: fields, trailers, body: Buffer.concat(chunks) });
    const sink: H2ResponseSink = {
      headers: (raw, end) => {
        status = Number(raw[1]); // :status comes first (checked by the client session)
        fields = raw;
        if (end) answer(undefined);
      },
      data: (d, end) => {
        if (size < maxBody) chunks.push(d.subarray(0, maxBody - size));
        size += d.length;
        if (end) answer(undefined);
      },
      trailers: (raw) => answer(raw),
      streamReset: (reason) => reject(new Error(reason)),
      writable: () => {},
    };
    const s = session.request(head, body === undefined, sink);
    if (!s) return reject(new Error('connection closed'));
    if (body !== undefined) session.sendData(s, body, true);
  });
}
