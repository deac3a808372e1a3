// gRPC-Web's body codings (the gRPC-Web protocol, "PROTOCOL-WEB.md"): base64 text bodies decoded
// in whole 4-byte groups as they arrive, gRPC frames cut out of a response body for text
// responses, and the trailers frame (flag 0x80) that carries grpc-status in the body.

import type { HeaderMap } from '../../../proxy/http/headers.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A base64 request body arriving in pieces: each push returns the bytes of the whole 4-character
 * groups so far (groups may end in padding: gRPC-Web clients encode each message on its own).
 */
export class Base64Decoder {
  #held = '';

  /** Decoded bytes, or undefined when the text is not base64. */
  push(chunk: Buffer): Buffer | undefined {
    const text = this.#held + chunk.toString('latin1');
    const whole = text.length - (text.length % 4);
    this.#held = text.slice(whole);
    const parts: Buffer[] = [];
    for (let i = 0; i < whole; i += 4) {
      const group = text.slice(i, i + 4);
      if (!BASE64.test(group)) return undefined;
      parts.push(Buffer.from(group, 'base64'));
    }
    return Buffer.concat(parts);
  }

  /** Characters left over that do not make a whole group (a bad request at the end of the body). */
  get pending(): number {
    return this.#held.length;
  }
}

/** Splits a gRPC message stream into whole frames (5-byte prefix + message), keeping partial ones. */
export class FrameSplitter {
  #held: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    let buf = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (buf.length >= 5) {
      const end = 5 + buf.readUInt32BE(1);
      if (buf.length < end) break;
      frames.push(buf.subarray(0, end));
      buf = buf.subarray(end);
    }
    this.#held = buf;
    return frames;
  }
}

/** The trailers frame: flag 0x80, a length, then `name:value\r\n` per trailer. */
export function trailersFrame(trailers: HeaderMap): Buffer {
  let text = '';
  trailers.forEach((name, value) => (text += `${name}:${value}\r\n`));
  const body = Buffer.from(text, 'latin1');
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}
