// `legate wasm test`: every example plugin's cases.yaml passes; a wrong expectation fails with a
// message naming what differed (exit 1); a malformed cases file names the field (exit 2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/legate.ts';
import { examplePlugin } from '../helpers/wasm.ts';

const EXAMPLES = fileURLToPath(new URL('../../wasm-examples/', import.meta.url));

const PLUGINS = ['header-filter', 'auth-call', 'shared-counter', 'body-rewrite', 'tcp-counter'];

for (const name of PLUGINS) {
  test(`legate wasm test: ${name}'s cases pass`, async () => {
    const r = await runCli(['wasm', 'test', examplePlugin(name), join(EXAMPLES, name, 'cases.yaml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\n?\d+ passed, 0 failed\n$/);
    assert.doesNotMatch(r.stdout, /FAIL/);
  });

  test(`${name}'s example envoy.yaml validates (from the repository root, as its README runs it)`, async () => {
    examplePlugin(name);
    const r = await runCli(['--mode', 'validate', '-c', `wasm-examples/${name}/envoy.yaml`]);
    assert.equal(r.code, 0, r.stderr);
  });
}

test('legate wasm test: a wrong expectation fails naming the header, exit 1; a bad file names the field, exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-wasm-cases-'));
  const wrong = join(dir, 'wrong.yaml');
  writeFileSync(wrong, `plugin: { root_id: header_filter, configuration: demo }
cases:
  - name: expects another value
    request: { headers: { ":path": / } }
    expect: { request_headers: { x-wasm-request: other } }
`);
  const r = await runCli(['wasm', 'test', examplePlugin('header-filter'), wrong]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL expects another value\n {2}- request header x-wasm-request: expected 'other', got 'demo'\n0 passed, 1 failed\n/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'cases:\n  - name: no request\n');
  const b = await runCli(['wasm', 'test', examplePlugin('header-filter'), bad]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /cases\[0\]\.request\.headers: a mapping is required/);
});
