// The parsed, frozen HTTP connection manager config (what parseHttpConnectionManager makes and the
// connection manager runs). Pure data: every Envoy default is already filled in.

import type { KeepaliveOptions } from './h2/keepalive.ts';
import type { ExtensionSpec, RouteSource } from '../../filters/registry.ts';
import type { AccessLogConfig } from '../access-log/index.ts';
import type { LocalReplyConfig } from './local-reply.ts';
import type { OriginalIpDetector } from './original-ip.ts';

export type CodecType = 'AUTO' | 'HTTP1' | 'HTTP2';
export type ServerHeaderTransformation = 'OVERWRITE' | 'APPEND_IF_ABSENT' | 'PASS_THROUGH';
export type HeadersWithUnderscoresAction = 'ALLOW' | 'REJECT_REQUEST' | 'DROP_HEADER';
export type EscapedSlashesAction = 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';
export type ForwardClientCertDetails = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';
/** set_current_client_cert_details, in the order Envoy writes them into XFCC. */
export type ClientCertDetail = 'Cert' | 'Chain' | 'Subject' | 'URI' | 'DNS';

/** One HTTP filter of the chain: the registry spec and its parsed config. */
export interface HttpFilterEntry {
  /** HttpFilter.name (the key for typed_per_filter_config). */
  readonly name: string;
  readonly spec: ExtensionSpec;
  readonly config: unknown;
  readonly terminal: boolean;
}

export interface UpgradeConfig {
  /** Lowercase upgrade type, e.g. `websocket`. */
  readonly upgradeType: string;
  readonly enabled: boolean;
  /** A filter chain for this upgrade type; undefined -> the HCM's http_filters. */
  readonly filters: readonly HttpFilterEntry[] | undefined;
}

/** An IPv4/IPv6 CIDR range, parsed once. */
export interface Cidr {
  readonly v6: boolean;
  /** Address as a big integer (32 or 128 bits). */
  readonly base: bigint;
  readonly prefixLen: number;
}

export interface HcmConfig {
  readonly statPrefix: string;
  readonly codecType: CodecType;
  /** The route table: fixed for an inline route_config, a worker's live RDS entry for `rds` (read `.table` per request). */
  readonly routes: RouteSource;
  readonly httpFilters: readonly HttpFilterEntry[];
  readonly serverName: string;
  readonly serverHeaderTransformation: ServerHeaderTransformation;
  readonly useRemoteAddress: boolean;
  readonly xffNumTrustedHops: number;
  /** append_x_forwarded_port (with use_remote_address): x-forwarded-port is the listener's port. */
  readonly appendXForwardedPort: boolean;
  /** scheme_header_transformation.scheme_to_overwrite: :scheme is set to this; undefined = kept. */
  readonly schemeToOverwrite: string | undefined;
  /** scheme_header_transformation.match_upstream. */
  readonly schemeMatchUpstream: boolean;
  /** original_ip_detection_extensions (only without use_remote_address and xff_num_trusted_hops); undefined when none. */
  readonly originalIpDetection: readonly OriginalIpDetector[] | undefined;
  readonly skipXffAppend: boolean;
  readonly via: string;
  readonly generateRequestId: boolean;
  readonly preserveExternalRequestId: boolean;
  readonly alwaysSetRequestIdInResponse: boolean;
  /** Connection idle timeout (no active streams), ms; 0 disables. Default 1 h. */
  readonly idleTimeoutMs: number;
  readonly maxHeadersCount: number;
  readonly headersWithUnderscoresAction: HeadersWithUnderscoresAction;
  readonly maxRequestHeadersKb: number;
  /** ms; 0 disables. Default 5 min. */
  readonly streamIdleTimeoutMs: number;
  /** ms; 0 disables (default). */
  readonly requestTimeoutMs: number;
  /** ms; 0 disables (default). */
  readonly requestHeadersTimeoutMs: number;
  /** ms; default 5 s. */
  readonly drainTimeoutMs: number;
  /** delayed_close_timeout: how long a connection legate closes still reads (and drops) what the client sends, ms; 0: closed at once. Default 1 s. */
  readonly delayedCloseMs: number;
  /** common_http_protocol_options.max_stream_duration: max lifetime of a request/response stream, ms; 0 disables (default). */
  readonly maxStreamDurationMs: number;
  /** Max lifetime of a downstream connection, ms; 0 disables. */
  readonly maxConnectionDurationMs: number;
  /** Max requests per connection; 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  readonly normalizePath: boolean;
  readonly mergeSlashes: boolean;
  readonly pathWithEscapedSlashesAction: EscapedSlashesAction;
  readonly stripAnyHostPort: boolean;
  readonly stripMatchingHostPort: boolean;
  readonly stripTrailingHostDot: boolean;
  readonly upgradeConfigs: readonly UpgradeConfig[];
  readonly localReply: LocalReplyConfig;
  readonly accessLogs: readonly AccessLogConfig[];
  readonly http2: {
    readonly maxConcurrentStreams: number;
    readonly initialStreamWindowSize: number;
    readonly initialConnectionWindowSize: number;
    /** http2_protocol_options.allow_connect: extended CONNECT (RFC 8441) is offered, so WebSocket and other upgrades ride on HTTP/2 streams. */
    readonly allowConnect: boolean;
    /** connection_keepalive: PINGs to the client, the connection aborted when one goes unanswered; undefined when unset. */
    readonly keepalive: KeepaliveOptions | undefined;
  };
  readonly http1: {
    readonly acceptHttp10: boolean;
    readonly defaultHostForHttp10: string;
    /** Envoy forwards HTTP/1.1 trailers only when enable_trailers is set. */
    readonly enableTrailers: boolean;
    readonly allowAbsoluteUrl: boolean;
  };
  /** Internal address ranges; undefined -> Envoy's defaults (RFC 1918, loopback, fc00::/7). */
  readonly internalAddresses: readonly Cidr[] | undefined;
  /** Envoy's per_connection_buffer_limit_bytes (from the listener); filter-manager buffer limit. */
  readonly bufferLimitBytes: number;
  /** Forward `expect: 100-continue` instead of answering it (proxy_100_continue). */
  readonly proxy100Continue: boolean;
  /** x-forwarded-client-cert handling (default SANITIZE). */
  readonly forwardClientCertDetails: ForwardClientCertDetails;
  /** What APPEND_FORWARD / SANITIZE_SET add about the client certificate, besides By and Hash. */
  readonly setCurrentClientCertDetails: readonly ClientCertDetail[];
}
