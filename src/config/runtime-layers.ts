// Builds the Runtime's layers from the bootstrap's layered_runtime: static layers are flattened
// to dotted keys (as Envoy does); disk and RTDS layers are not read yet (listed, empty).

import type { Bootstrap__Output } from '../generated/envoy/config/bootstrap/v3/Bootstrap.ts';
import { structToPlain } from '../proxy/http/formatter.ts';
import { Runtime, type RuntimeLayerView } from '../proxy/runtime.ts';

function flatten(o: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out);
    else out[key] = String(v);
  }
  return out;
}

export function runtimeLayers(b: Bootstrap__Output): RuntimeLayerView[] {
  return (b.layered_runtime?.layers ?? [])
    .filter((l) => l.layer_specifier !== 'admin_layer')
    .map((l) => ({ name: l.name, values: l.layer_specifier === 'static_layer' && l.static_layer ? flatten(structToPlain(l.static_layer)) : {} }));
}

export function buildRuntime(b: Bootstrap__Output, admin: Readonly<Record<string, string>> = {}): Runtime {
  return new Runtime(runtimeLayers(b), admin);
}
