// What a downstream codec (codec-http1.ts, codec-http2.ts, codec-upgrade.ts) offers one stream: the
// response side of the wire. Request events flow the other way, into ActiveStream's decode... methods.

import type { Duplex } from 'node:stream';
import type { HeaderMap } from './headers.ts';

export type DownstreamProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

export interface ResponseEncoder {
  readonly protocol: DownstreamProtocol;
  /** Response headers went to the wire (a local reply can no longer replace them). */
  readonly headersSent: boolean;
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  /** False when the downstream buffer is above its high watermark; `onWritable` fires on drain. */
  encodeData(data: Buffer, endStream: boolean): boolean;
  encodeTrailers(trailers: HeaderMap): void;
  /** Called once with true after encodeData returned false and the buffer drained. */
  onWritable: ((writable: boolean) => void) | undefined;
  /** HTTP/2 RST_STREAM; HTTP/1 closes the connection. */
  reset(reason: string): void;
  /** Stops (true) or resumes (false) reading the request body. */
  readDisable(disabled: boolean): void;
  /** HTTP/1.1 `Connection: close` on this response (drain, max requests). */
  closeConnectionAfter(): void;
  /** The raw connection for an upgrade (HTTP/1.1 only), with bytes read past the request head. */
  takeTunnel?(): { socket: Duplex; head: Buffer } | undefined;
  /**
   * The stream is over: drop every reference from the codec's objects back to it. node:http2
   * keeps a stream's objects alive across young-generation GCs long after the stream ends (see
   * H2ResponseEncoder), and whatever they reference survives with them.
   */
  release?(): void;
}
