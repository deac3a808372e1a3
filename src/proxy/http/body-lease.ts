// Response bytes lent down the proxy path for one synchronous call, so the buffer they were read
// into can be read into again: the upstream HTTP/1.1 connection lends the body chunk it read into
// its reused read buffer; the HTTP/1.1 encoder gives it back when the downstream socket took every
// byte at once (no write queued in Node or libuv still points at it); a filter that sees response
// bodies makes the loan unreturnable (it may keep the chunk). Anything else that keeps the chunk
// simply never gives it back: the lender then reads into a fresh buffer, which is always safe.

let lent: Uint8Array | undefined;
let returned = false;

/** Starts a loan of `chunk` (it ends with settle()). */
export function lend(chunk: Uint8Array): void {
  lent = chunk;
  returned = false;
}

/** The writer is done with `chunk`: nothing it started still references its bytes. */
export function giveBack(chunk: Uint8Array): void {
  if (chunk === lent) returned = true;
}

/** Code that may keep response body chunks saw the one on loan: it can no longer be given back. */
export function expose(): void {
  lent = undefined;
  returned = false;
}

/** Ends the loan of `chunk`: true when it was given back and not exposed (its bytes may be overwritten). */
export function settle(chunk: Uint8Array): boolean {
  const ok = returned && lent === chunk;
  lent = undefined;
  returned = false;
  return ok;
}
