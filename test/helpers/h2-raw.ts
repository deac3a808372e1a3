// A raw HTTP/2 client (or server) for protocol tests: frames built by hand on a 127.0.0.1 socket, header
// blocks as HPACK literals without indexing (raw strings), and every frame the server sends parsed
// back (HPACK left undecoded, except for what the tests read: the `:status` of a static index).

import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 } as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length >= 127) {
    const len: number[] = [];
    let v = b.length - 127;
    while (v >= 128) {
      len.push((v % 128) | 128);
      v = Math.floor(v / 128);
    }
    len.push(v);
    return Buffer.concat([Buffer.from([127, ...len]), b]);
  }
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** A header block of literals without indexing, new names, raw strings. */
export function block(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(headers.flatMap(([n, v]) => [Buffer.from([0]), hpackString(n), hpackString(v)]));
}

export const GET: readonly (readonly [string, string])[] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'a']];

export class RawH2 {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];

  /** `preface`: the peer's connection preface comes first (a raw server's connection), and is skipped. */
  private constructor(socket: net.Socket, preface = false) {
    this.socket = socket;
    let skip = preface ? PREFACE.length : 0;
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      if (skip > 0) {
        const n = Math.min(skip, this.#buf.length);
        this.#buf = this.#buf.subarray(n);
        skip -= n;
      }
      while (this.#buf.length >= 9) {
        const len = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + len) break;
        this.frames.push({ type: this.#buf[3]!, flags: this.#buf[4]!, id: this.#buf.readUInt32BE(5) & 0x7fffffff, payload: this.#buf.subarray(9, 9 + len) });
        this.#buf = this.#buf.subarray(9 + len);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  /** Connects, sends the preface and an empty SETTINGS (or `settings`; null: sends nothing). */
  static async connect(port: number, settings: Buffer | null = frame(T.SETTINGS, 0, 0)): Promise<RawH2> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const c = new RawH2(socket);
    if (settings) c.send(PREFACE, settings);
    return c;
  }

  /** A raw server on 127.0.0.1: each accepted connection (its preface skipped) answers with an empty SETTINGS and goes to `onConnection`. */
  static async server(onConnection: (c: RawH2) => void): Promise<{ port: number; close(): void }> {
    const server = net.createServer((socket) => {
      const c = new RawH2(socket, true);
      c.send(frame(T.SETTINGS, 0, 0));
      onConnection(c);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
  }

  send(...bufs: Buffer[]): void {
    this.socket.write(Buffer.concat(bufs));
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The first frame (from the start) matching `pred`, waiting up to `ms`. */
  async waitFor(pred: (f: Frame) => boolean, ms = 2000): Promise<Frame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f || this.closed || Date.now() > deadline) return f;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(ms = 2000): Promise<boolean> {
    await this.waitFor(() => false, ms);
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A GOAWAY frame's error code. */
export const goawayCode = (f: Frame): number => f.payload.readUInt32BE(4);
/** A RST_STREAM frame's error code. */
export const rstCode = (f: Frame): number => f.payload.readUInt32BE(0);
