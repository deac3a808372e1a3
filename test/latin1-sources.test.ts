// legate's own sources hold no character beyond Latin-1. V8 keeps every loaded module's source
// for the life of the thread, one byte per character, unless a single character needs more: then
// the whole file is kept two bytes per character. 158 files had an arrow or a dash in a comment,
// and the quick-start config's idle RSS was ~1.5 MB higher at --concurrency 2 for it (both threads).
// Comments use ASCII (-> ... --); strings that need such a character use \u escapes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = join(dir, e.name);
    // build: compiled addons; generated: proto types, only ever imported as types (never loaded)
    if (e.isDirectory()) return ['build', 'generated', 'node_modules'].includes(e.name) ? [] : sources(rel);
    return /\.(ts|js|mjs|cjs)$/.test(e.name) ? [rel] : [];
  });
}

test('every module legate loads is Latin-1 (V8 keeps its source one byte per character)', () => {
  const files = [...sources('src'), ...sources('bin')];
  assert.ok(files.length > 200, `found ${files.length} source files`);
  const offenders: string[] = [];
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    const i = text.search(/[^\x00-\xff]/);
    if (i < 0) continue;
    const line = text.slice(0, i).split('\n').length;
    offenders.push(`${f}:${line}: ${JSON.stringify(text[i])} (U+${text.codePointAt(i)!.toString(16).toUpperCase().padStart(4, '0')})`);
  }
  assert.deepEqual(offenders, [], `characters beyond Latin-1 (use ASCII in comments, \\u escapes in strings):\n${offenders.join('\n')}`);
});
