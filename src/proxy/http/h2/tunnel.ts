// An extended CONNECT stream (RFC 8441: WebSocket over HTTP/2) of legate's HTTP/2 codec as the
// Duplex a tunnel pipes (connection-manager-tunnel.ts): DATA from the client is read, what is
// written goes out as DATA with the stream's flow control, end() is END_STREAM; destroying it
// before the stream is over resets the stream (CANCEL).

import { Duplex } from 'node:stream';
import { ErrorCode } from './frames.ts';
import type { H2ServerSession } from './server-session.ts';
import type { H2Stream } from './stream.ts';

const EMPTY = Buffer.alloc(0);

export class H2Tunnel extends Duplex {
  readonly #session: H2ServerSession;
  readonly #stream: H2Stream;
  /** A write the stream could not take at once: its callback waits for writable(). */
  #waiting: ((err?: Error | null) => void) | undefined;

  constructor(session: H2ServerSession, stream: H2Stream) {
    super({ allowHalfOpen: true });
    this.#session = session;
    this.#stream = stream;
  }

  /** Request DATA (or its end) from the session. */
  received(chunk: Buffer, end: boolean): void {
    if (chunk.length > 0 && !this.push(chunk)) this.#session.setPaused(this.#stream, true);
    if (end) this.push(null);
  }

  /** The session sent what was queued: the write waiting on it is done. */
  sent(): void {
    const cb = this.#waiting;
    this.#waiting = undefined;
    cb?.();
  }

  override _read(): void {
    this.#session.setPaused(this.#stream, false);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#session.sendData(this.#stream, chunk, false)) cb();
    else this.#waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#session.sendData(this.#stream, EMPTY, true);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#stream.closed) this.#session.resetStream(this.#stream, ErrorCode.CANCEL);
    this.sent();
    cb(err);
  }
}
