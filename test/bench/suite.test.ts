// Smoke test of the side-by-side bench suite (bench/run.ts): runs it in --quick mode with only the
// `direct`, `minimal` and `legate` contestants and two 1 s scenarios (plain HTTP/1.1, and mTLS both
// ways with the certificates the suite mints), then parses the JSON and Markdown it wrote, the
// paired legate ÷ minimal run and the targets table included. Checks shape only (figures present,
// no errors) — never timings, and never whether a target was met.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

interface Output {
  meta: { pinning: string; reps: number; contestants: Array<{ name: string; version: string | null }> };
  skipped: unknown[];
  runs: Array<{ scenario: string; contestant: string; rep: number; figures: Record<string, number | null> }>;
  medians: Record<string, Record<string, { figures: Record<string, number | null>; ratios: Record<string, number | null> }>>;
  pairs: Array<{ scenario: string; a: string; b: string; median: number; reps: Array<{ requests: number[]; errors: number }> }>;
  targets: Array<{ target: string; scenario: string; met: boolean | null }>;
}

test('bench suite --quick runs direct, minimal and legate (plain and mTLS), pairs legate with minimal, and parses its own output', { timeout: 90_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'legate-bench-test-'));
  try {
    const child = spawn(process.execPath, [RUN, '--quick', '--only', 'direct,minimal,legate', '--scenarios', 'h1-12b,rate-1k-mtls', '--duration', '1', '--warmup', '0', '--no-install', '--out-dir', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    // 'close': all of its output read ('exit' can come before the last of it).
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 0, `suite failed:\n${stdout}\n${stderr}`);

    const jsonFile = /^wrote (.+\.json)$/m.exec(stdout)?.[1];
    const mdFile = /^wrote (.+\.md)$/m.exec(stdout)?.[1];
    assert.ok(jsonFile && mdFile, stdout);
    assert.ok(existsSync(mdFile));
    assert.match(stdout, /^(pinning: proxy under test on CPU 1|pinning skipped: )/m);
    assert.match(stdout, /\| minimal +\|/);

    const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as Output;
    assert.equal(result.meta.reps, 1);
    assert.deepEqual(result.skipped, []);
    assert.deepEqual(result.runs.map((r) => `${r.scenario} ${r.contestant}`).sort(), ['h1-12b direct', 'h1-12b legate', 'h1-12b minimal', 'rate-1k-mtls direct', 'rate-1k-mtls legate', 'rate-1k-mtls minimal']);
    for (const c of ['direct', 'minimal', 'legate']) {
      const m = result.medians['rate-1k-mtls']?.[c];
      assert.ok(m && (m.figures.requests ?? 0) > 0, c);
      assert.equal(m.figures.errors, 0, c);
    }
    const direct = result.medians['h1-12b']?.direct;
    const minimal = result.medians['h1-12b']?.minimal;
    assert.ok(direct && minimal);
    for (const m of [direct, minimal]) {
      assert.ok((m.figures.requests ?? 0) > 0);
      assert.equal(m.figures.errors, 0);
      assert.equal(typeof m.figures.p99Ms, 'number');
    }
    // direct has no proxy process: no CPU figure; the minimal proxy has one, and ratios to both.
    assert.equal(direct.figures.cpuPer1k, null);
    assert.ok((minimal.figures.cpuPer1k ?? 0) > 0);
    assert.ok((minimal.figures.peakRssMB ?? 0) > 0);
    assert.equal(minimal.ratios.cpuVsMinimal, 1);
    assert.equal(typeof minimal.ratios.rpsVsDirect, 'number');
    assert.match(readFileSync(mdFile, 'utf8'), /### h1-12b/);
    // The one ratio target both of whose contestants ran, measured paired; the others are absent, not skipped.
    assert.deepEqual(result.pairs.map((p) => `${p.scenario} ${p.a} ${p.b}`), ['h1-12b legate minimal']);
    const pair = result.pairs[0]!;
    assert.equal(pair.reps.length, 1);
    assert.ok(pair.reps[0]!.requests.every((n) => n > 0) && pair.reps[0]!.errors === 0, JSON.stringify(pair));
    assert.ok(Number.isFinite(pair.median) && pair.median > 0);
    // Targets: the absolute ones of the two scenarios run (req/s vs minimal, RSS, vCPU with mTLS) and the pair.
    assert.deepEqual(result.targets.map((t) => t.scenario).sort(), ['h1-12b', 'h1-12b', 'h1-12b', 'rate-1k-mtls']);
    assert.ok(result.targets.every((t) => typeof t.met === 'boolean'), JSON.stringify(result.targets));
    assert.match(stdout, /### targets/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
