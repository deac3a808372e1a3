// The HTTP filter chain runner (Envoy's FilterManager): decoder filters in order, encoder filters in
// reverse, per-filter iteration state (Continue / StopSingle / StopAll), one buffer per direction,
// continue...() resuming at the next filter. Synchronous throughout: no await when every filter continues.
// Buffer overflow and watermarks are reported to the sink; a filter that throws is the caller's problem.

import { FilterDataStatus, FilterHeadersStatus, FilterTrailersStatus, type HttpFilter } from '../../filters/http/filter.ts';
import type { HeaderMap } from './headers.ts';
import { expose } from './body-lease.ts';

const CONTINUE = 0;
const STOP_SINGLE = 1;
const STOP_ALL = 2;
/** Internal data status: a stopped filter without a body hook; buffer with flow control, no 413. */
const WATERMARK = 100;

/** Where the chain ends and what it reports. */
export interface FilterChainSink {
  /** The encoder chain ran past its last filter: these go to the codec. */
  encodeHeaders(headers: HeaderMap, endStream: boolean): void;
  encodeData(data: Buffer, endStream: boolean): void;
  encodeTrailers(trailers: HeaderMap): void;
  /** A filter asked to buffer more than the limit (request: 413, response: 500). */
  bufferOverflow(decode: boolean): void;
  /** Flow-controlled buffering went above (true) or back below (false) the limit. */
  watermark(decode: boolean, above: boolean): void;
}

class Direction {
  readonly decode: boolean;
  readonly #n: number;
  /**
   * Per filter (iteration position): CONTINUE, STOP_SINGLE or STOP_ALL; and whether a STOP_ALL
   * resumes at that filter itself (StopAllIterationAndBuffer). Made at the first stop: most streams
   * never stop, and pay nothing for it.
   */
  state: number[] | undefined = undefined;
  fromCurrent: number[] | undefined = undefined;
  /** Filters whose headers hook has continued: iteration positions [0, headersPast). */
  headersPast = 0;
  headers: HeaderMap | undefined = undefined;
  trailers: HeaderMap | undefined = undefined;
  buffer: Buffer[] | undefined = undefined;
  bufferBytes = 0;
  watermarked = false;
  /**
   * The buffer holds data a filter asked to buffer (StopIterationAndBuffer, or behind a
   * StopAllIterationAndBuffer): what joins it, even the chunk the filter continues with, counts
   * against the limit as a 413/500, not as flow control (Envoy's buffered, non-streaming mode).
   */
  strict = false;
  /** End of stream seen from the source (codec for decode, terminal filter for encode). */
  complete = false;
  started = false;
  /** Bumped on abort: running loops notice and stop. */
  gen = 0;
  /** Position of the filter whose hook is running, and whether it asked to continue meanwhile. */
  inHook = -1;
  pendingContinue = false;
  /** Set by replaceBody() from inside a body hook: the body that filter has seen so far, rewritten. */
  replacement: Buffer | undefined = undefined;

  constructor(decode: boolean, n: number) {
    this.decode = decode;
    this.#n = n;
  }

  stateAt(k: number): number {
    const s = this.state;
    return s === undefined ? CONTINUE : s[k]!;
  }

  /** Records a stop (or, with CONTINUE, a resume) at position k. */
  setState(k: number, st: number, fromCurrent: boolean): void {
    if (this.state === undefined) {
      if (st === CONTINUE) return;
      this.state = new Array<number>(this.#n).fill(CONTINUE);
      this.fromCurrent = new Array<number>(this.#n).fill(0);
    }
    this.state[k] = st;
    this.fromCurrent![k] = fromCurrent ? 1 : 0;
  }

  reset(): void {
    this.state = this.fromCurrent = undefined;
    this.headersPast = 0;
    this.headers = this.trailers = this.buffer = undefined;
    this.bufferBytes = 0;
    this.strict = false;
    this.complete = this.started = false;
    this.inHook = -1;
    this.pendingContinue = false;
    this.gen++;
  }
}

export class FilterManager {
  readonly #filters: HttpFilter[];
  readonly #sink: FilterChainSink;
  readonly #limit: number;
  /** The request side's buffer limit: the connection's, unless a filter set its own (setDecoderBufferLimit). */
  #decodeLimit: number;
  readonly #dec: Direction;
  readonly #enc: Direction;
  #destroyed = false;

  constructor(filters: HttpFilter[], sink: FilterChainSink, bufferLimitBytes: number) {
    this.#filters = filters;
    this.#sink = sink;
    this.#limit = bufferLimitBytes;
    this.#decodeLimit = bufferLimitBytes;
    this.#dec = new Direction(true, filters.length);
    this.#enc = new Direction(false, filters.length);
  }

  get encodeStarted(): boolean {
    return this.#enc.started;
  }

  // ---- sources ----

  decodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const d = this.#dec;
    d.headers = headers;
    d.started = true;
    d.complete = endStream;
    this.#runHeaders(d, 0, endStream);
  }

  decodeData(data: Buffer, endStream: boolean): void {
    const d = this.#dec;
    if (endStream) d.complete = true;
    this.#runData(d, 0, data, endStream);
  }

  decodeTrailers(trailers: HeaderMap): void {
    const d = this.#dec;
    d.complete = true;
    d.trailers = trailers;
    this.#runTrailers(d, 0, trailers);
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    const e = this.#enc;
    e.headers = headers;
    e.started = true;
    e.complete = endStream;
    this.#runHeaders(e, 0, endStream);
  }

  encodeData(data: Buffer, endStream: boolean): void {
    const e = this.#enc;
    if (endStream) e.complete = true;
    this.#runData(e, 0, data, endStream);
  }

  encodeTrailers(trailers: HeaderMap): void {
    const e = this.#enc;
    e.complete = true;
    e.trailers = trailers;
    this.#runTrailers(e, 0, trailers);
  }

  /** Resumes the decode side at the filter (decode index) that stopped it. */
  continueDecoding(index: number): void {
    this.#continue(this.#dec, index);
  }

  /** Resumes the encode side; `index` is the filter's decode index (#continue maps it to its encode position). */
  continueEncoding(index: number): void {
    this.#continue(this.#enc, index);
  }

  /** Stops all further decoding (local reply sent, stream reset). */
  abortDecoding(): void {
    this.#dec.gen++;
    this.#dec.buffer = undefined;
  }

  /** Forgets the encode side so a local reply can start over. */
  resetEncoding(): void {
    this.#enc.reset();
  }

  /**
   * From inside onRequestBody/onResponseBody: replaces the body the running filter has seen so far
   * (what it had buffered and the current chunk) by `data`. Elsewhere it does nothing.
   */
  replaceBody(data: Buffer): boolean {
    const d = this.#dec.inHook >= 0 ? this.#dec : this.#enc.inHook >= 0 ? this.#enc : undefined;
    if (!d) return false;
    d.replacement = data;
    return true;
  }

  /**
   * Response data a filter produced (Envoy's injectEncodedDataToFilterChain): it goes on from the
   * filter after the one at decode `index`, in encode order, as if that filter had passed it on.
   */
  injectEncodedData(index: number, data: Buffer, endStream: boolean): void {
    if (this.#destroyed) return;
    this.#runData(this.#enc, this.#filters.length - index, data, endStream);
  }

  /** Envoy's setDecoderBufferLimit: how much of the request may be buffered from now on. */
  setDecoderBufferLimit(bytes: number): void {
    this.#decodeLimit = bytes;
  }

  bufferedRequestBody(): Buffer | undefined {
    const b = this.#dec.buffer;
    if (!b) return undefined;
    if (b.length !== 1) this.#dec.buffer = [Buffer.concat(b)];
    return this.#dec.buffer![0];
  }

  /** onDestroy() once per filter; the manager is inert afterwards. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#dec.gen++;
    this.#enc.gen++;
    for (const f of this.#filters) f.onDestroy?.();
  }

  // ---- iteration ----

  #at(d: Direction, k: number): HttpFilter {
    return this.#filters[d.decode ? k : this.#filters.length - 1 - k]!;
  }

  #afterStop(d: Direction, k: number): void {
    if (d.pendingContinue) {
      d.pendingContinue = false;
      this.#continue(d, this.#toIndex(d, k));
    }
  }

  #toIndex(d: Direction, k: number): number {
    return d.decode ? k : this.#filters.length - 1 - k;
  }

  #runHeaders(d: Direction, start: number, endStream: boolean): void {
    const gen = d.gen;
    const headers = d.headers!;
    const n = this.#filters.length;
    for (let k = start; k < n; k++) {
      const f = this.#at(d, k);
      const hook = d.decode ? f.onRequestHeaders : f.onResponseHeaders;
      let st: number = FilterHeadersStatus.Continue;
      if (hook) {
        d.inHook = k;
        st = hook.call(f, headers, endStream);
        d.inHook = -1;
        if (d.gen !== gen) return;
      }
      if (st === FilterHeadersStatus.Continue) {
        d.headersPast = k + 1;
        d.pendingContinue = false;
        continue;
      }
      d.setState(k, st === FilterHeadersStatus.StopIteration ? STOP_SINGLE : STOP_ALL, st === FilterHeadersStatus.StopAllIterationAndBuffer);
      this.#afterStop(d, k);
      return;
    }
    if (!d.decode) this.#sink.encodeHeaders(headers, endStream);
  }

  #runData(d: Direction, start: number, data: Buffer, endStream: boolean): void {
    const gen = d.gen;
    const n = this.#filters.length;
    for (let k = start; k < n; k++) {
      if (d.stateAt(k) === STOP_ALL) {
        this.#addBuffer(d, data, true);
        return;
      }
      const f = this.#at(d, k);
      const hook = d.decode ? f.onRequestBody : f.onResponseBody;
      let st: number;
      if (hook) {
        if (!d.decode) expose(); // the filter may keep the chunk: its read buffer cannot be reused
        d.inHook = k;
        st = hook.call(f, data, endStream);
        d.inHook = -1;
        if (d.gen !== gen) return;
        if (d.replacement !== undefined) {
          // The filter rewrote the body it had buffered plus this chunk: that is what goes on.
          data = d.replacement;
          d.replacement = undefined;
          d.buffer = undefined;
          d.bufferBytes = 0;
          d.strict = false;
        }
      } else st = d.stateAt(k) === CONTINUE ? FilterDataStatus.Continue : WATERMARK;
      if (st === FilterDataStatus.Continue) {
        d.pendingContinue = false;
        if (d.stateAt(k) !== CONTINUE) {
          this.#addBuffer(d, data, false);
          this.#continueAt(d, k);
          return;
        }
        continue;
      }
      d.setState(k, STOP_SINGLE, false);
      if (st === FilterDataStatus.StopIterationAndBuffer) this.#addBuffer(d, data, true);
      else if (st === WATERMARK) this.#addBuffer(d, data, false);
      this.#afterStop(d, k);
      return;
    }
    if (!d.decode) this.#sink.encodeData(data, endStream);
  }

  #runTrailers(d: Direction, start: number, trailers: HeaderMap): void {
    const gen = d.gen;
    const n = this.#filters.length;
    for (let k = start; k < n; k++) {
      if (d.stateAt(k) === STOP_ALL) return;
      const f = this.#at(d, k);
      const hook = d.decode ? f.onRequestTrailers : f.onResponseTrailers;
      let st: number;
      if (hook) {
        d.inHook = k;
        st = hook.call(f, trailers);
        d.inHook = -1;
        if (d.gen !== gen) return;
      } else st = d.stateAt(k) === CONTINUE ? FilterTrailersStatus.Continue : FilterTrailersStatus.StopIteration;
      if (st === FilterTrailersStatus.Continue) {
        d.pendingContinue = false;
        if (d.stateAt(k) !== CONTINUE) {
          this.#continueAt(d, k);
          return;
        }
        continue;
      }
      d.setState(k, STOP_SINGLE, false);
      this.#afterStop(d, k);
      return;
    }
    d.trailers = undefined;
    if (!d.decode) this.#sink.encodeTrailers(trailers);
  }

  #continue(d: Direction, index: number): void {
    if (this.#destroyed) return;
    const k = d.decode ? index : this.#filters.length - 1 - index;
    if (k < 0 || k >= this.#filters.length) return;
    if (d.inHook === k) {
      // Asked to continue from inside its own hook: honoured once the hook returns a stop status.
      d.pendingContinue = true;
      return;
    }
    this.#continueAt(d, k);
  }

  /** Envoy's commonContinue for the filter at iteration position k. */
  #continueAt(d: Direction, k: number): void {
    if (d.stateAt(k) === CONTINUE) return;
    const fromCurrent = d.fromCurrent![k] === 1;
    d.setState(k, CONTINUE, false);
    const gen = d.gen;
    if (k >= d.headersPast) {
      d.headersPast = k + 1;
      this.#runHeaders(d, k + 1, d.complete && d.buffer === undefined && d.trailers === undefined);
      if (d.gen !== gen) return;
    }
    const trailers = d.trailers;
    if (d.buffer !== undefined) {
      const data = this.#takeBuffer(d);
      this.#runData(d, fromCurrent ? k : k + 1, data, d.complete && trailers === undefined);
      if (d.gen !== gen) return;
    }
    if (trailers !== undefined) this.#runTrailers(d, fromCurrent ? k : k + 1, trailers);
  }

  #addBuffer(d: Direction, data: Buffer, strict: boolean): void {
    (d.buffer ??= []).push(data);
    d.bufferBytes += data.length;
    if (strict) d.strict = true;
    if (d.bufferBytes <= (d.decode ? this.#decodeLimit : this.#limit)) return;
    if (d.strict) {
      this.#sink.bufferOverflow(d.decode);
    } else if (!d.watermarked) {
      d.watermarked = true;
      this.#sink.watermark(d.decode, true);
    }
  }

  #takeBuffer(d: Direction): Buffer {
    const b = d.buffer!;
    d.buffer = undefined;
    d.bufferBytes = 0;
    d.strict = false;
    if (d.watermarked) {
      d.watermarked = false;
      this.#sink.watermark(d.decode, false);
    }
    return b.length === 1 ? b[0]! : Buffer.concat(b);
  }
}
