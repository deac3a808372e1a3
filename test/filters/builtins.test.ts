// The built-in extensions' metadata table (src/filters/index.ts) against what each module
// registers, and the registry's lazy loading: a module is loaded when a config first names it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTINS, registerBuiltins } from '../../src/filters/index.ts';
import { ExtensionRegistry, type ExtensionMetadata, type ExtensionSpec } from '../../src/filters/registry.ts';

const metadataOf = (s: ExtensionMetadata): ExtensionMetadata => ({
  name: s.name,
  ...(s.aliases && { aliases: [...s.aliases] }),
  protoType: s.protoType,
  category: s.category,
  ...(s.terminal !== undefined && { terminal: s.terminal }),
  status: s.status,
  securityPosture: s.securityPosture,
});

test('every built-in module registers exactly the specs its metadata entry lists', () => {
  for (const b of BUILTINS) {
    const r = new ExtensionRegistry();
    b.load()(r);
    const got = r.list().map(metadataOf);
    assert.deepEqual(got, b.specs.map(metadataOf), `module of ${b.specs[0]?.name}`);
    for (const s of got) assert.equal(typeof r.find(s.category, s.protoType, undefined)?.parse, 'function', `${s.category}:${s.protoType} parses`);
  }
});

test('registerBuiltins finds every extension by type URL, name and alias through its module', () => {
  const r = new ExtensionRegistry();
  registerBuiltins(r);
  for (const b of BUILTINS) {
    for (const m of b.specs) {
      const byType = r.find(m.category, `type.googleapis.com/${m.protoType}`, undefined);
      assert.equal(byType?.protoType, m.protoType);
      assert.equal(typeof byType.factory, 'function');
      for (const n of [m.name, ...(m.aliases ?? [])]) assert.equal(r.find(m.category, undefined, n)?.name, m.name, `${m.category}:${n}`);
    }
  }
  assert.equal(r.find('http', 'type.googleapis.com/no.such.Filter', undefined), undefined);
  assert.equal(r.find('http', undefined, 'no.such.filter'), undefined);
});

const spec = (m: ExtensionMetadata): ExtensionSpec => ({ ...m, parse: () => ({ ok: true, value: m.name }), factory: () => m.protoType });
const a: ExtensionMetadata = { name: 'test.a', aliases: ['a'], protoType: 'test.A', category: 'http', status: 'alpha', securityPosture: 'unknown' };
const b: ExtensionMetadata = { name: 'test.b', protoType: 'test.B', category: 'network', status: 'alpha', securityPosture: 'unknown' };

test('a lazy module is loaded on the first find of any of its specs, once', () => {
  const r = new ExtensionRegistry();
  let loads = 0;
  let registers = 0;
  const register = (reg: ExtensionRegistry): void => {
    registers++;
    reg.register(spec(a));
    reg.register(spec(b));
  };
  const load = (): typeof register => (loads++, register);
  r.registerLazy(a, load);
  r.registerLazy(b, load);
  assert.deepEqual(r.list().map((s) => s.name), ['test.a', 'test.b'], 'listed without loading');
  assert.equal(loads, 0);
  assert.equal(r.find('network', 'test.B', undefined)?.factory(undefined, undefined as never), 'test.B');
  assert.equal(r.find('http', undefined, 'a')?.name, 'test.a');
  assert.equal(r.find('http', 'type.googleapis.com/test.A', undefined)?.name, 'test.a');
  assert.equal(registers, 1);
  assert.equal(loads, 1);
});

test('a module that does not register what its metadata said is an error naming the extension', () => {
  const r = new ExtensionRegistry();
  r.registerLazy(a, () => (reg) => reg.register(spec({ ...a, aliases: [] })));
  assert.equal(r.find('http', undefined, 'test.a')?.name, 'test.a');
  assert.throws(() => r.find('http', undefined, 'a'), /extension test\.a \(test\.A\): its module registered no http spec for http:a/);
});
