import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadBootstrap, parseYaml } from '../../src/config/bootstrap.ts';
import { decodeJson, toProto3Json, unpackAny } from '../../src/config/decode.ts';
import { formatErrors } from '../../src/config/result.ts';
import { CORPUS_DIR } from '../helpers/corpus.ts';

const CORPUS = CORPUS_DIR;
// A missing corpus is an error (readdirSync throws), never a silently empty suite.
const files = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.yaml')).sort();

// The dynamic-config-fs lds.yaml/cds.yaml are DiscoveryResponse-shaped (`resources:`).
const isDiscovery = (f: string): boolean => /__(lds|cds)\.yaml$/.test(f);

for (const f of files) {
  test(`corpus ${f} decodes without errors and round-trips through proto3 JSON`, () => {
    const p = path.join(CORPUS, f);
    if (isDiscovery(f)) {
      const json = parseYaml(fs.readFileSync(p, 'utf8'), f);
      assert.ok(json.ok);
      const type = 'envoy.service.discovery.v3.DiscoveryResponse';
      const r = decodeJson<{ resources: { type_url: string; value: Buffer }[] }>(type, json.value);
      assert.ok(r.ok, !r.ok ? formatErrors(r.errors) : '');
      assert.ok(r.value.resources.length > 0);
      for (const [i, res] of r.value.resources.entries()) {
        const u = unpackAny(res, `resources[${i}]`);
        assert.ok(u.ok, !u.ok ? formatErrors(u.errors) : '');
      }
      const again = decodeJson(type, toProto3Json(type, r.value));
      assert.ok(again.ok);
      assert.deepEqual(again.value, r.value);
      return;
    }
    const r = loadBootstrap({ configPath: p });
    assert.ok(r.ok, !r.ok ? formatErrors(r.errors) : '');
    const type = 'envoy.config.bootstrap.v3.Bootstrap';
    const again = decodeJson(type, toProto3Json(type, r.value));
    assert.ok(again.ok, !again.ok ? formatErrors(again.errors) : '');
    assert.deepEqual(again.value, r.value);
  });
}

test('the corpus is there', () => {
  assert.ok(files.length >= 10, `found ${files.length} corpus files`);
});
