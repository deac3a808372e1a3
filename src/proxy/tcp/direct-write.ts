// Writes that skip the Writable machinery of a plain net.Socket: the bytes go straight to the
// socket's libuv handle (what net.Socket's own _writeGeneric does after its bookkeeping), so a
// write that the kernel takes at once costs one call: no WriteWrap per write, no Writable state,
// no nextTick for the write callback. In profiles of the HTTP/1.1 and tcp_proxy paths that
// bookkeeping was about 4% of a worker's busy time. Used only when the Writable side is idle (no
// buffered, corked, ended or connecting socket), so bytes keep their order; otherwise, and for
// TLS sockets or a Node whose internals differ, write() is socket.write().

import type { Socket } from 'node:net';
import { isTlsSocket } from '../tls/is-tls-socket.ts';
import { getSystemErrorName } from 'node:util';

/** What a write dispatched to libuv keeps: its completion callback and the bytes it reads from. */
interface WriteReq {
  oncomplete?: (status: number) => void;
  buffer?: Uint8Array;
}

interface StreamWrapBinding {
  readonly WriteWrap: new () => WriteReq;
  readonly streamBaseState: Int32Array;
  readonly kLastWriteWasAsync: number;
  readonly kBytesWritten: number;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writeLatin1String(req: WriteReq, data: string): number;
}

let binding: StreamWrapBinding | null | undefined;

function streamWrap(): StreamWrapBinding | null {
  if (binding !== undefined) return binding;
  binding = null;
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array && typeof b.kLastWriteWasAsync === 'number' && typeof b.kBytesWritten === 'number') {
      binding = b as StreamWrapBinding;
    }
  } catch {
    binding = null;
  }
  return binding;
}

function writeError(status: number): Error {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`write ${code}`), { errno: status, code, syscall: 'write' });
}

export interface DirectWriter {
  /**
   * socket.write(data, 'latin1'), answering as it would: false once the bytes waiting to be
   * written reach the socket's high-water mark ('drain' is emitted on the socket when they are
   * all written).
   */
  write(data: string | Uint8Array): boolean;
  /**
   * Bytes write() handed to libuv that the kernel has not taken yet: they are not in
   * socket.writableLength, and a buffer written is referenced until this is 0 again.
   */
  readonly pending: number;
}

class HandleWriter implements DirectWriter {
  pending = 0;
  readonly #socket: Socket;
  readonly #b: StreamWrapBinding;
  /** A WriteWrap that a write finished at once did not keep (libuv never saw it): reused. */
  #spare: WriteReq | undefined;
  #needDrain = false;

  constructor(socket: Socket, b: StreamWrapBinding) {
    this.#socket = socket;
    this.#b = b;
  }

  write(data: string | Uint8Array): boolean {
    const s = this.#socket;
    const h = (s as unknown as { _handle: StreamHandle | null })._handle;
    if (h === null || s.writableLength !== 0 || s.writableCorked !== 0 || s.writableEnded || s.destroyed || s.connecting) return s.write(data, 'latin1');
    const b = this.#b;
    const req = this.#spare ?? new b.WriteWrap();
    this.#spare = undefined;
    const err = typeof data === 'string' ? h.writeLatin1String(req, data) : h.writeBuffer(req, data);
    if (err !== 0) {
      s.destroy(writeError(err));
      return false;
    }
    if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
      this.#spare = req;
      return true;
    }
    // The kernel took part of it: libuv writes the rest when the socket is writable, then completes.
    const bytes = b.streamBaseState[b.kBytesWritten]!;
    if (typeof data !== 'string') req.buffer = data; // strings were copied by the write
    req.oncomplete = (status: number) => this.#done(bytes, status);
    this.pending += bytes;
    if (this.pending < s.writableHighWaterMark) return true;
    this.#needDrain = true;
    return false;
  }

  #done(bytes: number, status: number): void {
    this.pending -= bytes;
    const s = this.#socket;
    if (s.destroyed) return;
    if (status < 0) {
      s.destroy(writeError(status));
      return;
    }
    if (this.pending === 0 && this.#needDrain) {
      this.#needDrain = false;
      s.emit('drain');
    }
  }
}

class StreamWriter implements DirectWriter {
  readonly pending = 0;
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  write(data: string | Uint8Array): boolean {
    return this.#socket.write(data, 'latin1');
  }
}

/** A writer for `socket`: direct to its handle when it is a plain libuv stream, else socket.write. */
export function directWriter(socket: Socket): DirectWriter {
  const b = streamWrap();
  if (!b || isTlsSocket(socket)) return new StreamWriter(socket);
  return new HandleWriter(socket, b);
}
