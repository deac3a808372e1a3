// The CEL expressions Istio's metric overrides (`dimensions`) hold, in the subset legate evaluates:
// string literals and the request/response attributes Istio's Telemetry examples use
// (`request.host`, `request.headers['x-user']`, `response.code`, `xds.cluster_name`...). Anything
// else is a config error naming the field, not a silent `unknown`.

import type { StreamInfo } from '../../../proxy/http/stream-info.ts';

/** Evaluates to the tag's value; undefined -> Istio's `unknown`. */
export type TagExpression = (info: StreamInfo) => string | undefined;

const ATTRIBUTES: Readonly<Record<string, TagExpression>> = {
  'request.host': (i) => i.requestHeaders?.get(':authority'),
  'request.method': (i) => i.requestHeaders?.get(':method'),
  'request.path': (i) => i.requestHeaders?.get(':path'),
  'request.url_path': (i) => i.requestHeaders?.get(':path')?.split('?')[0],
  'request.scheme': (i) => i.requestHeaders?.get(':scheme'),
  'request.protocol': (i) => i.protocol,
  'request.id': (i) => i.requestId,
  'response.code': (i) => (i.responseCode === undefined ? undefined : String(i.responseCode)),
  'response.code_details': (i) => i.responseCodeDetails,
  'xds.cluster_name': (i) => i.clusterName,
  'xds.route_name': (i) => i.routeName,
  'xds.virtual_host_name': (i) => i.virtualHostName,
  'connection.requested_server_name': (i) => i.requestedServerName,
  'source.address': (i) => i.downstreamRemote.address,
  'destination.address': (i) => i.downstreamLocal.address,
};

const LITERAL = /^\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*$/;
const HEADER = /^\s*(request|response)\.headers\[\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\]\s*$/;

/** Compiles one expression; a string error says what legate does not evaluate. */
export function compileTagExpression(expr: string): TagExpression | string {
  const lit = LITERAL.exec(expr);
  if (lit) {
    const v = lit[1] ?? lit[2] ?? '';
    return () => v;
  }
  const h = HEADER.exec(expr);
  if (h) {
    const name = (h[2] ?? h[3] ?? '').toLowerCase();
    return h[1] === 'request' ? (i) => i.requestHeaders?.get(name) : (i) => i.responseHeaders?.get(name);
  }
  const attr = ATTRIBUTES[expr.trim()];
  if (attr) return attr;
  return `CEL expression '${expr}' is not supported: legate evaluates string literals, request/response headers and ${Object.keys(ATTRIBUTES).join(', ')}`;
}
