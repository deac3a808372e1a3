// The response side of an HTTP/1.1 upgrade request, written by hand on the raw socket Node hands over
// ('upgrade' event): a 101 head then the tunnel, or an ordinary response followed by close.

import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { HeaderMap } from './headers.ts';
import type { ResponseEncoder } from './codec.ts';
import { httpDate } from './codec-http1-encoder.ts';

function head(headers: HeaderMap, status: number, extra: string): string {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  headers.forEach((k, v) => {
    if (k.charCodeAt(0) !== 58) s += `${k}: ${v.replace(/[\r\n]/g, '')}\r\n`;
  });
  if (!headers.has('date')) s += `date: ${httpDate()}\r\n`;
  return s + extra + '\r\n';
}

export class UpgradeResponseEncoder implements ResponseEncoder {
  readonly protocol = 'HTTP/1.1' as const;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  #sent = false;
  #chunked = false;
  #taken = false;
  onWritable: ((writable: boolean) => void) | undefined = undefined;

  constructor(socket: Duplex, head: Buffer) {
    this.#socket = socket;
    this.#head = head;
  }

  get headersSent(): boolean {
    return this.#sent;
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.#socket.destroyed) return;
    this.#sent = true;
    const status = Number(headers.get(':status'));
    if (status === 101) {
      this.#socket.write(head(headers, status, ''));
      return;
    }
    headers.set('connection', 'close');
    let extra = '';
    if (!endStream && !headers.has('content-length')) {
      this.#chunked = true;
      extra = 'transfer-encoding: chunked\r\n';
    } else if (endStream && !headers.has('content-length')) extra = 'content-length: 0\r\n';
    this.#socket.write(head(headers, status, extra));
    if (endStream) this.#socket.end();
  }

  encodeData(data: Buffer, endStream: boolean): boolean {
    const s = this.#socket;
    if (s.destroyed) return true;
    let ok = true;
    if (data.length > 0) {
      if (this.#chunked) s.write(data.length.toString(16) + '\r\n');
      ok = s.write(data);
      if (this.#chunked) s.write('\r\n');
    }
    if (endStream) {
      if (this.#chunked) s.write('0\r\n\r\n');
      s.end();
    }
    return ok;
  }

  encodeTrailers(_trailers: HeaderMap): void {
    if (this.#socket.destroyed) return;
    if (this.#chunked) this.#socket.write('0\r\n\r\n');
    this.#socket.end();
  }

  reset(_reason: string): void {
    this.#socket.destroy();
  }

  readDisable(disabled: boolean): void {
    if (disabled) this.#socket.pause();
  }

  closeConnectionAfter(): void {
    // Always closes after a non-101 response.
  }

  takeTunnel(): { socket: Duplex; head: Buffer } | undefined {
    if (this.#taken || this.#socket.destroyed) return undefined;
    this.#taken = true;
    return { socket: this.#socket, head: this.#head };
  }
}
