// Envoy's dynamic metadata: what filters learn about a stream (a JWT's payload, an authorization
// service's verdict, RBAC's shadow results), by filter namespace, for later filters (RBAC's
// metadata matchers) and access logs (%DYNAMIC_METADATA(namespace:key)%) to read.

import type { StreamInfo } from './stream-info.ts';

/** Envoy's setDynamicMetadata: `fields` merged into the namespace's struct, key by key. */
export function setDynamicMetadata(info: StreamInfo, namespace: string, fields: Readonly<Record<string, unknown>>): void {
  const all = (info.dynamicMetadata ??= {});
  all[namespace] = { ...all[namespace], ...fields };
}

/** The value at `path` (keys into nested structs) of a namespace's metadata; undefined when absent. */
export function dynamicMetadataValue(info: StreamInfo, namespace: string, path: readonly string[]): unknown {
  let v: unknown = info.dynamicMetadata?.[namespace];
  for (const key of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
