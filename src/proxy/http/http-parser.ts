// Node's own HTTP/1.1 parser (llhttp, the binding node:http uses, from `_http_common`): the same
// strictness (request smuggling, header overflow, invalid bytes) without node:http's per-request
// IncomingMessage/ServerResponse streams. Typed here, once, for the downstream codec and the
// upstream HTTP/1.1 connection.

import { createRequire } from 'node:module';

/** Callbacks by index, as node_http_parser.cc calls them. */
export interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes parsed, or an Error with `code` (`HPE_...`) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  finish(): number | ParseError | undefined;
  close(): void;
  free(): void;
  remove(): void;
  [index: number]: unknown;
}

export interface ParseError extends Error {
  readonly code: string;
  readonly bytesParsed: number;
  readonly reason?: string;
}

interface HttpParserClass {
  new (): HttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

interface HttpCommon {
  readonly HTTPParser: HttpParserClass;
  readonly methods: readonly string[];
  readonly _checkIsHttpToken: (s: string) => boolean;
  readonly _checkInvalidHeaderChar: (s: string) => boolean;
}

const common = createRequire(import.meta.url)('_http_common') as HttpCommon;

export const HTTPParser = common.HTTPParser;
/** llhttp's method table: kOnHeadersComplete passes an index into it. */
export const METHODS = common.methods;
/** A valid header name (RFC 9110 token), as node:http checks (http-chars.ts's isToken answers the same; a test holds them together). */
export const isHttpToken = common._checkIsHttpToken;
/** A header value with bytes node:http refuses to send (CR, LF, NUL, other controls); http-chars.ts's isFieldValue is its negation. */
export const hasInvalidHeaderChar = common._checkInvalidHeaderChar;

export function isParseError(r: unknown): r is ParseError {
  return r instanceof Error;
}

/**
 * Frees a parser whose connection has ended and clears its callbacks. The parser's native side
 * keeps its JavaScript object until a full GC, and young-generation GCs treat that reference as
 * strong: callbacks left on it keep the codec, the connection and its last stream alive with it,
 * and all of it is promoted (node:http's cleanParser clears them too). Measured with
 * `connection: close` load: 5.9 -> 3.8 KB promoted per connection, with the stray-bytes fix in
 * codec-http1-server.ts CPU per connection 813 -> 315 µs.
 */
export function releaseParser(p: HttpParser): void {
  p.free();
  p[HTTPParser.kOnHeaders] = null;
  p[HTTPParser.kOnHeadersComplete] = null;
  p[HTTPParser.kOnBody] = null;
  p[HTTPParser.kOnMessageBegin] = null;
  p[HTTPParser.kOnMessageComplete] = null;
}
