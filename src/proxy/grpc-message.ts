// grpc-message's percent-encoding (gRPC over HTTP/2, "Responses"): UTF-8 bytes outside printable
// ASCII, and '%', as %XX. Decoding never throws: a '%' not followed by two hex digits is kept as
// it is, as the spec asks of receivers.

export function grpcPercentEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

export function grpcPercentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && HEX.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes).toString('utf8');
}
