// One stream of legate's HTTP/2 server codec (server-session.ts): its flow-control windows, what
// waits to be sent or delivered, and the sink its request events go to. The session owns every
// transition; the stream is state.

/** Where a stream's request events go (the response encoder in response-encoder.ts). */
export interface H2StreamSink {
  /** Request body bytes; `end` with the last (or an empty chunk). */
  data(chunk: Buffer, end: boolean): void;
  /** Request trailers (they end the request). */
  trailers(raw: string[]): void;
  /** The peer reset the stream, or the connection is gone, before the stream was over. */
  streamReset(reason: string): void;
  /** Data the session held back (windows, socket) has gone out: more may be sent. */
  writable(): void;
}

export class H2ServerStream {
  readonly id: number;
  sink: H2StreamSink | undefined;
  /** Bytes this side may still send (the peer's window for the stream). */
  sendWindow: number;
  /** Bytes the peer may still send before a WINDOW_UPDATE. */
  recvAvail: number;
  /** Bytes received and delivered but not yet given back with a WINDOW_UPDATE. */
  recvUnacked = 0;
  /** content-length of the request, or -1; `received` counts DATA payload against it. */
  readonly contentLength: number;
  received = 0;
  /** END_STREAM received (or trailers). */
  remoteEnded = false;
  /** END_STREAM sent or queued behind `queue`. */
  localEnded = false;
  headersSent = false;
  /**
   * The response's HEADERS frame while it is still queued with nothing after it for this stream
   * (valid while the session's write epoch is `headEpoch`): an empty end of body sets its END_STREAM.
   */
  headFrame: Buffer | undefined;
  headEpoch = -1;
  /** The header of the last DATA frame queued, while unwritten (`dataEpoch`): an empty end of body sets its END_STREAM. */
  lastData: Buffer | undefined;
  dataEpoch = -1;
  closed = false;
  /** readDisable: no WINDOW_UPDATE, request events held in `held`. */
  paused = false;
  held: (Buffer | string[])[] | undefined;
  /** Response bytes waiting for send window, and whether END_STREAM follows them. */
  queue: Buffer[] = [];
  queuedBytes = 0;
  queueEnd = false;
  /** Response trailers waiting behind `queue`. */
  trailers: Buffer | undefined;
  /** encodeData returned false: writable() is owed. */
  wantWritable = false;

  constructor(id: number, sendWindow: number, recvWindow: number, contentLength: number) {
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvAvail = recvWindow;
    this.contentLength = contentLength;
  }
}
