// A fast path in JavaScript for the common HTTP/1.1 message heads, before llhttp. Node's llhttp
// binding costs 6-10 µs a message on this machine, most of it in three C++ -> JS callbacks and a
// body copy, not in parsing; these functions read a plain head in about a fifth of that.
//
// They accept only a strict subset of what llhttp accepts, and read it the same way: a head that
// is whole in this read, at most FAST_HEAD_MAX_BYTES, with token header names, no obs-fold, no
// control bytes, no transfer-encoding, no upgrade, at most one all-digit content-length (requests:
// none, or "0"). Anything else answers undefined and the caller hands the same bytes to llhttp,
// which then accepts or rejects them with its own strictness. test/proxy/http/fast-head.test.ts
// checks every accepted head against llhttp's reading of it.

import { lowerName } from './headers.ts';
import { FIELD_VALUE_CHAR, TOKEN_CHAR } from './http-chars.ts';
import { METHODS } from './http-parser.ts';

/** Heads longer than this go to llhttp (its header-size limit and overflow error apply there). */
export const FAST_HEAD_MAX_BYTES = 4096;

export interface FastRequestHead {
  /** Index into llhttp's METHODS, as kOnHeadersComplete passes it. */
  readonly method: number;
  readonly url: string;
  readonly versionMinor: 0 | 1;
  /** [name, value, ...] in wire order, names lowercased, values without surrounding whitespace. */
  readonly rawHeaders: string[];
  readonly keepAlive: boolean;
  /** Offset just past the head's blank line. */
  readonly end: number;
}

export interface FastResponseHead {
  readonly status: number;
  readonly versionMinor: 0 | 1;
  readonly rawHeaders: string[];
  readonly keepAlive: boolean;
  readonly contentLength: number;
  readonly end: number;
}

/** Buffer's own latin1 decoder (what toString('latin1', ...) calls after its argument checks). */
type LatinSlice = Buffer & { latin1Slice(start: number, end: number): string };

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

// origin-form request-target bytes: visible ASCII but '#' (a fragment is llhttp's to split).
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) if (c !== 0x23) TARGET[c] = 1;

/**
 * Names common enough to be matched in place and handed out as these very strings: no slice and no
 * lowercased copy per message, and a Set or Map lookup of one finds its hash already computed.
 * Lowercase letters and '-' only (knownName relies on it).
 */
const KNOWN_NAMES = [
  'host', 'date', 'accept', 'server', 'connection', 'keep-alive', 'content-length', 'content-type', 'user-agent',
  'accept-encoding', 'accept-language', 'cache-control', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te',
  'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-envoy-expected-rq-timeout-ms', 'authorization',
  'cookie', 'set-cookie', 'etag', 'last-modified', 'vary', 'location', 'content-encoding', 'expect', 'via',
];
/** KNOWN_NAMES by length. */
const KNOWN_BY_LENGTH: (string[] | undefined)[] = [];
for (const n of KNOWN_NAMES) (KNOWN_BY_LENGTH[n.length] ??= []).push(n);

/** The KNOWN_NAMES entry spelled (in any case) by the `len` token characters at `start` of `s`. */
function knownName(s: string, start: number, len: number): string | undefined {
  const list = KNOWN_BY_LENGTH[len];
  if (list === undefined) return undefined;
  next: for (let k = 0; k < list.length; k++) {
    const name = list[k]!;
    // Among token characters, c | 0x20 equals a lowercase letter only for that letter in either
    // case, and equals '-' only for '-'.
    for (let j = 0; j < len; j++) if ((s.charCodeAt(start + j) | 0x20) !== name.charCodeAt(j)) continue next;
    return name;
  }
  return undefined;
}

/** Methods taken here (others, CONNECT above all, go to llhttp): name -> index in METHODS. */
const FAST_METHODS = new Map<string, number>();
for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
  const i = METHODS.indexOf(m);
  if (i >= 0) FAST_METHODS.set(m, i);
}

/** The end of the head (offset past CRLFCRLF) within `maxBytes` of `from`, or -1. */
function headEnd(data: Buffer, from: number, maxBytes: number): number {
  const limit = Math.min(data.length, from + Math.min(FAST_HEAD_MAX_BYTES, maxBytes));
  for (let i = from + 3; i < limit; i++) {
    if (data[i] === LF) {
      if (data[i - 1] !== CR) return -1; // a bare LF: llhttp's business
      if (data[i - 2] === LF && data[i - 3] === CR) return i + 1;
    }
  }
  return -1;
}

/** "HTTP/1.0" or "HTTP/1.1" at `i` in `s`: the minor version, or -1. */
function httpVersion(s: string, i: number): number {
  if (s.charCodeAt(i) !== 72 || s.charCodeAt(i + 1) !== 84 || s.charCodeAt(i + 2) !== 84 || s.charCodeAt(i + 3) !== 80) return -1; // HTTP
  if (s.charCodeAt(i + 4) !== 47 || s.charCodeAt(i + 5) !== 49 || s.charCodeAt(i + 6) !== 46) return -1; // "/1."
  const minor = s.charCodeAt(i + 7) - 48;
  return minor === 0 || minor === 1 ? minor : -1;
}

/** What the framing headers said; `ok` false sends the head to llhttp. */
interface Fields {
  ok: boolean;
  close: boolean;
  keepAlive: boolean;
  contentLength: number;
}

/** `connection` tokens: close / keep-alive, anything naming upgrade (or unusual) -> not ok. */
function connectionTokens(v: string, f: Fields): void {
  // The usual single token first: no split, no regex.
  const one = v.length === 10 || v.length === 5 ? lowerName(v) : '';
  if (one === 'keep-alive') f.keepAlive = true;
  else if (one === 'close') f.close = true;
  else for (const part of v.split(',')) {
    // Only SP and HTAB are whitespace here (String#trim would also take obs-text's NBSP).
    const t = part.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase();
    if (t === 'close') f.close = true;
    else if (t === 'keep-alive') f.keepAlive = true;
    else if (t === '' || t === 'upgrade' || !/^[a-z0-9-]+$/.test(t)) f.ok = false;
  }
}

/**
 * Header lines from `pos` (the start of the line after the start line) to `end` of `s` (the head
 * as a latin1 string, without the final CRLF): raw pairs into `raw`; framing into the result.
 */
function headerLines(s: string, pos: number, end: number, raw: string[]): Fields {
  const f: Fields = { ok: true, close: false, keepAlive: false, contentLength: -1 };
  while (pos < end) {
    // name: one or more tchar, then ':' (no whitespace before it).
    let i = pos;
    while (i < end && TOKEN_CHAR[s.charCodeAt(i)] === 1) i++;
    if (i === pos || s.charCodeAt(i) !== COLON) return { ...f, ok: false };
    const known = knownName(s, pos, i - pos);
    const name = known ?? lowerName(s.slice(pos, i));
    i++;
    while (s.charCodeAt(i) === SP || s.charCodeAt(i) === HTAB) i++;
    const vStart = i;
    let vEnd = i;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c === CR) break;
      if (FIELD_VALUE_CHAR[c] !== 1) return { ...f, ok: false };
      if (c !== SP && c !== HTAB) vEnd = i + 1;
    }
    // The value ends at a CR, which must be this line's CRLF (a bare CR is llhttp's to refuse).
    if (s.charCodeAt(i) !== CR || s.charCodeAt(i + 1) !== LF) return { ...f, ok: false };
    // Trailing whitespace before CRLF: llhttp keeps or drops it by version; leave it to llhttp.
    if (vEnd !== i) return { ...f, ok: false };
    const value = s.slice(vStart, vEnd);
    // The framing headers are all KNOWN_NAMES.
    if (known !== undefined) {
      if (known === 'content-length') {
        if (f.contentLength !== -1 || value.length === 0 || value.length > 15 || !/^[0-9]+$/.test(value)) return { ...f, ok: false };
        f.contentLength = Number(value);
      } else if (known === 'connection') {
        connectionTokens(value, f);
        if (!f.ok) return f;
      } else if (known === 'transfer-encoding' || known === 'proxy-connection' || known === 'upgrade') return { ...f, ok: false };
    }
    raw.push(name, value);
    pos = i + 2;
  }
  return f;
}

function keepAliveOf(minor: number, f: Fields): boolean {
  // llhttp_should_keep_alive: HTTP/1.1 unless "close", HTTP/1.0 only with "keep-alive" (even beside "close").
  return minor === 1 ? !f.close : f.keepAlive;
}

/**
 * A bodyless request head (no content-length, or "0"; no transfer-encoding) whole in `data` from
 * `from` and shorter than `maxHeaderSize` (so llhttp's overflow check could not have fired), read
 * as llhttp would; undefined sends the bytes to llhttp.
 */
export function fastRequestHead(data: Buffer, from: number, maxHeaderSize: number): FastRequestHead | undefined {
  const end = headEnd(data, from, maxHeaderSize);
  if (end < 0) return undefined;
  const s = (data as LatinSlice).latin1Slice(from, end - 2);
  // request-line = method SP origin-form SP HTTP-version CRLF
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0) return undefined;
  const method = FAST_METHODS.get(s.slice(0, sp1));
  if (method === undefined || s.charCodeAt(sp1 + 1) !== 47 /* '/' */) return undefined;
  let i = sp1 + 1;
  while (TARGET[s.charCodeAt(i)] === 1) i++;
  if (s.charCodeAt(i) !== SP) return undefined;
  const url = s.slice(sp1 + 1, i);
  const minor = httpVersion(s, i + 1);
  if (minor < 0 || s.charCodeAt(i + 9) !== CR || s.charCodeAt(i + 10) !== LF) return undefined;
  const raw: string[] = [];
  const f = headerLines(s, i + 11, s.length, raw);
  if (!f.ok || f.contentLength > 0) return undefined;
  return { method, url, versionMinor: minor as 0 | 1, rawHeaders: raw, keepAlive: keepAliveOf(minor, f), end };
}

/**
 * A response head with a content-length body (status 200-599 but 204 and 304; no
 * transfer-encoding, no upgrade) whole in `data` from `from` and shorter than `maxHeaderSize`,
 * read as llhttp would; undefined sends the bytes to llhttp. Not for responses to HEAD (the
 * caller knows).
 */
export function fastResponseHead(data: Buffer, from: number, maxHeaderSize: number): FastResponseHead | undefined {
  const end = headEnd(data, from, maxHeaderSize);
  if (end < 0) return undefined;
  const s = (data as LatinSlice).latin1Slice(from, end - 2);
  // status-line = HTTP-version SP 3DIGIT SP reason-phrase CRLF
  const minor = httpVersion(s, 0);
  if (minor < 0 || s.charCodeAt(8) !== SP || s.charCodeAt(12) !== SP) return undefined;
  const d0 = s.charCodeAt(9) - 48;
  const d1 = s.charCodeAt(10) - 48;
  const d2 = s.charCodeAt(11) - 48;
  if (d0 < 2 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return undefined;
  const status = d0 * 100 + d1 * 10 + d2;
  if (status === 204 || status === 304) return undefined;
  let i = 13;
  // reason-phrase: HTAB / SP / VCHAR / obs-text
  for (let c = s.charCodeAt(i); c !== CR; c = s.charCodeAt(++i)) if (FIELD_VALUE_CHAR[c] !== 1) return undefined;
  if (s.charCodeAt(i + 1) !== LF) return undefined;
  const raw: string[] = [];
  const f = headerLines(s, i + 2, s.length, raw);
  if (!f.ok || f.contentLength < 0) return undefined;
  return { status, versionMinor: minor as 0 | 1, rawHeaders: raw, keepAlive: keepAliveOf(minor, f), contentLength: f.contentLength, end };
}
