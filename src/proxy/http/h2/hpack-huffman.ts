// HPACK's Huffman code (RFC 7541 Appendix B), decoding only: legate's encoder sends raw strings.
// The code is canonical (codes are assigned in order of length, then symbol), so the 257 code
// lengths define it. They were read off nghttp2 (node:http2's client: the Huffman-coded length of
// a header value made of one byte repeated) for every byte a header value may hold, and checked
// against the RFC's table for the rest; test/proxy/http/h2/hpack.test.ts decodes what nghttp2
// encodes for every one of those bytes.

/** Code length in bits of each symbol, as chr(48 + bits): bytes 0-255, then EOS (256). */
const LENGTHS =
  '=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?56565666577666567655677777?;>=L' +
  'DFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN';

const EOS = 256;
const MAX_BITS = 30;
/** Symbols in code order; for each length, its first code, how many codes it has and where they start in SYMBOLS. */
const SYMBOLS = new Uint16Array(257);
const FIRST = new Int32Array(MAX_BITS + 1);
const COUNT = new Int32Array(MAX_BITS + 1);
const OFFSET = new Int32Array(MAX_BITS + 1);

(function build(): void {
  const order = Array.from({ length: 257 }, (_, s) => s).sort((a, b) => LENGTHS.charCodeAt(a) - LENGTHS.charCodeAt(b) || a - b);
  order.forEach((s, i) => {
    const len = LENGTHS.charCodeAt(s) - 48;
    if (COUNT[len] === 0) OFFSET[len] = i;
    COUNT[len]!++;
    SYMBOLS[i] = s;
  });
  let code = 0;
  for (let len = 1; len <= MAX_BITS; len++) {
    FIRST[len] = code;
    code = (code + COUNT[len]!) << 1;
  }
})();

let scratch = Buffer.allocUnsafe(256);

/**
 * The Huffman-coded string in `buf[start, end)` as a latin1 string; undefined when it is not a valid
 * coding (an EOS symbol, padding longer than 7 bits or not all ones).
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string | undefined {
  // The shortest code is 5 bits: at most 8/5 symbols per byte.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((b >> bit) & 1);
      len++;
      const idx = code - FIRST[len]!;
      if (idx >= 0 && idx < COUNT[len]!) {
        const sym = SYMBOLS[OFFSET[len]! + idx]!;
        if (sym === EOS) return undefined;
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len === MAX_BITS) return undefined;
    }
  }
  // Padding: the most significant bits of EOS (all ones), at most 7 of them.
  if (len > 7 || code !== (1 << len) - 1) return undefined;
  return out.toString('latin1', 0, n);
}
