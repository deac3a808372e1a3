// The header character tables against node:http's own checks (the regular expressions they replace
// on the hot path), for every character up to U+01FF, alone and inside otherwise valid strings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFieldValue, isToken } from '../../../src/proxy/http/http-chars.ts';
import { hasInvalidHeaderChar, isHttpToken } from '../../../src/proxy/http/http-parser.ts';

test('isToken and isFieldValue answer as node:http checkIsHttpToken and checkInvalidHeaderChar', () => {
  for (let c = 0; c <= 0x1ff; c++) {
    const ch = String.fromCharCode(c);
    for (const s of [ch, `x-${ch}`, `${ch}abc`, `ab${ch}cd`]) {
      assert.equal(isToken(s), isHttpToken(s), `token ${JSON.stringify(s)}`);
      assert.equal(isFieldValue(s), !hasInvalidHeaderChar(s), `value ${JSON.stringify(s)}`);
    }
  }
  assert.equal(isToken(''), false);
  assert.equal(isFieldValue(''), true);
});
