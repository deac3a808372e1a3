// The cluster a stream's route sends it to, for filters that count or decide by it (a weighted
// pick is made once per stream and kept in StreamInfo, so every caller sees the same cluster).

import type { HttpFilterCallbacks } from './filter.ts';
import type { HeaderMap } from '../../proxy/http/headers.ts';

/** The route's cluster for these request headers; undefined without a route or for a direct response / redirect. */
export function routeCluster(cb: HttpFilterCallbacks, headers: HeaderMap): string | undefined {
  const route = cb.route();
  return route?.action.kind === 'route' ? route.action.pickCluster(headers, cb.streamInfo) : undefined;
}
