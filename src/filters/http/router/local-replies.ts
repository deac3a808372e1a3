// Headers for the router's own answers (direct_response, redirect): Location and the route's
// response header mutations, as in Envoy; and the 503/502 bodies for upstream failures. Off the hot path.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RouteEntry } from '../../../proxy/http/route-types.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import { LocalReplies, ResponseFlag, type ProxyError } from '../../../proxy/errors.ts';
import { transportFailureReason } from '../../../proxy/upstream/upstream-tls.ts';

/** modify_headers for a direct_response or redirect: Location (when there is one), then the route's response header mutations. */
export function directResponseHeaders(route: RouteEntry, info: StreamInfo, location: string | undefined): (h: HeaderMap) => void {
  return (h) => {
    if (location !== undefined) h.set('location', location);
    info.responseHeaders = h;
    route.responseHeaders.apply(h, info);
  };
}

/**
 * Envoy's Location for a direct_response answering 201 or 3xx (RFC 7231 7.1.2): the request's own
 * URI (x-forwarded-proto, :authority, :path), as its newUri gives for a route without a redirect.
 */
export function directResponseLocation(status: number, request: HeaderMap): string | undefined {
  if (status !== 201 && (status < 300 || status > 399)) return undefined;
  const path = request.get(':path');
  if (path === undefined) return undefined;
  return `${request.get('x-forwarded-proto') ?? request.get(':scheme') ?? 'http'}://${request.get(':authority') ?? ''}${path}`;
}

export interface FailureReply {
  readonly status: number;
  readonly body: string;
  readonly details: string;
  readonly transportFailure: string | undefined;
}

/** Envoy's 503 bodies: `upstream connect error or disconnect/reset before headers. reset reason: ...`. */
export function upstreamFailureReply(err: ProxyError, flag: ResponseFlag, retried = false): FailureReply {
  const head = 'upstream connect error or disconnect/reset before headers. ';
  // Envoy: after a retry the body says the reason is the latest attempt's.
  const prefix = retried ? `${head}retried and the latest ` : head;
  if (flag === ResponseFlag.UpstreamConnectionFailure) {
    const cause = err.cause as { code?: string; message?: string } | undefined;
    // A failed TLS handshake reads as Envoy prints it (`TLS_error:...`); a failed TCP connect as its errno.
    const reason = transportFailureReason(err) ?? (cause ? `delayed connect error: ${cause.code ?? cause.message ?? 'unknown'}` : err.message);
    return {
      status: 503,
      body: `${prefix}reset reason: connection failure, transport failure reason: ${reason}`,
      details: LocalReplies.connectFailure.details,
      transportFailure: reason,
    };
  }
  if (flag === ResponseFlag.UpstreamConnectionTermination) {
    return { status: 503, body: `${prefix}reset reason: connection termination`, details: 'upstream_reset_before_response_started{connection_termination}', transportFailure: undefined };
  }
  if (flag === ResponseFlag.UpstreamProtocolError) {
    return { status: 502, body: `${prefix}reset reason: protocol error`, details: 'upstream_reset_before_response_started{protocol_error}', transportFailure: undefined };
  }
  return { status: 503, body: `${prefix}reset reason: remote reset`, details: LocalReplies.upstreamReset.details, transportFailure: undefined };
}
