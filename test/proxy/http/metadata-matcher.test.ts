// MetadataMatcher over dynamic metadata, each ValueMatcher kind, and %DYNAMIC_METADATA% in formats.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMetadataMatcher } from '../../../src/proxy/http/metadata-matcher.ts';
import { setDynamicMetadata } from '../../../src/proxy/http/dynamic-metadata.ts';
import { newStreamInfo } from '../../../src/proxy/http/stream-info.ts';
import { compileFormatter } from '../../../src/proxy/http/formatter.ts';
import type { ConfigError } from '../../../src/config/result.ts';
import type { MetadataMatcher__Output } from '../../../src/generated/envoy/type/matcher/v3/MetadataMatcher.ts';
import { decodeJson } from '../../../src/config/decode.ts';

const info = newStreamInfo({ downstreamRemote: { address: '127.0.0.1', port: 1 }, downstreamLocal: { address: '127.0.0.1', port: 2 }, connectionId: 1 });
setDynamicMetadata(info, 'envoy.filters.http.jwt_authn', { jwt: { sub: 'alice', admin: true, level: 3, groups: ['dev', 'ops'], nothing: null } });
setDynamicMetadata(info, 'envoy.filters.http.jwt_authn', { other: 'kept alongside' });

function matcher(json: Record<string, unknown>): { test: (i: typeof info) => boolean; errors: ConfigError[] } {
  const d = decodeJson<MetadataMatcher__Output>('envoy.type.matcher.v3.MetadataMatcher', json, { path: 'm' });
  assert.ok(d.ok);
  const errors: ConfigError[] = [];
  return { test: compileMetadataMatcher(d.value, 'm', errors), errors };
}

const at = (key: string, value: Record<string, unknown>, invert = false): boolean => {
  const m = matcher({ filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'jwt' }, { key }], value, invert });
  assert.deepEqual(m.errors, []);
  return m.test(info);
};

test('each ValueMatcher kind against dynamic metadata; invert; absent paths', () => {
  assert.equal(at('sub', { string_match: { exact: 'alice' } }), true);
  assert.equal(at('sub', { string_match: { prefix: 'bob' } }), false);
  assert.equal(at('sub', { string_match: { exact: 'alice' } }, true), false, 'invert');
  assert.equal(at('admin', { bool_match: true }), true);
  assert.equal(at('level', { double_match: { exact: 3 } }), true);
  assert.equal(at('level', { double_match: { range: { start: 1, end: 3 } } }), false, 'the range excludes its end');
  assert.equal(at('groups', { list_match: { one_of: { string_match: { exact: 'ops' } } } }), true);
  assert.equal(at('nothing', { null_match: {} }), true);
  assert.equal(at('sub', { present_match: true }), true);
  assert.equal(at('missing', { present_match: true }), false);
  assert.equal(at('sub', { or_match: { value_matchers: [{ bool_match: true }, { string_match: { suffix: 'ice' } }] } }), true);
  assert.equal(matcher({ filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'other' }], value: { string_match: { exact: 'kept alongside' } } }).test(info), true, 'set twice: merged');
  assert.equal(matcher({ filter: 'no.such.filter', path: [{ key: 'x' }], value: { present_match: true } }).test(info), false);
});

test('%DYNAMIC_METADATA(namespace:key…)%: strings as they are, numbers, bools, objects as JSON, absent as -', () => {
  const f = compileFormatter('%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:sub)% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:level)% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:admin)% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:groups)% %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt:missing)%');
  assert.ok(f.ok);
  assert.equal(f.value.format(info), 'alice 3 true ["dev","ops"] -');
});
