// Node's `onread` option (reads land in one reused buffer and go to a callback: no Buffer, no
// Readable push, no 'data' event per read) for a plain net.Socket created elsewhere: the
// listener's accept and the cluster's connect do not pass the option, so it is switched on after
// the fact through the same fields the option sets. Used by tcp_proxy, the HTTP/1.1 codec and the
// upstream HTTP/1.1 connection. Where that is not possible (a TLSSocket, no
// handle, a Node whose internals differ) it returns undefined and the caller reads 'data' events.

import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isTlsSocket } from '../tls/is-tls-socket.ts';
import { runAsRead } from './after-read.ts';

/** What the caller does with one read: false stops reading (Node's readStop) until `socket.resume()`. */
export type UserBufferCallback = (nread: number, buffer: Buffer) => boolean;

export interface UserBufferReader {
  /**
   * The bytes of the current read are still referenced (a write that did not complete at once, a
   * chunk kept): the next read goes into a fresh buffer. Call from inside the callback.
   */
  renew(): void;
  /** The socket is closed: it lets go of the buffer and the callback (and what the callback holds). */
  release(): void;
}

interface ReadSymbols {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

interface StreamHandle {
  useUserBuffer?(buffer: Uint8Array): void;
}

type SocketFields = Record<symbol, unknown> & { _handle?: StreamHandle | null };

let symbols: ReadSymbols | null | undefined;

/** Finds the symbols `onread` sets by setting it on a probe socket and checking where it landed. */
function readSymbols(): ReadSymbols | null {
  if (symbols !== undefined) return symbols;
  symbols = null;
  try {
    const buffer = Buffer.alloc(1);
    const callback = (): boolean => true;
    const probe = new Socket({ onread: { buffer, callback } }) as unknown as SocketFields;
    const byName = new Map(Object.getOwnPropertySymbols(probe).map((s) => [s.description, s]));
    const b = byName.get('kBuffer');
    const c = byName.get('kBufferCb');
    const g = byName.get('kBufferGen');
    if (b && c && g && probe[b] === buffer && probe[c] === callback && probe[g] === null) symbols = { buffer: b, callback: c, generator: g };
    (probe as unknown as Socket).destroy();
  } catch {
    symbols = null;
  }
  return symbols;
}

/** A read buffer starts small (an idle connection holds little) and grows when reads fill it. */
const MIN_READ_BYTES = 4 * 1024; // 4 KiB
const DEFAULT_MAX_READ_BYTES = 64 * 1024; // 64 KiB, what Node allocates per read on its own
/** Reads in a row that fit in MIN_READ_BYTES before a grown buffer is given back. */
const SHRINK_AFTER_READS = 16;

/**
 * Switches `socket` to reading into a reused buffer handed to `callback`. Bytes Node had already
 * read into the socket's Readable buffer stay there: take them with `socket.read()` before resuming.
 * `maxReadBytes`: the size a buffer grows to when reads fill it.
 */
export function readIntoUserBuffer(socket: Socket, callback: UserBufferCallback, maxReadBytes = DEFAULT_MAX_READ_BYTES): UserBufferReader | undefined {
  if (isTlsSocket(socket) || socket.connecting || socket.destroyed) return undefined;
  const k = readSymbols();
  const fields = socket as unknown as SocketFields;
  const handle = fields._handle;
  if (!k || !handle || typeof handle.useUserBuffer !== 'function' || fields[k.buffer] !== null) return undefined;
  let size = MIN_READ_BYTES;
  let smallReads = 0;
  // Node calls the generator right after the callback and reads into what it returns; it is set
  // only when the buffer must be replaced, so ordinary reads pay nothing for it.
  const next = (): Buffer => {
    fields[k.generator] = null;
    return Buffer.allocUnsafeSlow(size);
  };
  const onRead = (nread: number, buffer: Buffer): boolean => {
    if (nread === buffer.length) {
      if (size < maxReadBytes) {
        size = maxReadBytes;
        fields[k.generator] = next;
      }
      smallReads = 0;
    } else if (size > MIN_READ_BYTES) {
      if (nread > MIN_READ_BYTES) smallReads = 0;
      else if (++smallReads >= SHRINK_AFTER_READS) {
        size = MIN_READ_BYTES;
        smallReads = 0;
        fields[k.generator] = next;
      }
    }
    return runAsRead(callback, nread, buffer);
  };
  const buffer = Buffer.allocUnsafeSlow(size);
  fields[k.buffer] = buffer;
  fields[k.callback] = onRead;
  fields[k.generator] = null;
  handle.useUserBuffer(buffer);
  return {
    renew: () => {
      fields[k.generator] = next;
    },
    release: () => {
      fields[k.buffer] = fields[k.callback] = fields[k.generator] = null;
    },
  };
}
