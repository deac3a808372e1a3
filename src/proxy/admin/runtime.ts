// Admin runtime endpoints: `/runtime` as Envoy's JSON (layers, and per key the final value and
// each layer's value) and `/runtime_modify` (query parameters, else form values in the body).
// A source without an admin layer rejects the change; that is answered 503 with its message.

import type { RuntimeLayer } from './source.ts';

const FORM_URLENCODED = 'application/x-www-form-urlencoded';

export interface RuntimeReply {
  readonly status: number;
  readonly body: string;
}

/** `{"layers":[...],"entries":{"key":{"final_value":...,"layer_values":[...]}}}`, keys sorted. */
export function runtimeJson(layers: readonly RuntimeLayer[]): unknown {
  const keys = new Set<string>();
  for (const l of layers) for (const k of Object.keys(l.values)) keys.add(k);
  const entries: Record<string, unknown> = {};
  for (const k of [...keys].sort()) {
    const layerValues = layers.map((l) => l.values[k] ?? '');
    const final = [...layers].reverse().find((l) => l.values[k] !== undefined)?.values[k] ?? '';
    entries[k] = { final_value: final, layer_values: layerValues };
  }
  return { layers: layers.map((l) => l.name), entries };
}

/** Envoy's RuntimeHandler::handlerRuntimeModify: 400 without parameters, 503 when the change is refused. */
export async function runtimeModify(
  modify: (v: Readonly<Record<string, string>>) => Promise<void>,
  q: URLSearchParams,
  body: Buffer,
  contentType: string,
): Promise<RuntimeReply> {
  let params = q;
  if ([...params.keys()].length === 0 && body.length > 0 && contentType.split(';')[0]!.trim().toLowerCase() === FORM_URLENCODED) {
    params = new URLSearchParams(body.toString('utf8'));
  }
  if ([...params.keys()].length === 0) {
    return { status: 400, body: 'usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n       or send the parameters as form values\nuse an empty value to remove a previously added override' };
  }
  const values: Record<string, string> = {};
  for (const [k, v] of params) values[k] = v;
  try {
    await modify(values);
  } catch (e) {
    return { status: 503, body: e instanceof Error ? e.message : String(e) };
  }
  return { status: 200, body: 'OK\n' };
}
