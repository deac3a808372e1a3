import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { decodeJson } from '../../../src/config/decode.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { HeaderMap } from '../../../src/proxy/http/headers.ts';
import {
  compileHeaderMatcher,
  compileQueryParameterMatcher,
  compileRe2,
  compileRegexSubstitution,
  compileStringMatcher,
  parseQueryFirst,
} from '../../../src/proxy/http/matchers.ts';
import type { StringMatcher__Output } from '../../../src/generated/envoy/type/matcher/v3/StringMatcher.ts';
import type { HeaderMatcher__Output } from '../../../src/generated/envoy/config/route/v3/HeaderMatcher.ts';
import type { QueryParameterMatcher__Output } from '../../../src/generated/envoy/config/route/v3/QueryParameterMatcher.ts';
import type { RegexMatchAndSubstitute__Output } from '../../../src/generated/envoy/type/matcher/v3/RegexMatchAndSubstitute.ts';

function decode<T>(type: string, y: string): T {
  const r = decodeJson<T>(type, parse(y));
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function sm(y: string): (v: string) => boolean {
  const r = compileStringMatcher(decode<StringMatcher__Output>('envoy.type.matcher.v3.StringMatcher', y), 'm');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

function hm(y: string): (h: HeaderMap) => boolean {
  const r = compileHeaderMatcher(decode<HeaderMatcher__Output>('envoy.config.route.v3.HeaderMatcher', y), 'h');
  if (!r.ok) throw new Error(formatErrors(r.errors));
  return r.value;
}

const H = (...pairs: [string, string][]) => HeaderMap.fromPairs(pairs);

test('RE2 translation: full match, named groups, \\A \\z, \\Q\\E, POSIX classes', () => {
  const full = (re: string, s: string) => {
    const r = compileRe2(re, 'full');
    assert.ok(r instanceof RegExp, `compile ${re}`);
    return r.test(s);
  };
  assert.equal(full('/api/.*', '/api/x'), true);
  assert.equal(full('/api', '/api/x'), false, 'full match, not search');
  assert.equal(full('a|b', 'ab'), false, 'alternation is grouped before anchoring');
  assert.equal(full('a|b', 'b'), true);
  assert.equal(full('(?P<v>v[0-9]+)/x', 'v12/x'), true);
  assert.equal(full('\\Afoo\\z', 'foo'), true);
  assert.equal(full('\\Qa.b\\E', 'a.b'), true);
  assert.equal(full('\\Qa.b\\E', 'axb'), false);
  assert.equal(full('[[:digit:]]+', '123'), true);
  assert.equal(full('[[:alpha:]_]+', 'ab_c'), true);
  assert.equal(full('(?i)abc', 'ABC'), true);
  assert.equal(full('\\pL+', 'héllo'), true);
  assert.equal(full('/a/b', '/a/b'), true);
  assert.equal(full('[\\-a]+', '-a'), true);
  for (const bad of ['(a)\\1', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(', 'x{2,1}', '[[:nope:]]']) {
    const r = compileRe2(bad, 'full');
    assert.ok(!(r instanceof RegExp), `expected ${bad} to be rejected`);
  }
});

test('regex substitution: \\1 groups, literal $, keeps non-matching text', () => {
  const sub = (pattern: string, substitution: string) => {
    const m = { pattern: { regex: pattern, engine_type: undefined, google_re2: null }, substitution } as unknown as RegexMatchAndSubstitute__Output;
    const r = compileRegexSubstitution(m, 'x');
    assert.ok(r.ok);
    return r.value;
  };
  assert.equal(sub('^/service/([^/]+)(/.*)$', '\\2/instance/\\1').replaceAll('/service/foo/v1/api'), '/v1/api/instance/foo');
  assert.equal(sub('one', 'two').replaceAll('/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/two/zzz');
  assert.equal(sub('a', '$1').replaceAll('bab'), 'b$1b');
  assert.equal(sub('(b)', '[\\0]').replaceAll('abc'), 'a[b]c');
});

test('StringMatcher: each kind, ignore_case, and config errors', () => {
  assert.equal(sm('exact: Foo')('Foo'), true);
  assert.equal(sm('exact: Foo')('foo'), false);
  assert.equal(sm('{exact: Foo, ignore_case: true}')('fOO'), true);
  assert.equal(sm('prefix: /a')('/abc'), true);
  assert.equal(sm('{prefix: /A, ignore_case: true}')('/abc'), true);
  assert.equal(sm('suffix: .js')('app.js'), true);
  assert.equal(sm('{suffix: .JS, ignore_case: true}')('app.js'), true);
  assert.equal(sm('contains: mid')('amidst'), true);
  assert.equal(sm('{contains: MID, ignore_case: true}')('amidst'), true);
  assert.equal(sm('{contains: MID}')('amidst'), false);
  assert.equal(sm('safe_regex: {regex: "v[0-9]"}')('v1'), true);
  assert.equal(sm('safe_regex: {regex: "v[0-9]"}')('xv1'), false);
  const bad = compileStringMatcher(decode('envoy.type.matcher.v3.StringMatcher', 'safe_regex: {regex: "a(?=b)"}'), 'sm');
  assert.ok(!bad.ok && bad.errors[0]!.path === 'sm.safe_regex.regex', JSON.stringify(bad));
  const ic = compileStringMatcher({ safe_regex: { regex: 'a', engine_type: undefined, google_re2: null }, ignore_case: true, match_pattern: 'safe_regex' } as unknown as StringMatcher__Output, 'sm');
  assert.ok(!ic.ok && ic.errors[0]!.reason.includes('ignore_case'));
});

test('StringMatcher property: prefix/suffix/contains agree with a reference over random strings', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alpha = 'aAbB/-.';
  const str = (n: number) => Array.from({ length: n }, () => alpha[Math.floor(rnd() * alpha.length)]).join('');
  const deadline = Date.now() + 2000;
  for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
    const pat = str(1 + Math.floor(rnd() * 3));
    const v = str(Math.floor(rnd() * 8));
    const ic = rnd() < 0.5;
    const norm = (s: string) => (ic ? s.toLowerCase() : s);
    const q = JSON.stringify(pat);
    assert.equal(sm(`{prefix: ${q}, ignore_case: ${ic}}`)(v), norm(v).startsWith(norm(pat)));
    assert.equal(sm(`{suffix: ${q}, ignore_case: ${ic}}`)(v), norm(v).endsWith(norm(pat)));
    assert.equal(sm(`{contains: ${q}, ignore_case: ${ic}}`)(v), norm(v).includes(norm(pat)));
    assert.equal(sm(`{exact: ${q}, ignore_case: ${ic}}`)(v), norm(v) === norm(pat));
  }
});

test('HeaderMatcher: every specifier', () => {
  const h = H(['x-a', 'hello'], ['x-n', '42'], ['x-m', 'one'], ['x-m', 'two']);
  assert.equal(hm('{name: x-a, exact_match: hello}')(h), true);
  assert.equal(hm('{name: x-a, exact_match: Hello}')(h), false);
  assert.equal(hm('{name: X-A, prefix_match: he}')(h), true, 'header names are case-insensitive');
  assert.equal(hm('{name: x-a, suffix_match: llo}')(h), true);
  assert.equal(hm('{name: x-a, contains_match: ell}')(h), true);
  assert.equal(hm('{name: x-a, safe_regex_match: {regex: "h.*o"}}')(h), true);
  assert.equal(hm('{name: x-a, safe_regex_match: {regex: "h.*l"}}')(h), false, 'regex is a full match');
  assert.equal(hm('{name: x-n, range_match: {start: 40, end: 43}}')(h), true);
  assert.equal(hm('{name: x-n, range_match: {start: 40, end: 42}}')(h), false, 'end is exclusive');
  assert.equal(hm('{name: x-a, range_match: {start: 0, end: 100}}')(h), false, 'non-integer never in range');
  assert.equal(hm('{name: x-a, present_match: true}')(h), true);
  assert.equal(hm('{name: x-z, present_match: true}')(h), false);
  assert.equal(hm('{name: x-z, present_match: false}')(h), true);
  assert.equal(hm('{name: x-a, present_match: false}')(h), false);
  assert.equal(hm('{name: x-a}')(h), true, 'no specifier = presence');
  assert.equal(hm('{name: x-a, string_match: {exact: HELLO, ignore_case: true}}')(h), true);
  assert.equal(hm('{name: x-m, exact_match: "one,two"}')(h), true, 'repeated values join with ,');
});

test('HeaderMatcher: invert_match and treat_missing_header_as_empty', () => {
  const h = H(['x-a', 'hello']);
  assert.equal(hm('{name: x-a, exact_match: hello, invert_match: true}')(h), false);
  assert.equal(hm('{name: x-a, exact_match: bye, invert_match: true}')(h), true);
  // Missing header: the rule is ignored (no match) even inverted, except presence checks.
  assert.equal(hm('{name: x-z, exact_match: bye, invert_match: true}')(h), false);
  assert.equal(hm('{name: x-z, range_match: {start: 0, end: 10}, invert_match: true}')(h), false);
  assert.equal(hm('{name: x-z, range_match: {start: 0, end: 10}, invert_match: true, treat_missing_header_as_empty: true}')(h), true);
  assert.equal(hm('{name: x-z, present_match: true, invert_match: true}')(h), true);
  assert.equal(hm('{name: x-z, present_match: false, invert_match: true}')(h), false);
  assert.equal(hm('{name: x-a, present_match: true, invert_match: true}')(h), false);
  assert.equal(hm('{name: x-z, prefix_match: a}')(h), false);
  assert.equal(hm('{name: x-z, string_match: {exact: ""}, treat_missing_header_as_empty: true}')(h), true);
  assert.equal(hm('{name: x-z, string_match: {prefix: "a"}, treat_missing_header_as_empty: true}')(h), false);
  assert.equal(hm('{name: x-z, string_match: {prefix: "a"}, treat_missing_header_as_empty: true, invert_match: true}')(h), true);
});

test('query parameters: parse, string_match, present_match', () => {
  const q = parseQueryFirst('/p?a=1&b&a=2&c=x%20y#frag');
  assert.deepEqual([...q], [['a', '1'], ['b', ''], ['c', 'x%20y']]);
  const qm = (y: string) => {
    const r = compileQueryParameterMatcher(decode<QueryParameterMatcher__Output>('envoy.config.route.v3.QueryParameterMatcher', y), 'q');
    assert.ok(r.ok);
    return r.value;
  };
  assert.equal(qm('{name: a, string_match: {exact: "1"}}')(q), true);
  assert.equal(qm('{name: a, string_match: {exact: "2"}}')(q), false, 'first value wins');
  assert.equal(qm('{name: b, present_match: true}')(q), true);
  assert.equal(qm('{name: z, present_match: true}')(q), false);
  assert.equal(qm('{name: z, string_match: {exact: ""}}')(q), false);
});
