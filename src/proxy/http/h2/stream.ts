// One stream of legate's HTTP/2 codec (session.ts), either side: its flow-control windows, what
// waits to be sent or delivered, and the sink its peer's events go to. The session owns every
// transition; the stream is state.

/** Where a stream's incoming events go (a request's on the server side, a response's on the client side). */
export interface H2StreamSink {
  /** Body bytes; `end` with the last (or an empty chunk). */
  data(chunk: Buffer, end: boolean): void;
  /** Trailers (they end the peer's side). */
  trailers(raw: string[]): void;
  /**
   * The peer reset the stream (`code`: its RST_STREAM code), this side did (`local`), or the
   * connection is gone (`code` undefined), before the stream was over.
   */
  streamReset(reason: string, code?: number, local?: boolean): void;
  /** Data the session held back (windows, socket) has gone out: more may be sent. */
  writable(): void;
}

export class H2Stream<Sink extends H2StreamSink = H2StreamSink> {
  /** The stream id; 0 while a client's stream waits for the connection's stream limit (client-session.ts). */
  id: number;
  sink: Sink | undefined;
  /** Bytes this side may still send (the peer's window for the stream). */
  sendWindow: number;
  /** Bytes the peer may still send before a WINDOW_UPDATE. */
  recvAvail: number;
  /** Bytes received and delivered but not yet given back with a WINDOW_UPDATE. */
  recvUnacked = 0;
  /** content-length of what the peer sends, or -1; `received` counts DATA payload against it. */
  contentLength: number;
  received = 0;
  /** END_STREAM received (or trailers). */
  remoteEnded = false;
  /** END_STREAM sent or queued behind `queue`. */
  localEnded = false;
  headersSent = false;
  /**
   * This side's HEADERS frame while it is still queued with nothing after it for this stream
   * (valid while the session's write epoch is `headEpoch`): an empty end of body sets its END_STREAM.
   */
  headFrame: Buffer | undefined;
  headEpoch = -1;
  /** The header of the last DATA frame queued, while unwritten (`dataEpoch`): an empty end of body sets its END_STREAM. */
  lastData: Buffer | undefined;
  dataEpoch = -1;
  closed = false;
  /** readDisable: no WINDOW_UPDATE, the peer's events held in `held`. */
  paused = false;
  held: (Buffer | string[])[] | undefined;
  /** Body bytes waiting for send window, and whether END_STREAM follows them. */
  queue: Buffer[] = [];
  queuedBytes = 0;
  queueEnd = false;
  /** Trailers waiting behind `queue`. */
  trailers: Buffer | undefined;
  /** sendData returned false: writable() is owed. */
  wantWritable = false;

  constructor(id: number, sendWindow: number, recvWindow: number, contentLength: number) {
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvAvail = recvWindow;
    this.contentLength = contentLength;
  }
}
