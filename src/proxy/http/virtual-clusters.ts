// A virtual host's virtual_clusters compiled once: the first whose header matchers all match names
// the request's virtual cluster, else Envoy's catch-all `other`; no virtual clusters, no name (and
// no vhost.<name>.vcluster.* stats). Matchers that cannot compile are errors with their paths.

import { joinPath, type ConfigError } from '../../config/result.ts';
import { compileHeaderMatchers, type HeaderPredicate } from './matchers.ts';
import type { HeaderMap } from './headers.ts';
import type { VirtualCluster__Output } from '../../generated/envoy/config/route/v3/VirtualCluster.ts';

/** Envoy's catch-all virtual cluster. */
export const OTHER_VIRTUAL_CLUSTER = 'other';

export type VirtualClusterOf = (headers: HeaderMap) => string;

export function compileVirtualClusters(list: readonly VirtualCluster__Output[], path: string, errors: ConfigError[]): VirtualClusterOf | undefined {
  if (list.length === 0) return undefined;
  const compiled: Array<{ name: string; match: HeaderPredicate | undefined }> = [];
  list.forEach((vc, i) => {
    const p = joinPath(path, `[${i}]`);
    if (!vc.name) errors.push({ path: joinPath(p, 'name'), reason: 'value length must be at least 1 characters' });
    const m = compileHeaderMatchers(vc.headers, joinPath(p, 'headers'));
    if (!m.ok) return void errors.push(...m.errors);
    compiled.push({ name: vc.name, match: m.value });
  });
  return (headers) => compiled.find((vc) => !vc.match || vc.match(headers))?.name ?? OTHER_VIRTUAL_CLUSTER;
}
