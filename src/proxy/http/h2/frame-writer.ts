// The output side of legate's HTTP/2 connection (session.ts): frames queued during one turn
// of the event loop go to the socket in one write at its end (setImmediate, as node:http2 batches
// through nghttp2), straight to the socket's libuv handle when it is plain TCP (direct-write.ts).

import type { Socket } from 'node:net';
import { directWriter, type DirectWriter } from '../../tcp/direct-write.ts';

/** Queued bytes up to this are joined into one buffer for one write; more are written one by one. */
const JOIN_BYTES = 256 * 1024;

export class FrameWriter {
  readonly #socket: Socket;
  readonly #writer: DirectWriter;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #epoch = 0;
  #full = false;

  /** `onDrain`: the socket took what it had refused (after `full` was true). */
  constructor(socket: Socket, onDrain: () => void) {
    this.#socket = socket;
    this.#writer = directWriter(socket);
    socket.on('drain', () => {
      if (!this.#full) return;
      this.#full = false;
      onDrain();
    });
  }

  /** Counts flushes: a frame queued in this epoch is unwritten (its flags may still change) until the epoch moves on. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The last write went over the socket's high-water mark; `onDrain` follows. */
  get full(): boolean {
    return this.#full;
  }

  /** Bytes queued here, handed to libuv and buffered by the socket, not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.#outBytes + this.#writer.pending + this.#socket.writableLength;
  }

  queue(buf: Buffer): void {
    this.#out.push(buf);
    this.#outBytes += buf.length;
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => this.flush());
  }

  /** Writes what is queued now (the end of the turn, or before the connection ends). */
  flush(): void {
    this.#flushQueued = false;
    this.#epoch++;
    const out = this.#out;
    if (out.length === 0) return;
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return;
    let ok = true;
    if (out.length === 1) ok = this.#writer.write(out[0]!);
    else if (bytes <= JOIN_BYTES) ok = this.#writer.write(Buffer.concat(out, bytes));
    else for (const b of out) ok = this.#writer.write(b);
    if (!ok) this.#full = true;
  }
}
