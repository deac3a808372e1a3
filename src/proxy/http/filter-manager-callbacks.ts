// HttpFilterCallbacks for one filter of one stream: a thin view that knows the filter's position,
// so continueDecoding()/continueEncoding() resume after the right filter (Envoy's per-filter callbacks).

import type { Duplex } from 'node:stream';
import type { HttpFilter, HttpFilterCallbacks, LocalReplyOptions } from '../../filters/http/filter.ts';
import type { HeaderMap } from './headers.ts';
import type { RouteEntry } from './route-types.ts';
import type { StreamInfo } from './stream-info.ts';
import type { ActiveStream } from './connection-manager-stream.ts';
import type { RuntimeFilter } from './connection-manager-types.ts';

/** One stream's instances of `chain`'s filters, each with its own callbacks. */
export function createFilters(stream: ActiveStream, chain: readonly RuntimeFilter[]): HttpFilter[] {
  const filters: HttpFilter[] = new Array(chain.length);
  for (let i = 0; i < chain.length; i++) filters[i] = chain[i]!.factory.create(chain[i]!.config, new FilterCallbacks(stream, i));
  return filters;
}

export class FilterCallbacks implements HttpFilterCallbacks {
  readonly #s: ActiveStream;
  readonly #i: number;

  constructor(stream: ActiveStream, index: number) {
    this.#s = stream;
    this.#i = index;
  }

  get streamInfo(): StreamInfo {
    return this.#s.info;
  }
  get statPrefix(): string {
    return this.#s.statPrefix;
  }
  get upgrade(): string | undefined {
    return this.#s.upgrade;
  }
  get bufferLimitBytes(): number {
    return this.#s.bufferLimitBytes;
  }
  route(): RouteEntry | undefined {
    return this.#s.route();
  }
  clearRouteCache(): void {
    this.#s.clearRouteCache();
  }
  continueDecoding(): void {
    this.#s.continueDecoding(this.#i);
  }
  continueEncoding(): void {
    this.#s.continueEncoding(this.#i);
  }
  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void {
    this.#s.sendLocalReply(status, body, opts);
  }
  encodeHeaders(headers: HeaderMap, endStream: boolean): void {
    this.#s.encodeHeaders(headers, endStream);
  }
  encodeData(data: Buffer, endStream: boolean): void {
    this.#s.encodeData(data, endStream);
  }
  encodeTrailers(trailers: HeaderMap): void {
    this.#s.encodeTrailers(trailers);
  }
  setDecoderReadable(readable: boolean): void {
    this.#s.setDecoderReadable(readable);
  }
  onDownstreamWritable(handler: (writable: boolean) => void): void {
    this.#s.onDownstreamWritable(handler);
  }
  resetStream(reason: string): void {
    this.#s.resetStream(reason);
  }
  upgradeToTunnel(responseHeaders: HeaderMap, upstream: Duplex, upstreamHead: Buffer): void {
    this.#s.upgradeToTunnel(responseHeaders, upstream, upstreamHead);
  }
  setDecoderBufferLimit(bytes: number): void {
    this.#s.setDecoderBufferLimit(bytes);
  }
  injectEncodedData(data: Buffer, endStream: boolean): void {
    this.#s.injectEncodedData(this.#i, data, endStream);
  }
  bufferedRequestBody(): Buffer | undefined {
    return this.#s.bufferedRequestBody();
  }
  replaceBody(data: Buffer): boolean {
    return this.#s.replaceBody?.(data) ?? false;
  }
}
