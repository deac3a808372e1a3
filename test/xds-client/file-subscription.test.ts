// Filesystem SDS (`path_config_source`): a DiscoveryResponse file picked up at start and again
// when Kubernetes swaps the `..data` symlink in the watched directory, or when the file itself is
// atomically replaced; a bad secret is rejected (previous one kept), an unreadable file counted as
// a failure.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { testPki, type Issued } from '../helpers/certs.ts';
import { certificateSecret } from '../helpers/xds/control-plane.ts';
import type { CertificateSecret } from '../../src/proxy/tls/types.ts';
import { configSource, sdsHarness, serialOf, tempDir, until } from './helpers.ts';

const pki = testPki();
const root = tempDir('legate-fs-sds-');
after(() => rmSync(root, { recursive: true, force: true }));

const SECRET_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

function response(name: string, issued: { certPem: string; keyPem: string }, version: string): string {
  return stringify({ version_info: version, resources: [{ '@type': SECRET_URL, ...certificateSecret(name, issued) }] });
}

/** Writes a new timestamped directory and swaps `..data` to it, as the kubelet does. */
function kubeletSwap(dir: string, generation: number, files: Record<string, string>): void {
  const gen = `..2025_01_01_00_00_0${generation}.${process.pid}`;
  mkdirSync(join(dir, gen));
  for (const [f, body] of Object.entries(files)) writeFileSync(join(dir, gen, f), body);
  symlinkSync(gen, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const f of Object.keys(files)) {
    try {
      symlinkSync(join('..data', f), join(dir, f));
    } catch {
      // already linked through ..data
    }
  }
}

async function leafSerial(s: { secret: unknown }): Promise<string> {
  return serialOf((s.secret as CertificateSecret).certificateChain);
}

test('watched_directory: a kubelet-style ..data swap is picked up without restart', async () => {
  const dir = join(root, 'kube');
  mkdirSync(dir);
  kubeletSwap(dir, 1, { 'sds.yaml': response('default', pki.server, 'v1') });
  const h = sdsHarness([]);
  try {
    const src = configSource({ path_config_source: { path: join(dir, 'sds.yaml'), watched_directory: { path: dir } }, resource_api_version: 'V3' });
    const sub = h.client.subscribe('default', src, 'sds_config');
    assert.ok(sub.ok);
    assert.equal(await sub.value.initialized, 'success');
    assert.equal(h.received[0]!.version, 'v1');
    assert.equal(await leafSerial(h.received[0]!), await serialOf(pki.server.certPem));

    kubeletSwap(dir, 2, { 'sds.yaml': response('default', pki.ecdsaServer, 'v2') });
    await until(() => h.received.length === 2, 'the swapped secret');
    assert.equal(h.received[1]!.version, 'v2');
    assert.equal(await leafSerial(h.received[1]!), await serialOf(pki.ecdsaServer.certPem));
    assert.equal(h.counter('sds.default.update_success'), 2);

    // A mismatched key: rejected, the previous secret stays.
    kubeletSwap(dir, 3, { 'sds.yaml': response('default', { certPem: pki.server.certPem, keyPem: pki.client.keyPem }, 'v3') });
    await until(() => h.counter('sds.default.update_rejected') === 1, 'the rejection');
    assert.equal(h.received.length, 2);
    assert.equal(sub.value.version, 'v2');
  } finally {
    h.client.close();
  }
});

test('no watched_directory: the file itself is watched (atomic rename and rewrite)', async () => {
  const dir = join(root, 'plain');
  mkdirSync(dir);
  const file = join(dir, 'secret.json');
  writeFileSync(file, JSON.stringify({ version_info: 'a', resources: [{ '@type': SECRET_URL, ...certificateSecret('default', pki.server) }] }));
  const h = sdsHarness([]);
  try {
    const sub = h.client.subscribe('default', configSource({ path_config_source: { path: file }, resource_api_version: 'V3' }), 'sds_config');
    assert.ok(sub.ok);
    assert.equal(await sub.value.initialized, 'success');

    const replace = (issued: Issued | string, version: string): void => {
      writeFileSync(join(dir, '.tmp'), typeof issued === 'string' ? issued : response('default', issued, version));
      renameSync(join(dir, '.tmp'), file);
    };
    replace(pki.ecdsaServer, 'b');
    await until(() => h.received.length === 2, 'the replaced secret');
    assert.equal(h.received[1]!.version, 'b');

    // Not YAML/JSON at all: a failure, not a rejection; nothing changes.
    replace('{ not: [valid', 'c');
    await until(() => h.counter('sds.default.update_failure') === 1, 'the failure');
    assert.equal(h.received.length, 2);

    // A file without the secret asked for is rejected.
    writeFileSync(file, response('someone-else', pki.server, 'd'));
    await until(() => h.counter('sds.default.update_rejected') === 1, 'the rejection');
    assert.equal(h.received.length, 2);
  } finally {
    h.client.close();
  }
});
