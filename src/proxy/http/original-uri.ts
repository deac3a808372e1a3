// Envoy's Http::Utility::buildOriginalUri, for the realm of a `www-authenticate` challenge: the
// request's scheme, host and path (x-envoy-original-path when a rewrite kept it), without the
// query, the path cut at `maxPathLength`.

import type { HeaderMap } from './headers.ts';

export function originalUri(h: HeaderMap, maxPathLength: number): string {
  const path = h.get('x-envoy-original-path') ?? h.get(':path') ?? '';
  const q = path.indexOf('?');
  const scheme = h.get('x-forwarded-proto') ?? h.get(':scheme') ?? 'http';
  return `${scheme}://${h.get(':authority') ?? ''}${(q >= 0 ? path.slice(0, q) : path).slice(0, maxPathLength)}`;
}
