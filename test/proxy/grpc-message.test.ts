// src/proxy/grpc-message.ts: grpc-message's percent-encoding, both ways; decoding never throws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpcPercentDecode, grpcPercentEncode } from '../../src/proxy/grpc-message.ts';

test('encode: printable ASCII but % as is, the rest as UTF-8 %XX; decode reverses it', () => {
  assert.equal(grpcPercentEncode('upstream 100% down\n'), 'upstream 100%25 down%0A');
  assert.equal(grpcPercentEncode('größe'), 'gr%C3%B6%C3%9Fe');
  for (const s of ['', 'plain', '100% sure', 'größe ☃', 'a\r\nb\tc']) assert.equal(grpcPercentDecode(grpcPercentEncode(s)), s);
});

test('decode: a % not followed by two hex digits stays as it is, where decodeURIComponent throws', () => {
  assert.throws(() => decodeURIComponent('bad %zz and 100%'));
  assert.equal(grpcPercentDecode('bad %zz and 100%'), 'bad %zz and 100%');
  assert.equal(grpcPercentDecode('%4'), '%4');
  assert.equal(grpcPercentDecode('%41%4a%4A'), 'AJJ');
});
