// One direction of a proxied TCP connection: bytes read from `src` (through the non-terminal
// network filters, if any) written to `dst`; a `dst` that stops taking bytes stops `src`'s reads
// until it drains; `src`'s FIN becomes `dst`'s. A plain socket is read into a reused buffer
// (user-buffer-read.ts), a TLS one through 'data' events; a plain one is written to its handle
// (direct-write.ts). Stats and StreamInfo are counted here.

import type { Socket } from 'node:net';
import type { StreamInfo } from '../http/stream-info.ts';
import { BufferedGauge, type TcpProxyStats } from './tcp-proxy-stats.ts';
import { readIntoUserBuffer, type UserBufferReader } from './user-buffer-read.ts';
import { directWriter, type DirectWriter } from './direct-write.ts';

const EMPTY = Buffer.alloc(0);

/** The filters of one direction folded into one call; the result may be empty (held). */
export type ChunkFilter = (chunk: Buffer, endStream: boolean) => Buffer;

export interface PumpOptions {
  /** 'downstream': downstream -> upstream (rx stats); 'upstream': upstream -> downstream (tx stats). */
  readonly from: 'downstream' | 'upstream';
  readonly src: Socket;
  readonly dst: Socket;
  readonly stats: TcpProxyStats;
  readonly streamInfo: StreamInfo;
  readonly filter: ChunkFilter | undefined;
  /** Stamp StreamInfo's per-byte timestamps (only access logs read them). */
  readonly stampTimes: boolean;
}

export class Pump {
  /** Reads so far: the idle timer's sign of activity. */
  reads = 0;
  readonly #o: PumpOptions;
  readonly #src: Socket;
  readonly #dst: Socket;
  readonly #rx: boolean;
  readonly #gauge: BufferedGauge;
  readonly #writer: DirectWriter;
  #reader: UserBufferReader | undefined;
  #paused = false;

  constructor(o: PumpOptions) {
    this.#o = o;
    this.#src = o.src;
    this.#dst = o.dst;
    this.#rx = o.from === 'downstream';
    this.#gauge = new BufferedGauge(this.#rx ? o.stats.downstreamCxRxBytesBuffered : o.stats.downstreamCxTxBytesBuffered);
    this.#writer = directWriter(o.dst);
  }

  /** Bytes written to `dst` and not yet taken by the kernel (Node's buffer and libuv's queue). */
  get queued(): number {
    const dst = this.#dst;
    return dst.destroyed ? 0 : dst.writableLength + this.#writer.pending;
  }

  /** Starts moving bytes: what Node already buffered first, then new reads. */
  start(): void {
    const src = this.#src;
    this.#dst.on('drain', this.#onDrain);
    src.on('end', this.#onEnd);
    this.#reader = readIntoUserBuffer(src, this.#onUserRead);
    if (this.#reader) {
      // Bytes read before the switch (listener filters' peek, a server's first bytes while connecting).
      for (let chunk: Buffer | null = src.read() as Buffer | null; chunk !== null; chunk = src.read() as Buffer | null) this.#forward(chunk, true);
      if (this.#paused) src.pause();
      else src.resume();
    } else {
      src.on('data', this.#onData);
      if (!this.#paused) src.resume();
    }
  }

  /** Re-reads the dst's write buffer into the gauge (close, flush). */
  updateGauge(): void {
    this.#gauge.update(this.queued);
  }

  readonly #onUserRead = (nread: number, buffer: Buffer): boolean => this.#forward(nread === buffer.length ? buffer : buffer.subarray(0, nread), false);

  readonly #onData = (chunk: Buffer): void => {
    if (!this.#forward(chunk, true)) this.#src.pause();
  };

  /** Sends one read on; false when `src` must stop reading. `owned`: the chunk is ours to keep (not the reused buffer). */
  #forward(chunk: Buffer, owned: boolean): boolean {
    const o = this.#o;
    const dst = this.#dst;
    this.reads++;
    if (this.#rx) {
      o.stats.downstreamCxRxBytesTotal.inc(chunk.length);
      o.streamInfo.bytesReceived += chunk.length;
    } else if (o.streamInfo.firstUpstreamRxMono === undefined) o.streamInfo.firstUpstreamRxMono = performance.now();
    if (dst.destroyed || dst.writableEnded) return true;
    if (o.filter) {
      // Filters may hold on to what they are given (a Wasm filter buffering): never the reused buffer.
      chunk = o.filter(owned ? chunk : Buffer.from(chunk), false);
      owned = true;
      if (chunk.length === 0) return true;
    }
    if (!this.#rx) {
      o.stats.downstreamCxTxBytesTotal.inc(chunk.length);
      o.streamInfo.bytesSent += chunk.length;
      if (o.stampTimes) o.streamInfo.lastDownstreamTxMono = performance.now();
    }
    const ok = this.#writer.write(chunk);
    // A write not done at once keeps a reference to the chunk: the next read needs a new buffer.
    const queued = dst.writableLength + this.#writer.pending;
    if (queued > 0 && !owned) this.#reader?.renew();
    this.#gauge.update(queued);
    if (ok) return true;
    this.#paused = true;
    if (this.#rx) o.stats.downstreamFlowControlPausedReadingTotal.inc();
    return false;
  }

  readonly #onDrain = (): void => {
    this.#gauge.update(this.queued);
    if (!this.#paused || this.#src.destroyed) return;
    this.#paused = false;
    this.#src.resume();
    if (this.#rx) this.#o.stats.downstreamFlowControlResumedReadingTotal.inc();
  };

  /** FIN from `src` -> FIN to `dst` (with what the filters still held); `src`'s peer keeps reading. */
  readonly #onEnd = (): void => {
    const dst = this.#dst;
    if (dst.destroyed) return;
    const rest = this.#o.filter ? this.#o.filter(EMPTY, true) : EMPTY;
    if (rest.length > 0 && !dst.writableEnded) {
      if (!this.#rx) {
        this.#o.stats.downstreamCxTxBytesTotal.inc(rest.length);
        this.#o.streamInfo.bytesSent += rest.length;
      }
      dst.end(rest);
    } else dst.end();
  };
}
