// Builds the Runtime's layers from the bootstrap's layered_runtime, as Envoy does: static layers
// flattened to dotted keys; disk layers read from `symlink_root/subdirectory[/service_cluster]`
// (each file a key named by its path with `/` -> `.`) and re-read when the symlink root is swapped;
// the admin layer where it is listed; RTDS layers listed, empty. No layers -> `base` + `admin`.
// A missing or unreadable disk directory is an empty layer (logged), never a start-up error.

import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import type { RuntimeLayer__Output } from '../generated/envoy/config/bootstrap/v3/RuntimeLayer.ts';
import { structToPlain } from '../proxy/http/formatter.ts';
import { Runtime, type RuntimeLayerView } from '../proxy/runtime.ts';
import { logger } from '../proxy/log.ts';

const log = logger('runtime');

/** Envoy's DiskLayer MaxWalkDepth. */
const MAX_WALK_DEPTH = 16;

function flatten(o: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = String(v);
  }
  return out;
}

/** A file's runtime value: `#` comment lines dropped, trailing whitespace trimmed (Envoy's DiskLayer). */
export function diskValue(text: string): string {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .join('\n')
    .trim();
}

/** Every regular file under `dir` -> key (path relative to dir, `/` -> `.`) = value. Missing dir -> {}. */
export function readDiskLayer(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string, prefix: string, depth: number): void => {
    if (depth > MAX_WALK_DEPTH) {
      log.warn(`runtime: walk recursion depth exceeded at ${path}`);
      return;
    }
    let entries;
    try {
      entries = readdirSync(path, { withFileTypes: true });
    } catch (e) {
      if (depth === 0) log.debug(`runtime: cannot read disk layer ${path}: ${(e as Error).message}`);
      return;
    }
    for (const e of entries) {
      const key = prefix ? `${prefix}.${e.name}` : e.name;
      const full = join(path, e.name);
      if (e.isDirectory()) walk(full, key, depth + 1);
      else if (e.isFile()) {
        try {
          out[key] = diskValue(readFileSync(full, 'utf8'));
        } catch (err) {
          log.warn(`runtime: cannot read ${full}: ${(err as Error).message}`);
        }
      }
    }
  };
  walk(dir, '', 0);
  return out;
}

interface DiskSpec {
  readonly name: string;
  readonly symlinkRoot: string;
  readonly dir: string;
}

function diskSpec(l: RuntimeLayer__Output, serviceCluster: string): DiskSpec | undefined {
  const d = l.disk_layer;
  if (l.layer_specifier !== 'disk_layer' || !d) return undefined;
  let dir = d.symlink_root;
  if (d.subdirectory) dir = join(dir, d.subdirectory);
  if (d.append_service_cluster) dir = join(dir, serviceCluster);
  return { name: l.name, symlinkRoot: d.symlink_root, dir };
}

function serviceClusterOf(b: Bootstrap__Output): string {
  return b.node?.cluster ?? '';
}

/** The layers as configured (admin and RTDS layers empty), lowest priority first. */
export function runtimeLayers(b: Bootstrap__Output): RuntimeLayerView[] {
  const layers = b.layered_runtime?.layers ?? [];
  if (layers.length === 0) {
    return [
      { name: 'base', kind: 'static', values: {} },
      { name: 'admin', kind: 'admin', values: {} },
    ];
  }
  const cluster = serviceClusterOf(b);
  return layers.map((l): RuntimeLayerView => {
    switch (l.layer_specifier) {
      case 'static_layer':
        return { name: l.name, kind: 'static', values: l.static_layer ? flatten(structToPlain(l.static_layer)) : {} };
      case 'disk_layer': {
        const spec = diskSpec(l, cluster);
        return { name: l.name, kind: 'disk', values: spec ? readDiskLayer(spec.dir) : {} };
      }
      case 'admin_layer':
        return { name: l.name, kind: 'admin', values: {} };
      default:
        return { name: l.name, kind: 'rtds', values: {} };
    }
  });
}

export interface BuildRuntimeOptions {
  /** Re-read disk layers when their symlink root is replaced (default true; watchers are unref'd). */
  readonly watch?: boolean;
}

/**
 * Envoy watches the symlink root's directory and reloads when the root is moved into place
 * (`ln -s v2 new && mv -Tf new current`). Every thread with a Runtime watches for itself.
 */
function watchDiskLayers(runtime: Runtime, specs: readonly DiskSpec[]): void {
  const byParent = new Map<string, DiskSpec[]>();
  for (const s of specs) {
    const p = dirname(s.symlinkRoot);
    byParent.set(p, [...(byParent.get(p) ?? []), s]);
  }
  const watchers: FSWatcher[] = [];
  for (const [parent, list] of byParent) {
    let w: FSWatcher;
    try {
      w = watch(parent, { persistent: false }, (_event, file) => {
        const name = file?.toString();
        for (const s of list) {
          if (name !== undefined && name !== null && name !== basename(s.symlinkRoot)) continue;
          runtime.setLayerValues(s.name, readDiskLayer(s.dir));
          log.debug(`runtime: reloaded disk layer ${s.name} from ${s.dir}`);
        }
      });
    } catch (e) {
      // Envoy also starts without the directory; the layer stays empty until restart.
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      (missing ? log.debug : log.warn).call(log, `runtime: cannot watch ${parent}: ${(e as Error).message}`);
      continue;
    }
    w.on('error', (e) => log.warn(`runtime: watch on ${parent} failed: ${e.message}`));
    watchers.push(w);
  }
  runtime.onClose(() => {
    for (const w of watchers) w.close();
  });
}

export function buildRuntime(b: Bootstrap__Output, admin: Readonly<Record<string, string>> = {}, opts: BuildRuntimeOptions = {}): Runtime {
  const runtime = new Runtime(runtimeLayers(b), admin, { implicitAdminLayer: false });
  if (opts.watch !== false) {
    const cluster = serviceClusterOf(b);
    const specs = (b.layered_runtime?.layers ?? []).flatMap((l) => diskSpec(l, cluster) ?? []);
    if (specs.length > 0) watchDiskLayers(runtime, specs);
  }
  return runtime;
}
