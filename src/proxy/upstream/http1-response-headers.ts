// What the upstream HTTP/1.1 connection reads from a response's raw headers ([name, value, ...] as
// received): the server's keep-alive hint and the content-length of a body the parser does not see.

/** The last keep-alive header value read and its hint: a server sends the same one every time. */
let lastKeepAlive = '';
let lastKeepAliveMs: number | undefined;

/** `keep-alive: timeout=N` in a response's raw headers, in ms; undefined without one. */
export function keepAliveHintMs(raw: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length !== 10 || k.toLowerCase() !== 'keep-alive') continue;
    const v = raw[i + 1]!;
    if (v === lastKeepAlive) {
      if (lastKeepAliveMs !== undefined) return lastKeepAliveMs;
      continue;
    }
    const m = /(?:^|[\s,])timeout\s*=\s*(\d+)/i.exec(v);
    lastKeepAlive = v;
    lastKeepAliveMs = m ? Number(m[1]) * 1000 : undefined;
    if (lastKeepAliveMs !== undefined) return lastKeepAliveMs;
  }
  return undefined;
}

/** The content-length of a response without transfer-encoding (llhttp has already refused conflicting ones); 0 otherwise. */
export function contentLengthBody(raw: readonly string[]): number {
  let len = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === 14 && k.toLowerCase() === 'content-length') len = Number(raw[i + 1]);
    else if (k.length === 17 && k.toLowerCase() === 'transfer-encoding') return 0;
  }
  return Number.isSafeInteger(len) && len > 0 ? len : 0;
}
