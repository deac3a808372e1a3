// `legate wasm run`: the sandbox serves a plugin in front of its echo upstream, prints every host
// call with --trace, and picks up a new build of the plugin file without closing the listener.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/legate.ts';
import { examplePlugin } from '../helpers/wasm.ts';
import { freePort } from '../helpers/free-port.ts';

/** One request on a fresh connection. */
function get(port: number, path: string): Promise<{ headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

test('legate wasm run: echo upstream, --trace, and a rebuilt plugin loaded without dropping the listener', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'legate-wasm-run-'));
  const plugin = join(dir, 'plugin.wasm');
  copyFileSync(examplePlugin('abi-v010'), plugin);
  const v021 = examplePlugin('abi-v021');
  const port = await freePort();
  const p = spawn(process.execPath, [CLI, 'wasm', 'run', plugin, '--root-id', 'abi', '--config', 'x', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--trace'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d));
  p.stderr.on('data', (d: Buffer) => (stderr += d));
  try {
    // Start-up parses Envoy's protos on the main thread and a worker: slow on a loaded 2-core machine.
    for (let i = 0; i < 900 && !stdout.includes('legate wasm run:'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(stdout, new RegExp(`on http://127\\.0\\.0\\.1:${port}/ → echo upstream`), stderr);
    const first = await get(port, '/hello');
    assert.equal(first.headers['x-abi'], '0.1.0');
    const echoed = JSON.parse(first.body) as { method: string; path: string };
    assert.equal(echoed.method, 'GET');
    assert.equal(echoed.path, '/hello');
    for (let i = 0; i < 200 && !/proxy_add_header_map_value/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /wasm trace 'sandbox' \(root_id 'abi', vm_id 'sandbox'\): proxy_add_header_map_value\(2, \d+, \d+, \d+, \d+\) → OK/);

    copyFileSync(v021, plugin);
    let abi: string | string[] | undefined;
    for (let i = 0; i < 400 && abi !== '0.2.1'; i++) {
      abi = (await get(port, '/again')).headers['x-abi']; // never refused: the listener stays
      if (abi !== '0.2.1') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(abi, '0.2.1');
    assert.match(stderr, /reloaded .*plugin\.wasm: new connections get the new plugin/);
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  }
});
