// RFC 9110's character classes for header fields as byte tables. On the short strings of a header
// block, a loop over a table costs less than a regular expression call.

/** tchar (RFC 9110 §5.6.2): what a header name is made of. */
export const TOKEN_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_CHAR[c.charCodeAt(0)] = 1;

/** field-value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR, obs-text. */
export const FIELD_VALUE_CHAR = new Uint8Array(256);
FIELD_VALUE_CHAR[9] = 1;
for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) FIELD_VALUE_CHAR[c] = 1;

/** A non-empty token (node:http's checkIsHttpToken). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  // A char above 0xff reads undefined from the table.
  for (let i = 0; i < s.length; i++) if (TOKEN_CHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Only field-value bytes (node:http's checkInvalidHeaderChar, negated). */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (FIELD_VALUE_CHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}
