import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderMap, lowerName } from '../../../src/proxy/http/headers.ts';
import { inCidrs, parseCidr } from '../../../src/proxy/http/request-headers.ts';

test('lowerName: the same string when already lowercase, toLowerCase otherwise (ASCII and beyond)', () => {
  const name = 'x-forwarded-for';
  assert.equal(lowerName(name), name);
  assert.equal(lowerName('X-Forwarded-For'), 'x-forwarded-for');
  assert.equal(lowerName(':path'), ':path');
  assert.equal(lowerName('ÄBC'), 'äbc');
  assert.equal(lowerName('x-Ünïcode'), 'x-ünïcode');
  assert.equal(lowerName(''), '');
});

test('HeaderMap: lookups and mutations ignore the case of the name they are given', () => {
  const h = HeaderMap.fromFlat(['Host', 'a', 'X-Trace', '1', 'x-trace', '2', 'Accept', '*/*']);
  assert.equal(h.get('HOST'), 'a');
  assert.deepEqual(h.getAll('X-TRACE'), ['1', '2']);
  h.set('X-Trace', '3');
  assert.deepEqual(h.getAll('x-trace'), ['3']);
  h.remove('ACCEPT');
  assert.equal(h.has('accept'), false);
  assert.deepEqual([...h], [
    ['host', 'a'],
    ['x-trace', '3'],
  ]);
});

test('HeaderMap.hasPrefix: true when any name starts with the prefix, pseudo-headers included', () => {
  const h = HeaderMap.fromPairs([[':method', 'GET'], ['Accept', '*/*'], ['X-Envoy-Retry-On', '5xx']]);
  assert.equal(h.hasPrefix('x-envoy-'), true);
  assert.equal(h.hasPrefix(':'), true);
  assert.equal(h.hasPrefix('x-forwarded-'), false);
  h.remove('x-envoy-retry-on');
  assert.equal(h.hasPrefix('x-envoy-'), false);
});

test('HeaderMap.removeAll: every header named in the set, repeated ones too, order of the rest kept', () => {
  const h = HeaderMap.fromFlat(['connection', 'close', 'a', '1', 'keep-alive', 'x', 'b', '2', 'connection', 'te', 'c', '3']);
  h.removeAll(new Set(['connection', 'keep-alive']));
  assert.deepEqual([...h], [
    ['a', '1'],
    ['b', '2'],
    ['c', '3'],
  ]);
  h.removeAll(new Set());
  assert.equal(h.size, 3);
});

test('inCidrs: answers are remembered per CIDR list, never shared between lists', () => {
  const ten = [parseCidr('10.0.0.0', 8)!];
  const loop = [parseCidr('127.0.0.0', 8)!, parseCidr('::1', 128)!];
  for (let i = 0; i < 3; i++) {
    assert.equal(inCidrs('10.1.2.3', ten), true);
    assert.equal(inCidrs('10.1.2.3', loop), false);
    assert.equal(inCidrs('127.0.0.1', loop), true);
    assert.equal(inCidrs('::1', loop), true);
    assert.equal(inCidrs('::ffff:127.0.0.9', loop), true);
    assert.equal(inCidrs('not-an-ip', loop), false);
  }
  // Past the memo's bound it starts over, and still answers correctly.
  for (let i = 0; i < 5000; i++) assert.equal(inCidrs(`10.0.${(i >> 8) & 255}.${i & 255}`, ten), true);
  assert.equal(inCidrs('11.0.0.1', ten), false);
});

test('HeaderMap.validated: kept by addParsed and by valid set/add, lost for good by one bad name or value', () => {
  const h = new HeaderMap();
  assert.equal(h.validated, true);
  h.addParsed(':method', 'GET');
  h.addParsed('Host', 'example.com');
  h.add(':path', '/a b');
  h.set('x-request-id', '0b6f9a4e-6f3c-4d8e-9a8e-3f0b1c2d3e4f');
  h.add('x-obs-text', 'caf\u00e9\tok');
  assert.equal(h.validated, true, 'pseudo-header names are not tokens; HTAB and obs-text are field-value bytes');
  assert.equal(h.get('host'), 'example.com');

  for (const [name, value] of [['x-bad', 'a\u0001b'], ['x-bad', 'a\rb'], ['x-bad', 'a\u007fb'], ['bad name', 'v'], ['x-bad', 'caf\u0100']] as const) {
    const m = h.clone();
    m.set(name, value);
    assert.equal(m.validated, false, JSON.stringify([name, value]));
    const n = h.clone();
    n.add(name, value);
    assert.equal(n.validated, false, JSON.stringify([name, value]));
    // Taking the entry out again does not restore it: encoders then check the whole block.
    n.remove(name);
    assert.equal(n.validated, false);
    assert.equal(n.clone().validated, false, 'clone keeps it');
  }
  assert.equal(h.validated, true, 'clones are separate');
});
