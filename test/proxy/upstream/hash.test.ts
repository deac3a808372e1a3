import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xxHash64 } from '../../../src/proxy/upstream/hash.ts';

test('xxHash64 matches the reference vectors and Envoy HashUtil::xxHash64', () => {
  assert.equal(xxHash64(''), 0xef46db3751d8e999n);
  assert.equal(xxHash64('a'), 0xd24ec4f1a98c6e5bn);
  assert.equal(xxHash64('abc'), 0x44bc2cf5ad770999n);
  assert.equal(xxHash64('foo'), 3728699739546630719n); // envoy test/common/common/hash_test.cc
});

test('xxHash64 hashes strings as UTF-8 bytes and honours the seed, long inputs included', () => {
  const s = 'the quick brown fox jumps over the lazy dog, again and again';
  assert.equal(xxHash64(s), xxHash64(new TextEncoder().encode(s)));
  assert.notEqual(xxHash64(s, 1n), xxHash64(s));
  assert.equal(xxHash64('é'), xxHash64(Uint8Array.of(0xc3, 0xa9)));
  for (const x of [xxHash64(s), xxHash64(s.repeat(5), 12345n)]) assert.ok(x >= 0n && x < 1n << 64n);
});
