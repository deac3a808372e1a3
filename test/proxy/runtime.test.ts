// The layered runtime: layers built from layered_runtime (static, disk, admin, none → base+admin),
// disk layers read as files and reloaded when the symlink root is swapped, and admin /runtime and
// /runtime_modify (query and form values, empty value removes, 503 without an admin layer).

import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJson } from '../../src/config/decode.ts';
import type { Bootstrap__Output } from '../../src/generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { buildRuntime, diskValue, readDiskLayer } from '../../src/config/runtime-layers.ts';
import { NO_ADMIN_LAYER, Runtime } from '../../src/proxy/runtime.ts';
import { startAdmin } from '../../src/proxy/admin/server.ts';
import { FakeSource } from './admin/fake-source.ts';
import type { RuntimeLayer } from '../../src/proxy/admin/source.ts';

function bootstrap(json: unknown): Bootstrap__Output {
  const d = decodeJson<Bootstrap__Output>('envoy.config.bootstrap.v3.Bootstrap', json);
  if (!d.ok) throw new Error(JSON.stringify(d.errors));
  return d.value;
}

function tree(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const full = join(root, rel);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, text);
  }
}

test('no layered_runtime: Envoy adds a `base` static layer and an `admin` layer', () => {
  const r = buildRuntime(bootstrap({}));
  assert.deepEqual(r.layers().map((l) => l.name), ['base', 'admin']);
  r.setAdmin({ a: '1' });
  assert.equal(r.get('a'), '1');
  r.close();
});

test('layers in their configured order; without an admin layer setAdmin throws Envoy\'s error', () => {
  const r = buildRuntime(bootstrap({ layered_runtime: { layers: [{ name: 's', static_layer: { fault: { http: { abort: { abort_percent: 20 } } }, flag: true } }] } }));
  assert.deepEqual(r.layers().map((l) => l.name), ['s']);
  assert.equal(r.hasAdminLayer, false);
  assert.equal(r.getInteger('fault.http.abort.abort_percent', 0), 20);
  assert.equal(r.getBoolean('flag', false), true);
  assert.throws(() => r.setAdmin({ x: '1' }), new RegExp(NO_ADMIN_LAYER));
  // Runtimes built in code keep an implicit admin layer.
  assert.deepEqual(new Runtime([{ name: 't', values: {} }]).layers().map((l) => l.name), ['t', 'admin']);
});

test('disk layer: files are keys (path with / → .), # lines dropped, values trimmed; append_service_cluster; missing dir is empty', () => {
  const root = mkdtempSync(join(tmpdir(), 'legate-rt-'));
  try {
    tree(root, {
      'envoy/fault/http/abort/abort_percent': '42\n',
      'envoy/fault/http/abort/http_status': '# the status\n503  \n',
      'envoy/a/b/c/d': 'deep',
      'envoy/svc-x/only.here': 'x',
      'envoy_override/svc-x/health_check/min_interval': '7',
    });
    assert.equal(diskValue('# c\nvalue\n\n'), 'value');
    assert.deepEqual(readDiskLayer(join(root, 'envoy', 'fault')), { 'http.abort.abort_percent': '42', 'http.abort.http_status': '503' });
    assert.deepEqual(readDiskLayer(join(root, 'nope')), {});
    const r = buildRuntime(
      bootstrap({
        node: { id: 'n', cluster: 'svc-x' },
        layered_runtime: {
          layers: [
            { name: 'static', static_layer: { 'fault.http.abort.abort_percent': 1, other: 'o' } },
            { name: 'disk', disk_layer: { symlink_root: root, subdirectory: 'envoy' } },
            { name: 'override', disk_layer: { symlink_root: root, subdirectory: 'envoy_override', append_service_cluster: true } },
            { name: 'missing', disk_layer: { symlink_root: join(root, 'missing'), subdirectory: 'envoy' } },
            { name: 'admin', admin_layer: {} },
          ],
        },
      }),
      {},
      { watch: false },
    );
    assert.deepEqual(r.layers().map((l) => l.name), ['static', 'disk', 'override', 'missing', 'admin']);
    assert.equal(r.get('fault.http.abort.abort_percent'), '42');
    assert.equal(r.get('fault.http.abort.http_status'), '503');
    assert.equal(r.get('a.b.c.d'), 'deep');
    assert.equal(r.get('svc-x.only.here'), 'x');
    assert.equal(r.get('health_check.min_interval'), '7');
    assert.equal(r.get('other'), 'o');
    r.setAdmin({ 'fault.http.abort.abort_percent': '99' });
    assert.equal(r.get('fault.http.abort.abort_percent'), '99');
    r.setAdmin({ 'fault.http.abort.abort_percent': '' });
    assert.equal(r.get('fault.http.abort.abort_percent'), '42', 'removing the admin value shows the disk value again');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('disk layer reloads when the symlink root is swapped (ln -s v2 new && mv -Tf new current)', async () => {
  const base = mkdtempSync(join(tmpdir(), 'legate-rt-'));
  tree(base, { 'v1/envoy/fault/http/abort/abort_percent': '0', 'v2/envoy/fault/http/abort/abort_percent': '100', 'v2/envoy/fault/http/abort/http_status': '418' });
  symlinkSync(join(base, 'v1'), join(base, 'current'));
  const r = buildRuntime(bootstrap({ layered_runtime: { layers: [{ name: 'disk_layer_0', disk_layer: { symlink_root: join(base, 'current'), subdirectory: 'envoy' } }] } }));
  try {
    assert.equal(r.get('fault.http.abort.abort_percent'), '0');
    const gen = r.generation;
    symlinkSync(join(base, 'v2'), join(base, 'new'));
    renameSync(join(base, 'new'), join(base, 'current'));
    const until = Date.now() + 3000;
    while (r.get('fault.http.abort.http_status') !== '418' && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    assert.equal(r.get('fault.http.abort.abort_percent'), '100');
    assert.equal(r.get('fault.http.abort.http_status'), '418');
    assert.ok(r.generation > gen);
  } finally {
    r.close();
    rmSync(base, { recursive: true, force: true });
  }
});

class RuntimeSource extends FakeSource {
  readonly rt: Runtime;
  modifies: Array<Record<string, string>> = [];
  constructor(rt: Runtime) {
    super();
    this.rt = rt;
  }
  override runtime(): readonly RuntimeLayer[] {
    return this.rt.layers();
  }
  async runtimeModify(values: Readonly<Record<string, string>>): Promise<void> {
    this.modifies.push({ ...values });
    this.rt.setAdmin(values);
  }
}

test('admin /runtime_modify: query or form values, empty value removes, GET is 405, no params 400, no admin layer 503', async () => {
  const rt = new Runtime([{ name: 'static_layer_0', values: { 'fault.http.abort.abort_percent': '5', keep: 'k' } }, { name: 'admin_layer_0', kind: 'admin', values: {} }]);
  const source = new RuntimeSource(rt);
  const admin = await startAdmin({ address: '127.0.0.1', port: 0, source });
  const url = `http://127.0.0.1:${admin.port}`;
  try {
    assert.equal((await fetch(`${url}/runtime_modify?a=1`)).status, 405);
    const r = await fetch(`${url}/runtime_modify?fault.http.abort.abort_percent=100&x=y`, { method: 'POST' });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'OK\n');
    assert.equal(rt.getInteger('fault.http.abort.abort_percent', 0), 100);
    const form = await fetch(`${url}/runtime_modify`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'x=&z=form+value' });
    assert.equal(form.status, 200);
    assert.equal(rt.get('x'), undefined);
    assert.equal(rt.get('z'), 'form value');
    const empty = await fetch(`${url}/runtime_modify`, { method: 'POST' });
    assert.equal(empty.status, 400);
    assert.match(await empty.text(), /^usage: \/runtime_modify\?key1=value1/);

    const body = (await (await fetch(`${url}/runtime`)).json()) as { layers: string[]; entries: Record<string, { final_value: string; layer_values: string[] }> };
    assert.deepEqual(body.layers, ['static_layer_0', 'admin_layer_0']);
    assert.deepEqual(body.entries['fault.http.abort.abort_percent'], { final_value: '100', layer_values: ['5', '100'] });
    assert.deepEqual(body.entries['keep'], { final_value: 'k', layer_values: ['k', ''] });
    assert.deepEqual(body.entries['z'], { final_value: 'form value', layer_values: ['', 'form value'] });
    assert.match(await (await fetch(`${url}/help`)).text(), /\/runtime_modify \(POST\): Adds or modifies runtime values/);
  } finally {
    await admin.close();
  }

  const none = new RuntimeSource(new Runtime([{ name: 's', values: {} }], {}, { implicitAdminLayer: false }));
  const admin2 = await startAdmin({ address: '127.0.0.1', port: 0, source: none });
  try {
    const r = await fetch(`http://127.0.0.1:${admin2.port}/runtime_modify?a=1`, { method: 'POST' });
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'No admin layer specified');
  } finally {
    await admin2.close();
  }
});
