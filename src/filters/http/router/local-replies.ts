// Headers for the router's own answers (direct_response, redirect): the route's response header
// mutations apply to them as they do in Envoy. Off the proxying hot path.

import { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';

export function directResponseHeaders(route: RouteEntry, info: StreamInfo, location?: string): Record<string, string> | undefined {
  const h = new HeaderMap();
  if (location !== undefined) h.set('location', location);
  route.responseHeaders.apply(h, info);
  if (h.size === 0) return undefined;
  const out: Record<string, string> = {};
  h.forEach((k, v) => {
    const prev = out[k];
    out[k] = prev === undefined ? v : `${prev},${v}`;
  });
  return out;
}
