// The JavaScript head fast path against llhttp itself: every head the fast path accepts, among the
// common ones, hand-picked edge cases and every one-byte substitution, insertion and deletion of
// them, must be one llhttp (Node's binding, strict) accepts and reads identically: method, URL,
// version, status, raw headers, keep-alive, no upgrade, where the message ends and its body length.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastRequestHead, fastResponseHead } from '../../../src/proxy/http/fast-head.ts';
import { HTTPParser, METHODS, isParseError } from '../../../src/proxy/http/http-parser.ts';

const MAX = 16 * 1024;

interface Read {
  error?: string;
  method?: string;
  url?: string;
  minor?: number;
  status?: number;
  raw: string[];
  keepAlive?: boolean;
  upgrade?: boolean;
  body: number;
  complete: boolean;
}

/** llhttp's reading of `data` (one message, parsing stops after it). */
function llhttp(type: 'request' | 'response', data: Buffer, maxHeaderSize = MAX): Read {
  const p = new HTTPParser();
  p.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, maxHeaderSize, HTTPParser.kLenientNone);
  const r: Read = { raw: [], body: 0, complete: false };
  p[HTTPParser.kOnHeaders] = (h: string[], url: string) => {
    r.raw.push(...h);
    if (url) r.url = (r.url ?? '') + url;
  };
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, minor: number, h: string[] | undefined, method: number, url: string | undefined, status: number, _sm: string, upgrade: boolean, keepAlive: boolean) => {
    if (h) r.raw.push(...h);
    r.minor = minor;
    if (type === 'request') {
      r.method = METHODS[method];
      r.url = (r.url ?? '') + (url ?? '');
    } else r.status = status;
    r.upgrade = upgrade;
    r.keepAlive = keepAlive;
    return 0;
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    r.body += b.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {
    r.complete = true;
  };
  const out = p.execute(data);
  if (isParseError(out)) r.error = out.code;
  return r;
}

/** llhttp's raw headers with the names lowercased, as the fast heads give them. */
function lowerNames(raw: readonly string[]): string[] {
  return raw.map((s, i) => (i % 2 === 0 ? s.toLowerCase() : s));
}

function checkRequest(data: Buffer): boolean {
  const fast = fastRequestHead(data, 0, MAX);
  if (!fast) return false;
  const ll = llhttp('request', data.subarray(0, fast.end));
  const what = JSON.stringify(data.toString('latin1'));
  assert.equal(ll.error, undefined, `llhttp refused a head the fast path took: ${what}`);
  assert.ok(ll.complete, `llhttp saw no complete bodyless message: ${what}`);
  assert.deepEqual(
    { method: METHODS[fast.method], url: fast.url, minor: fast.versionMinor, raw: fast.rawHeaders, keepAlive: fast.keepAlive, upgrade: false },
    { method: ll.method, url: ll.url, minor: ll.minor, raw: lowerNames(ll.raw), keepAlive: ll.keepAlive, upgrade: ll.upgrade },
    what,
  );
  return true;
}

function checkResponse(data: Buffer): boolean {
  const fast = fastResponseHead(data, 0, MAX);
  if (!fast) return false;
  // The head and exactly its body: llhttp must end the message there.
  const ll = llhttp('response', Buffer.concat([data.subarray(0, fast.end), Buffer.alloc(fast.contentLength, 0x61)]));
  const what = JSON.stringify(data.toString('latin1'));
  assert.equal(ll.error, undefined, `llhttp refused a head the fast path took: ${what}`);
  assert.ok(ll.complete, `llhttp did not end the message after content-length bytes: ${what}`);
  assert.deepEqual(
    { status: fast.status, minor: fast.versionMinor, raw: fast.rawHeaders, keepAlive: fast.keepAlive, upgrade: false, body: fast.contentLength },
    { status: ll.status, minor: ll.minor, raw: lowerNames(ll.raw), keepAlive: ll.keepAlive, upgrade: ll.upgrade, body: ll.body },
    what,
  );
  return true;
}

const REQUESTS = [
  'GET /12 HTTP/1.1\r\nhost: 127.0.0.1:10000\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n',
  'GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\r\n',
  'HEAD /x HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n',
  'DELETE /r HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  'OPTIONS /o HTTP/1.1\r\nHost: a\r\nx-empty:\r\nx-tab:\tv\r\nx-obs: caf\xe9\r\n\r\n',
  'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n',
];
const RESPONSES = [
  'HTTP/1.1 200 OK\r\ncontent-length: 12\r\nDate: Tue, 01 Dec 2026 10:20:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n',
  'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n',
  'HTTP/1.0 404 Not Found\r\nContent-Length: 5\r\n\r\n',
  'HTTP/1.1 302 \r\nLocation: /x\r\nContent-Length: 00\r\nSet-Cookie: a=b\r\nSet-Cookie: c=d\r\n\r\n',
  'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nx-r\xe9: no\r\n\r\n',
];

test('fast path: the common heads are taken, and read as llhttp reads them', () => {
  for (const r of REQUESTS.slice(0, 6)) assert.ok(checkRequest(Buffer.from(r, 'latin1')), `not taken: ${JSON.stringify(r)}`);
  for (const r of RESPONSES.slice(0, 5)) assert.ok(checkResponse(Buffer.from(r, 'latin1')), `not taken: ${JSON.stringify(r)}`);
});

test('fast path: what it leaves to llhttp', () => {
  const leftReq = [
    'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', // a body
    'POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n',
    'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n',
    'GET / HTTP/1.1\r\nHost : a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a \r\n\r\n',
    'GET / HTTP/1.1\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a', // incomplete
    'GET / HTTP/2.0\r\nHost: a\r\n\r\n',
    '\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n',
    `GET / HTTP/1.1\r\nHost: a\r\nx-big: ${'a'.repeat(5000)}\r\n\r\n`,
  ];
  for (const r of leftReq) assert.equal(fastRequestHead(Buffer.from(r, 'latin1'), 0, MAX), undefined, JSON.stringify(r));
  const leftResp = [
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
    'HTTP/1.1 200 OK\r\n\r\n', // close-delimited
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n',
    'HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n',
  ];
  for (const r of leftResp) assert.equal(fastResponseHead(Buffer.from(r, 'latin1'), 0, MAX), undefined, JSON.stringify(r));
  // A head over the configured limit goes to llhttp, whose overflow error applies.
  const head = Buffer.from(REQUESTS[1]!, 'latin1');
  assert.equal(fastRequestHead(head, 0, head.length - 1), undefined);
  assert.ok(fastRequestHead(head, 0, head.length));
});

test('fast path: at an offset, with the next message after it', () => {
  const two = Buffer.from(`xx${REQUESTS[0]}${REQUESTS[1]}`, 'latin1');
  const a = fastRequestHead(two, 2, MAX)!;
  assert.equal(a.url, '/12');
  const b = fastRequestHead(two, a.end, MAX)!;
  assert.equal(b.end, two.length);
  assert.deepEqual(b.rawHeaders, ['host', 'example.com', 'user-agent', 'curl/8.0', 'accept', '*/*']);
});

test('fast path: names come lowercased, well-known or not', () => {
  const head = (name: string): string => fastRequestHead(Buffer.from(`GET / HTTP/1.1\r\n${name}: x\r\n\r\n`, 'latin1'), 0, MAX)!.rawHeaders[0]!;
  assert.equal(head('Content-Type'), 'content-type');
  assert.equal(head('X-Request-ID'), 'x-request-id');
  assert.equal(head('X-Custom-Thing'), 'x-custom-thing');
  // Token characters that differ from a known name's only in the 0x20 bit are not that name.
  assert.equal(head('hos^'), 'hos^');
  assert.equal(head('X~Request-ID'), 'x~request-id');
  assert.equal(head('date_'), 'date_');
});

/** Every one-byte substitution, insertion and deletion of `base`. */
function* mutations(base: Buffer): Generator<Buffer> {
  for (let i = 0; i < base.length; i++) {
    for (let b = 0; b < 256; b++) {
      if (b === base[i]) continue;
      const m = Buffer.from(base);
      m[i] = b;
      yield m;
      yield Buffer.concat([base.subarray(0, i), Buffer.from([b]), base.subarray(i)]);
    }
    yield Buffer.concat([base.subarray(0, i), base.subarray(i + 1)]);
  }
}

test('fast path: no one-byte mutation of a head is read differently from llhttp', () => {
  let taken = 0;
  let total = 0;
  for (const r of REQUESTS) {
    for (const m of mutations(Buffer.from(r, 'latin1'))) {
      total++;
      if (checkRequest(m)) taken++;
    }
  }
  for (const r of RESPONSES) {
    for (const m of mutations(Buffer.from(r, 'latin1'))) {
      total++;
      if (checkResponse(m)) taken++;
    }
  }
  // Most mutants are malformed or unusual (left to llhttp); the rest must have matched above.
  assert.ok(taken > 1000 && taken < total, `taken ${taken} of ${total}`);
});

test('fast path: seeded random multi-byte edits are read as llhttp reads them', () => {
  // A small LCG: the same cases every run.
  let seed = 0x2f6b1a3d;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const interesting = [0x20, 0x09, 0x0d, 0x0a, 0x3a, 0x2c, 0x00, 0x7f, 0x80, 0xa0, 0xff, 0x61, 0x30, 0x2d, 0x23, 0x3f, 0x2f];
  let taken = 0;
  for (let n = 0; n < 20000; n++) {
    const isReq = rand(2) === 0;
    const bases = isReq ? REQUESTS : RESPONSES;
    let m = Buffer.from(bases[rand(bases.length)]!, 'latin1');
    for (let edits = 1 + rand(3); edits > 0; edits--) {
      const i = rand(m.length);
      const b = interesting[rand(interesting.length)]!;
      const kind = rand(3);
      if (kind === 0) m[i] = b;
      else if (kind === 1) m = Buffer.concat([m.subarray(0, i), Buffer.from([b]), m.subarray(i)]);
      else m = Buffer.concat([m.subarray(0, i), m.subarray(i + 1)]);
    }
    if (isReq ? checkRequest(m) : checkResponse(m)) taken++;
  }
  assert.ok(taken > 500, `taken ${taken}`);
});
