// StreamInfo: what is known about one downstream request (or one TCP connection) as it
// goes through legate. Access logs, header formatters and stats read it; the HCM, router and
// tcp_proxy write it.

import type { HeaderMap } from './headers.ts';
import type { ResponseFlag } from '../errors.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';

export interface AddressInfo {
  /** IP address without port, e.g. `127.0.0.1` or `::1`. */
  readonly address: string;
  readonly port: number;
  /**
   * On a downstream local address: original_dst restored it from SO_ORIGINAL_DST (Envoy's
   * localAddressRestored()); ORIGINAL_DST clusters connect only to such addresses.
   */
  readonly restored?: boolean;
}

export interface StreamInfo {
  /** Wall-clock start, ms since epoch. */
  readonly startTime: number;
  /** performance.now() at start, for durations. */
  readonly startMono: number;
  /** 'HTTP/1.1' | 'HTTP/2' | 'HTTP/1.0', undefined for TCP. */
  protocol: string | undefined;
  /**
   * The client's address as Envoy sees it: the socket peer, or with use_remote_address=false /
   * xff_num_trusted_hops the address taken from x-forwarded-for (`%DOWNSTREAM_REMOTE_ADDRESS%`).
   */
  downstreamRemote: AddressInfo;
  downstreamLocal: AddressInfo;
  /** The socket peer itself, whatever x-forwarded-for says (`%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`). */
  downstreamDirectRemote: AddressInfo;
  requestHeaders: HeaderMap | undefined;
  responseHeaders: HeaderMap | undefined;
  responseTrailers: HeaderMap | undefined;
  responseCode: number | undefined;
  /** Envoy's response code details (`via_upstream`, `route_not_found`...). */
  responseCodeDetails: string | undefined;
  /** The health check filter recognised this request as a health check (access logs' not_health_check_filter). */
  healthCheck: boolean;
  readonly responseFlags: Set<ResponseFlag>;
  bytesReceived: number;
  bytesSent: number;
  routeName: string | undefined;
  virtualHostName: string | undefined;
  clusterName: string | undefined;
  /** The weighted cluster picked for this request (`from`: the route action's entries), once one is. */
  weightedPick: { readonly from: object; readonly cluster: string | undefined } | undefined;
  /** scheme_header_transformation.match_upstream: the router sets :scheme from the upstream connection. */
  schemeMatchUpstream: boolean;
  upstreamHost: AddressInfo | undefined;
  upstreamLocal: AddressInfo | undefined;
  upstreamTransportFailureReason: string | undefined;
  /** performance.now() when the first upstream byte arrived / the last downstream byte was sent. */
  firstUpstreamRxMono: number | undefined;
  lastDownstreamTxMono: number | undefined;
  /** Total duration in ms, set when the stream ends. */
  durationMs: number | undefined;
  /** Request id (x-request-id). */
  requestId: string | undefined;
  /** TLS server name requested by the client (SNI), when known. */
  requestedServerName: string | undefined;
  /** The downstream connection's TLS session (peer identity, version); undefined for plaintext. */
  downstreamTls: TlsConnectionInfo | undefined;
  /** The upstream connection's TLS session, when the cluster uses TLS. */
  upstreamTls: TlsConnectionInfo | undefined;
  connectionId: number;
  /** Upstream retry attempts made (x-envoy-attempt-count - 1). */
  attemptCount: number;
  /** Error text for `%CONNECTION_TERMINATION_DETAILS%`, `%UPSTREAM_TRANSPORT_FAILURE_REASON%`. */
  terminationDetails: string | undefined;
  /** Envoy's dynamic metadata, by filter namespace (dynamic-metadata.ts); undefined until a filter sets some. */
  dynamicMetadata: Record<string, Record<string, unknown>> | undefined;
  /** Envoy's filter state: objects filters leave for later filters, by key; undefined until one does. */
  filterState: Map<string, unknown> | undefined;
}

export function newStreamInfo(init: {
  downstreamRemote: AddressInfo;
  /** The socket's peer when listener filters (proxy_protocol) found another client; default downstreamRemote. */
  downstreamDirectRemote?: AddressInfo | undefined;
  downstreamLocal: AddressInfo;
  connectionId: number;
  protocol?: string;
  requestedServerName?: string;
  downstreamTls?: TlsConnectionInfo;
}): StreamInfo {
  return {
    startTime: Date.now(),
    startMono: performance.now(),
    protocol: init.protocol,
    downstreamRemote: init.downstreamRemote,
    downstreamLocal: init.downstreamLocal,
    downstreamDirectRemote: init.downstreamDirectRemote ?? init.downstreamRemote,
    requestHeaders: undefined,
    responseHeaders: undefined,
    responseTrailers: undefined,
    responseCode: undefined,
    responseCodeDetails: undefined,
    healthCheck: false,
    responseFlags: new Set(),
    bytesReceived: 0,
    bytesSent: 0,
    routeName: undefined,
    virtualHostName: undefined,
    clusterName: undefined,
    weightedPick: undefined,
    schemeMatchUpstream: false,
    upstreamHost: undefined,
    upstreamLocal: undefined,
    upstreamTransportFailureReason: undefined,
    firstUpstreamRxMono: undefined,
    lastDownstreamTxMono: undefined,
    durationMs: undefined,
    requestId: undefined,
    requestedServerName: init.requestedServerName,
    downstreamTls: init.downstreamTls,
    upstreamTls: undefined,
    connectionId: init.connectionId,
    attemptCount: 0,
    terminationDetails: undefined,
    dynamicMetadata: undefined,
    filterState: undefined,
  };
}
