// What makes an HTTP/2 request malformed (RFC 9113 §8.1.1, §8.2, §8.3), checked as nghttp2 checks
// it for node:http2: a malformed request is reset with PROTOCOL_ERROR and never reaches a filter.

import { TOKEN_CHAR, isFieldValue, isToken } from '../http-chars.ts';

/** tchar without upper case (field names must be lower case in HTTP/2). */
const NAME_CHAR = TOKEN_CHAR.map((v, c) => (c >= 65 && c <= 90 ? 0 : v));

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function validName(n: string): boolean {
  if (n.length === 0) return false;
  for (let i = 0; i < n.length; i++) if (NAME_CHAR[n.charCodeAt(i)] !== 1) return false;
  return true;
}

/** No NUL, CR or LF, and no whitespace at either end (nghttp2's RFC 9113 check). */
function validValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  let c = v.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return false;
  c = v.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return false;
  for (let i = 0; i < n; i++) {
    c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0xff) return false;
  }
  return true;
}

/** A content-length value against the one seen before in the same list (-1: none): the length, or why it is refused. */
function contentLengthOf(v: string, seen: number): number | string {
  if (!/^[0-9]{1,15}$/.test(v)) return 'invalid content-length';
  const len = Number(v);
  return seen !== -1 && seen !== len ? 'conflicting content-length' : len;
}

export interface RequestCheck {
  /** Why the request is malformed, or undefined. */
  readonly error: string | undefined;
  /** The request's content-length, or -1. */
  readonly contentLength: number;
}

const PSEUDO_BITS: Readonly<Record<string, number>> = { ':method': 1, ':scheme': 2, ':path': 4, ':authority': 8, ':protocol': 16 };

/** Checks a request header list ([name, value, ...]); `connectProtocol`: SETTINGS_ENABLE_CONNECT_PROTOCOL was sent. */
export function checkRequest(raw: readonly string[], connectProtocol: boolean): RequestCheck {
  let seen = 0;
  let regular = false;
  let method = '';
  let contentLength = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    if (!validValue(v)) return bad(`invalid value for ${n}`);
    if (n.charCodeAt(0) === 58 /* ':' */) {
      const bit = PSEUDO_BITS[n];
      if (regular) return bad('pseudo-header after a regular header');
      if (bit === undefined || (bit === 16 && !connectProtocol)) return bad(`unknown pseudo-header ${n}`);
      if (seen & bit) return bad(`duplicate ${n}`);
      seen |= bit;
      if (bit === 1) method = v;
      else if (bit === 4 && v.length === 0) return bad('empty :path');
      continue;
    }
    regular = true;
    if (!validName(n)) return bad('invalid header name');
    if (CONNECTION_SPECIFIC.has(n)) return bad(`connection-specific header ${n}`);
    if (n === 'te' && v !== 'trailers') return bad('te other than trailers');
    if (n === 'content-length') {
      const len = contentLengthOf(v, contentLength);
      if (typeof len === 'string') return bad(len);
      contentLength = len;
    }
  }
  if (!(seen & 1)) return bad('missing :method');
  if (method === 'CONNECT' && !(seen & 16)) {
    if (seen !== (1 | 8)) return bad('CONNECT with :scheme or :path, or without :authority');
  } else {
    if ((seen & 6) !== 6) return bad('missing :scheme or :path');
    if (seen & 16 && method !== 'CONNECT') return bad(':protocol without CONNECT');
  }
  return { error: undefined, contentLength };
}

function bad(error: string): RequestCheck {
  return { error, contentLength: -1 };
}

/** Checks a trailer list: no pseudo-headers, valid names and values. Returns why it is malformed, or undefined. */
export function checkTrailers(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.charCodeAt(0) === 58) return 'pseudo-header in trailers';
    if (!validName(n)) return 'invalid trailer name';
    if (CONNECTION_SPECIFIC.has(n)) return `connection-specific trailer ${n}`;
    if (!validValue(raw[i + 1]!)) return `invalid value for ${n}`;
  }
  return undefined;
}

/**
 * Checks a response (or trailer) list as node:http2's respond() does: names HTTP tokens (a HeaderMap's
 * are lower case), values field-value characters, no connection-specific fields. `checkChars` false:
 * names and values were already checked (a HeaderMap from a strict parser, or checked as changed).
 */
export function checkResponse(raw: readonly string[], checkChars: boolean): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (CONNECTION_SPECIFIC.has(n)) return `connection-specific header ${n}`;
    if (!checkChars || n === ':status') continue;
    if (!isToken(n)) return 'invalid header name';
    if (!isFieldValue(raw[i + 1]!)) return `invalid value for ${n}`;
  }
  return undefined;
}

export interface ResponseHeadCheck {
  /** Why the response head is malformed, or undefined. */
  readonly error: string | undefined;
  readonly status: number;
  /** The response's content-length, or -1. */
  readonly contentLength: number;
}

/** Checks a response head from an upstream ([name, value, ...]) as nghttp2's client does: one valid `:status` first, no other pseudo-header. */
export function checkResponseHead(raw: readonly string[]): ResponseHeadCheck {
  let status = -1;
  let contentLength = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    if (!validValue(v)) return badHead(`invalid value for ${n}`);
    if (n === ':status') {
      if (i !== 0 || !/^[1-9][0-9]{2}$/.test(v)) return badHead(i !== 0 ? ':status not first' : 'invalid :status');
      status = Number(v);
      continue;
    }
    if (n.charCodeAt(0) === 58) return badHead(`pseudo-header ${n} in a response`);
    if (!validName(n)) return badHead('invalid header name');
    if (CONNECTION_SPECIFIC.has(n)) return badHead(`connection-specific header ${n}`);
    if (n === 'content-length') {
      const len = contentLengthOf(v, contentLength);
      if (typeof len === 'string') return badHead(len);
      contentLength = len;
    }
  }
  if (status < 0) return badHead('missing :status');
  return { error: undefined, status, contentLength };
}

function badHead(error: string): ResponseHeadCheck {
  return { error, status: 0, contentLength: -1 };
}
