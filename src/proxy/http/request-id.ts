// x-request-id values: random (version 4) UUIDs, as Envoy's UUID request ID extension makes them.
// node:crypto's randomUUID builds each one from about twenty concatenated pieces (some 500 bytes of
// short-lived strings per request under load); here the 36 characters are written into one scratch
// buffer and read out as one string. The bytes come from the same CSPRNG, drawn in batches.

import { randomFillSync } from 'node:crypto';

/** UUIDs per randomFillSync call. */
const BATCH = 256;
const pool = Buffer.alloc(16 * BATCH);
let next = BATCH;

/** ASCII of each byte's two hex digits: [hi, lo] at 2 * byte. */
const HEX = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const s = b.toString(16).padStart(2, '0');
  HEX[2 * b] = s.charCodeAt(0);
  HEX[2 * b + 1] = s.charCodeAt(1);
}

/** Where each of the 16 bytes' two digits go in xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const out = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1') as Buffer & { latin1Slice(start: number, end: number): string };

/** A random version 4 UUID, lowercase, as crypto.randomUUID() gives. */
export function uuid4(): string {
  if (next === BATCH) {
    randomFillSync(pool);
    next = 0;
  }
  const o = 16 * next++;
  for (let i = 0; i < 16; i++) {
    let b = pool[o + i]!;
    if (i === 6) b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10
    const at = AT[i]!;
    out[at] = HEX[2 * b]!;
    out[at + 1] = HEX[2 * b + 1]!;
  }
  return out.latin1Slice(0, 36);
}
