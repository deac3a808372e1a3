// HTTP/2 keepalive (Envoy's Http2ProtocolOptions.connection_keepalive, either side): a PING every
// `interval` (plus up to `jitter` percent of it), counted from the last PING's ACK; a connection
// whose PING goes unanswered for `timeout` is aborted, and the timeout runs again from any frame
// received meanwhile (the peer is alive, only busy, as Envoy's doc says). A client may also send a
// PING ahead of a new stream when nothing was received for `idleInterval`. At most one PING is
// outstanding.

/** connection_keepalive, in milliseconds; 0: that kind of PING is not sent. */
export interface KeepaliveOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** interval_jitter, percent of the interval added at random to each (Envoy's default 15). */
  readonly jitterPercent: number;
  /** connection_idle_interval (client only). */
  readonly idleIntervalMs: number;
}

export interface KeepaliveHost {
  /** Queue a PING (not an ACK) with this opaque payload. */
  sendPing(payload: Buffer): void;
  /** No ACK, and nothing else received, for the timeout: abort the connection. */
  timedOut(): void;
}

export class Keepalive {
  readonly #o: KeepaliveOptions;
  readonly #host: KeepaliveHost;
  #intervalTimer: NodeJS.Timeout | undefined;
  #timeoutTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last read from the peer. */
  #lastRecv = performance.now();
  #stopped = false;

  constructor(o: KeepaliveOptions, host: KeepaliveHost) {
    this.#o = o;
    this.#host = host;
    this.#scheduleInterval();
  }

  /** Something was read from the peer. */
  received(): void {
    this.#lastRecv = performance.now();
  }

  /** A PING ACK: the outstanding PING is answered; the next interval starts. */
  acked(): void {
    if (this.#timeoutTimer === undefined) return; // unsolicited
    clearTimeout(this.#timeoutTimer);
    this.#timeoutTimer = undefined;
    this.#scheduleInterval();
  }

  /** A client is about to open a stream: a PING first when the connection has been quiet for connection_idle_interval. */
  beforeStream(): void {
    const idle = this.#o.idleIntervalMs;
    if (idle > 0 && performance.now() - this.#lastRecv > idle) this.#send();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#intervalTimer);
    clearTimeout(this.#timeoutTimer);
    this.#intervalTimer = this.#timeoutTimer = undefined;
  }

  #scheduleInterval(): void {
    const interval = this.#o.intervalMs;
    if (interval <= 0 || this.#stopped) return;
    const jitter = Math.floor((this.#o.jitterPercent * interval) / 100);
    clearTimeout(this.#intervalTimer);
    this.#intervalTimer = setTimeout(() => this.#send(), interval + (jitter > 0 ? Math.floor(Math.random() * jitter) : 0));
    this.#intervalTimer.unref();
  }

  #send(): void {
    if (this.#timeoutTimer !== undefined || this.#stopped) return; // one PING at a time
    const payload = Buffer.allocUnsafe(8);
    payload.writeBigUInt64BE(BigInt(Date.now()));
    this.#host.sendPing(payload);
    this.#armTimeout(this.#o.timeoutMs, performance.now());
  }

  /** The timeout `ms` from `from`; when it fires, reads since `from` move it on. */
  #armTimeout(ms: number, from: number): void {
    this.#timeoutTimer = setTimeout(() => {
      const since = this.#lastRecv;
      if (since > from) return this.#armTimeout(this.#o.timeoutMs - (performance.now() - since), since);
      this.#timeoutTimer = undefined;
      this.stop();
      this.#host.timedOut();
    }, Math.max(1, ms));
    this.#timeoutTimer.unref();
  }
}
